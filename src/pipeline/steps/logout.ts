/**
 * `GET /logout` in authenticate mode ends the session, whatever the host.
 */
import type { SiteStep, StepFactory } from './step.js';

/** Decides logout; other requests go on. */
export const logout: StepFactory<SiteStep> = (env) => (ctx) =>
  env.sessions && ctx.path === '/logout' && (ctx.method === 'GET' || ctx.method === 'HEAD') ? { kind: 'logout' } : undefined;
