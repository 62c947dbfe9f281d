/**
 * Probes and forward-auth: `GET`/`HEAD` of `/healthz`, `/readyz` and the forward-auth
 * endpoints, and any method under the Envoy endpoint's prefix, are answered on any
 * Host, before the Host is looked at, by the gateway's own routes.
 */
import type { RequestStep, StepFactory } from './step.js';

/** Lets probe and forward-auth requests through to the gateway's own routes. */
export const probe: StepFactory<RequestStep> = (env) => {
  const prefix = env.anyHostPrefix;
  return (ctx) =>
    ((ctx.method === 'GET' || ctx.method === 'HEAD') && env.anyHostPaths.has(ctx.path)) || (prefix !== undefined && ctx.path.startsWith(prefix))
      ? { kind: 'local' }
      : undefined;
};
