/**
 * The forward-auth endpoints under `forwardAuth.path`: one per family of proxies
 * (./auth-request.ts, ./forward-auth.ts, ./ext-authz.ts), all translated by
 * ./translate.ts from the decision of the request pipeline.
 *
 * Rules: the endpoints never read a request body; the pipeline's first step lets
 * their paths through before the auth request's own Host is looked at
 * ({@link forwardAuthPaths}): the described host is the one that matters. With a
 * front door, the header-described endpoints are answered before fastify
 * (./fast-path.ts); the routes stay for whatever it declines.
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { AssertionFor } from '../assertion/plugin.js';
import type { FrontDoor } from '../net/front-door.js';
import type { Metrics } from '../observability/metrics.js';
import type { Tracing } from '../observability/tracing.js';
import type { Decider } from '../pipeline/decide.js';
import { AUTH_REQUEST, authRequestRoute } from './auth-request.js';
import { extAuthzRoute } from './ext-authz.js';
import { forwardAuthClaim } from './fast-path.js';
import { FORWARD_AUTH, forwardAuthRoute } from './forward-auth.js';
import { createTranslator } from './translate.js';
import { trustedPeers } from './trusted-peers.js';

/** Options of the forward-auth plugin. */
interface ForwardAuthOptions {
  decider: Decider;
  mode: 'route' | 'authenticate';
  /** `forwardAuth.path`. */
  prefix: string;
  trustedProxies: readonly string[];
  cacheSeconds: number;
  /** The signed identity assertion (X-Auth-Request-Jwt), when it is on. */
  assertion?: AssertionFor;
  /** An API server takes `/api/*`. */
  apiPrefix: boolean;
  /** The listener's front door: the header-described endpoints are answered there. */
  frontDoor?: FrontDoor;
  metrics: Metrics;
  tracing: Tracing;
}

/** The endpoints' paths, as the pipeline's probe step matches them (exact GET paths, an any-method prefix). */
export function forwardAuthPaths(prefix: string): { exact: string[]; anyMethodPrefix: string } {
  return { exact: [`${prefix}${AUTH_REQUEST.suffix}`, `${prefix}${FORWARD_AUTH.suffix}`], anyMethodPrefix: `${prefix}/ext-authz/` };
}

async function forwardAuth(app: FastifyInstance, opts: ForwardAuthOptions): Promise<void> {
  const translator = createTranslator({
    decider: opts.decider,
    mode: opts.mode,
    trusted: trustedPeers(opts.trustedProxies),
    cacheSeconds: opts.cacheSeconds,
    apiPrefix: opts.apiPrefix,
    ...(opts.assertion ? { assertion: opts.assertion } : {}),
  });
  await app.register((scope, _opts, done) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_req, _payload, parsed) => parsed(null, undefined));
    authRequestRoute(scope, opts.prefix, translator);
    forwardAuthRoute(scope, opts.prefix, translator);
    extAuthzRoute(scope, opts.prefix, translator);
    done();
  });
  const door = opts.frontDoor;
  if (door) {
    const { prefix, trustedProxies, metrics, tracing } = opts;
    door.claim(forwardAuthClaim({ prefix, endpoints: [AUTH_REQUEST, FORWARD_AUTH], translator, trustedProxies, log: app.log, metrics, tracing }));
    app.addHook('preClose', (done) => {
      door.close();
      done();
    });
  }
}

/** Registers the forward-auth endpoints on the public listener. */
export default fp(forwardAuth, { name: 'tenant-gate-forward-auth', fastify: '5.x', dependencies: ['tenant-gate-gate'] });
