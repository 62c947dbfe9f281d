/**
 * Logout requested by a tenant's identity provider: OpenID Connect Back-Channel
 * Logout 1.0 (`POST /backchannel-logout_<client_id>`) and, for providers that opt in,
 * Front-Channel Logout 1.0 (`GET /frontchannel-logout_<client_id>`).
 *
 * Rules:
 * - the client_id must be a known provider of a tenant; on a tenant host it must be
 *   that tenant's: a request for another tenant's client ends nothing;
 * - a logout token is verified (src/oidc/backchannel-logout.ts) against the
 *   provider's issuer and keys, then its `jti` is consumed once in the session
 *   store (shared by every replica with Redis): a replay ends nothing;
 * - the sessions ended are that tenant's, of that client, matching `sid` (and `sub`
 *   when both are given), or all of `sub`'s when only `sub` is given;
 * - back-channel answers: 200 with `Cache-Control: no-store` and an empty body, or
 *   400 `{error: "invalid_request", error_description}`; 503 when the provider's
 *   keys cannot be fetched; 429 past the per-address rate limit;
 * - front-channel needs `frontchannel_logout: true` on the provider and `iss` equal
 *   to its issuer with a `sid`; its page may be framed by that issuer's origin only;
 * - every request is a log line (`audit: 'backchannel_logout'` or
 *   `'frontchannel_logout'`) and a metric by tenant and outcome.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { JWTVerifyGetKey } from 'jose';
import type { CachedDirectory } from '../directory/cached-directory.js';
import type { ClientRecord, Provider } from '../directory/types.js';
import { GatewayError } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import { PAGE_CSP, PAGE_HEADERS, renderPage } from '../pages/render.js';
import type { Limiter } from '../pipeline/env.js';
import type { ChannelLogoutOutcome } from '../reasons.js';
import type { SessionQuery, SessionStore } from '../session/types.js';
import { tenantKey } from '../tenancy/tenant-id.js';
import { LogoutTokenError, verifyLogoutToken } from './backchannel-logout.js';
import type { ClientRegistry } from './client-registry.js';

/** The keys a provider signs logout tokens with; injectable so a shared JWKS verifier can take over. */
export type KeysFor = (provider: Provider) => Promise<JWTVerifyGetKey>;

/** Options of the logout channels plugin. */
interface LogoutChannelsOptions {
  directory: CachedDirectory;
  registry: ClientRegistry;
  sessions: SessionStore;
  metrics: Metrics;
  /** Default: the provider's `jwks_uri` from its discovered configuration, fetched with jose. */
  keysFor?: KeysFor;
  /** Per client address. */
  limit?: Limiter;
  /** Oldest logout token accepted, in seconds (default 300). */
  maxAgeSeconds?: number;
  /** Clock skew allowed, in seconds (default 60). */
  clockToleranceSeconds?: number;
  /** Timeout of JWKS requests in milliseconds (default 5000). */
  httpTimeoutMs?: number;
  bodyLimit?: number;
  now?: () => number;
}

const FORM = 'application/x-www-form-urlencoded';

/**
 * The default {@link KeysFor}: the provider's cached JWKS from the client registry, the
 * one ID tokens are verified with (same address rules, one refetch on an unknown `kid`).
 */
function keysFromRegistry(registry: ClientRegistry): KeysFor {
  return async (provider) => {
    const { keys } = await registry.client(provider);
    return (header, token) => keys.keyFor(header, token);
  };
}

/** The client of a request, or why there is none: unknown, without tenant, or another tenant's than the host's. */
async function clientFor(req: FastifyRequest, directory: CachedDirectory, clientId: string): Promise<ClientRecord | 'unknown_client' | 'wrong_tenant'> {
  const client = await directory.client(clientId);
  if (!client || client.tenant === undefined) return 'unknown_client';
  const hostTenant = req.gate.site?.tenant?.company.sso.tenant;
  if (hostTenant !== undefined && tenantKey(hostTenant) !== tenantKey(client.tenant)) return 'wrong_tenant';
  return client;
}

async function logoutChannels(app: FastifyInstance, opts: LogoutChannelsOptions): Promise<void> {
  const { directory, registry, sessions, metrics } = opts;
  const now = opts.now ?? Date.now;
  const maxAge = opts.maxAgeSeconds ?? 300;
  const tolerance = opts.clockToleranceSeconds ?? 60;
  const keysFor = opts.keysFor ?? keysFromRegistry(registry);

  if (!app.hasContentTypeParser(FORM)) {
    app.addContentTypeParser(FORM, { parseAs: 'string', bodyLimit: opts.bodyLimit ?? 65_536 }, (_req, body, done) => {
      const params = new URLSearchParams(String(body));
      const out: Record<string, string | string[]> = {};
      for (const key of new Set(params.keys())) {
        const all = params.getAll(key);
        out[key] = all.length === 1 ? all[0]! : all;
      }
      done(null, out);
    });
  }

  const limited = async (req: FastifyRequest): Promise<number | undefined> => {
    if (!opts.limit) return undefined;
    const r = await opts.limit(req.gate.clientAddress);
    return r.allowed ? undefined : Math.max(1, r.retryAfterSeconds ?? 60);
  };

  app.post<{ Params: { clientId: string } }>('/backchannel-logout_:clientId', async (req, reply) => {
    const clientId = req.params.clientId;
    let tenant = '';
    const answer = (status: number, outcome: ChannelLogoutOutcome, extra: Record<string, unknown> = {}, description?: string) => {
      metrics.channelLogout('backchannel', tenant, outcome);
      const level = status === 200 ? 'info' : 'warn';
      req.log[level]({ audit: 'backchannel_logout', tenant, clientId, outcome, ...extra }, 'back-channel logout');
      reply.code(status).header('cache-control', 'no-store');
      if (status === 200) return reply.send();
      return reply.send({ error: status === 503 ? 'temporarily_unavailable' : 'invalid_request', error_description: description ?? outcome });
    };
    const retryIn = await limited(req);
    if (retryIn !== undefined) {
      reply.header('retry-after', String(retryIn));
      return answer(429, 'rate_limited', {}, 'too many logout requests');
    }
    const client = await clientFor(req, directory, clientId);
    if (typeof client === 'string') return answer(400, client, {}, 'unknown client for this host');
    tenant = client.tenant!;
    const body = req.body as Record<string, unknown> | undefined;
    const token = body?.['logout_token'];
    let claims;
    try {
      const config = await registry.get(client.provider);
      claims = await verifyLogoutToken(token, {
        issuer: config.serverMetadata().issuer,
        clientId,
        keys: await keysFor(client.provider),
        now: now(),
        maxAgeSeconds: maxAge,
        clockToleranceSeconds: tolerance,
      });
      if (!(await sessions.consumeOnce(`backchannel-logout:${claims.iss}:${claims.jti}`, maxAge + 2 * tolerance))) {
        throw new LogoutTokenError('replayed');
      }
    } catch (err) {
      if (err instanceof LogoutTokenError) return answer(err.statusCode, err.reason, err.detail ? { detail: err.detail } : {}, err.message);
      const detail = err instanceof GatewayError ? err.detail ?? err.message : err instanceof Error ? err.message : String(err);
      return answer(503, 'provider_unavailable', { detail }, "the client's identity provider is unavailable");
    }
    const query: SessionQuery = {
      tenant,
      clientId,
      ...(claims.sid !== undefined ? { sid: claims.sid } : {}),
      ...(claims.sub !== undefined ? { sub: claims.sub } : {}),
    };
    const ended = await sessions.endWhere(query);
    metrics.sessionsEnded('backchannel', ended.length);
    return answer(200, 'ok', { ...(claims.sub ? { subject: claims.sub } : {}), ...(claims.sid ? { sid: claims.sid } : {}), ended: ended.length });
  });

  app.get<{ Params: { clientId: string }; Querystring: Record<string, unknown> }>('/frontchannel-logout_:clientId', async (req, reply) => {
    const clientId = req.params.clientId;
    let tenant = '';
    const page = (status: number, outcome: ChannelLogoutOutcome, frameOrigin?: string, extra: Record<string, unknown> = {}) => {
      metrics.channelLogout('frontchannel', tenant, outcome);
      req.log[status === 200 ? 'info' : 'warn']({ audit: 'frontchannel_logout', tenant, clientId, outcome, ...extra }, 'front-channel logout');
      const csp = PAGE_CSP.replace(/frame-ancestors [^;]*/, `frame-ancestors ${frameOrigin ?? "'none'"}`);
      const headers: Record<string, string> = { ...PAGE_HEADERS, 'content-security-policy': csp.includes('frame-ancestors') ? csp : `${csp}; frame-ancestors ${frameOrigin ?? "'none'"}` };
      if (frameOrigin) delete headers['x-frame-options'];
      return reply
        .code(status)
        .headers(headers)
        .send(renderPage({ status, title: status === 200 ? 'Signed out' : 'Sign-out could not be completed', paragraphs: [status === 200 ? 'You are signed out.' : 'This sign-out request is not valid.'] }));
    };
    const retryIn = await limited(req);
    if (retryIn !== undefined) {
      reply.header('retry-after', String(retryIn));
      return page(429, 'rate_limited');
    }
    const client = await clientFor(req, directory, clientId);
    if (typeof client === 'string') return page(400, client);
    tenant = client.tenant!;
    if (client.provider.configuration.frontchannel_logout !== true) return page(404, 'not_enabled');
    let issuer: string;
    try {
      issuer = (await registry.get(client.provider)).serverMetadata().issuer;
    } catch {
      return page(503, 'provider_unavailable');
    }
    const origin = new URL(issuer).origin;
    const { iss, sid } = req.query;
    if (typeof iss !== 'string' || iss !== issuer) return page(400, 'wrong_issuer', origin);
    if (typeof sid !== 'string' || sid.length === 0 || sid.length > 1024) return page(400, 'no_sid', origin);
    const ended = await sessions.endWhere({ tenant, clientId, sid });
    metrics.sessionsEnded('frontchannel', ended.length);
    return page(200, 'ok', origin, { sid, ended: ended.length });
  });
}

/** Registers the back- and front-channel logout routes (authenticate mode); not wrapped, so its form parser stays its own. */
export default logoutChannels;
