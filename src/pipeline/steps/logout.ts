/**
 * `GET /logout` in authenticate mode ends the session, whatever the host; a
 * provider's back- or front-channel logout (src/oidc/logout-channels.ts) is answered
 * by its own route, without a session.
 */
import { isProviderLogoutRequest } from '../../oidc/logout-paths.js';
import type { SiteStep, StepFactory } from './step.js';

/** Decides logout; other requests go on. */
export const logout: StepFactory<SiteStep> = (env) => (ctx) => {
  if (!env.sessions) return undefined;
  if (ctx.path === '/logout' && (ctx.method === 'GET' || ctx.method === 'HEAD')) return { kind: 'logout' };
  return isProviderLogoutRequest(ctx.method, ctx.path) ? { kind: 'local' } : undefined;
};
