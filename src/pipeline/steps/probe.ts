/**
 * Probes: `GET`/`HEAD` of `/healthz` and `/readyz` are answered on any Host, before
 * the Host is looked at, by the gateway's own routes.
 */
import type { RequestStep, StepFactory } from './step.js';

/** Lets probe requests through to the gateway's health routes. */
export const probe: StepFactory<RequestStep> = (env) => (ctx) =>
  (ctx.method === 'GET' || ctx.method === 'HEAD') && env.anyHostPaths.has(ctx.path) ? { kind: 'local' } : undefined;
