/**
 * The signed identity assertion on the public listener (authenticate mode).
 *
 * Rules:
 * - `GET /.well-known/jwks.json` answers on any host, before host resolution (like
 *   /healthz), with the current and recently retired public keys and
 *   `Cache-Control: public, max-age=300`;
 * - every request admitted with a session (its identity headers set) gets
 *   `X-Auth-Request-Jwt`; the token is signed at most about once per `ttlSeconds` per
 *   session and origin (see signer.ts), so the proxy path stays synchronous on a hit;
 * - `aud` is the company's `assertion_audience`, else the origin the user is on.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../config/schema.js';
import type { CachedDirectory } from '../directory/cached-directory.js';
import type { TenantStore } from '../directory/types.js';
import type { Site } from '../pipeline/context.js';
import type { UpstreamView } from '../pipeline/decision.js';
import { identitySource } from '../proxy/identity-headers.js';
import { KeyRing } from './keys.js';
import { AssertionSigner } from './signer.js';

/** Where the public keys are published. */
export const JWKS_PATH = '/.well-known/jwks.json';
/** How long clients may cache the JWK Set, in seconds. */
const JWKS_MAX_AGE_SECONDS = 300;

/** What the plugin needs. */
export interface AssertionOptions {
  keys: KeyRing;
  signer: AssertionSigner;
  directory: CachedDirectory;
}

/** The assertion's parts for this configuration, keys loaded (generated on first start); undefined when off. */
export async function setupAssertion(
  config: Config,
  store: TenantStore,
  directory: CachedDirectory,
  log: { warn(obj: object, msg: string): void },
  now?: () => number,
): Promise<AssertionOptions | undefined> {
  if (config.mode !== 'authenticate' || !config.assertion.enabled) return undefined;
  const keys = new KeyRing({
    store,
    graceMs: config.assertion.rotationGraceSeconds * 1000,
    refreshMs: config.assertion.keyRefreshSeconds * 1000,
    onError: (err) => log.warn({ err: err instanceof Error ? err.message : String(err) }, 'assertion keys could not be refreshed; the loaded keys stay in use'),
    ...(now ? { now } : {}),
  });
  await keys.init();
  const issuer = config.public.url.replace(/\/+$/, '');
  const signer = new AssertionSigner({ keys, issuer, ttlSeconds: config.assertion.ttlSeconds, ...(now ? { now } : {}) });
  return { keys, signer, directory };
}

/** The assertion of a passed request: at once on a cache hit, later when it is signed; undefined without a session's identity. */
export type AssertionFor = (site: Site, view: UpstreamView) => string | undefined | Promise<string | undefined>;

/** Builds the assertion lookup the hook (and forward-auth) use. */
export function assertionFor(opts: AssertionOptions): AssertionFor {
  const { signer, directory } = opts;
  const audienceOf = async (site: Site, tenant: string): Promise<string> => {
    const record = site.tenant ?? (await directory.tenant(tenant));
    return record?.company.sso.assertion_audience ?? site.origin;
  };
  return (site, view) => {
    if (!view.identity || !view.sessionId) return undefined;
    const data = identitySource(view.identity);
    if (!data) return undefined;
    const { identity, sessionId } = view;
    const hit = signer.cached(sessionId, site.origin, identity);
    if (hit) return hit;
    return audienceOf(site, data.tenant).then((aud) => signer.sign(sessionId, site.origin, identity, data, aud));
  };
}

function identityAssertion(app: FastifyInstance, opts: AssertionOptions, done: (err?: Error) => void): void {
  const { keys } = opts;
  const assertion = assertionFor(opts);
  app.get(JWKS_PATH, { logLevel: 'warn' }, (_req, reply) =>
    reply.header('cache-control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`).type('application/json').send(keys.jwks()),
  );

  app.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    const ctx = req.gate;
    const view = ctx.view;
    if (!view?.identity || !view.sessionId || !ctx.site || reply.sent) return done();
    const out = assertion(ctx.site, view);
    if (out === undefined || typeof out === 'string') {
      if (out !== undefined) view.assertion = out;
      return done();
    }
    out.then((token) => {
      if (token !== undefined) view.assertion = token;
      done();
    }, done);
  });
  done();
}

/** Registers the JWKS route and the assertion hook; register it after the gate plugin (its hook reads the decision). */
export default fp(identityAssertion, { name: 'tenant-gate-identity-assertion', fastify: '5.x', dependencies: ['tenant-gate-gate'] });
