/**
 * Authenticate mode: the gateway is the OpenID Connect relying party of every tenant.
 *
 * Rules:
 * - a login starts with PKCE (S256), state and nonce; the transaction travels in a
 *   sealed, short-lived cookie and is accepted once;
 * - a callback must match its transaction (client, host, state) and pass the code
 *   exchange and ID token checks; the claims must name the tenant and, with group
 *   integration, a mapped group; every refusal is a page, a log line with the reason
 *   and a per-tenant counter, and creates no session;
 * - a session is valid only on its tenant's hosts and the base host; without one,
 *   page navigations go to the login and other requests get 401;
 * - the identity reaches the upstream only in the X-Auth-Request-* headers set here;
 *   the gateway's own cookies never reach it;
 * - logout ends the session and, when the provider asks for it, the provider session.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { CachedDirectory } from '../directory/cached-directory.js';
import type { ClientRecord } from '../directory/types.js';
import { GatewayError } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import { escapeHtml, sendPage } from '../pages/render.js';
import { decisionHook, type Decision } from '../routing/decision-hook.js';
import type { AuthenticateHooks } from '../routing/tenant-routing.js';
import { loginLocation } from '../routing/login-location.js';
import { isPageNavigation, readCookie } from '../routing/request-shape.js';
import { cookieJar } from '../session/cookies.js';
import type { SessionData, SessionStore } from '../session/types.js';
import type { CallbackParams } from '../tenancy/callback.js';
import { safeRelativeRedirect } from '../tenancy/redirect.js';
import { tenantKey } from '../tenancy/tenant-id.js';
import type { ClientRegistry } from './client-registry.js';
import { buildEndSessionUrl, finishLogin, revokeTokens, startLogin, type LoginTransaction } from './flow.js';
import { providerFailure } from './provider-failure.js';
import { claimsToIdentity } from './identity.js';
import type { Sealer } from './seal.js';

/** Settings of authenticate mode. */
export interface AuthenticateOptions {
  directory: CachedDirectory;
  registry: ClientRegistry;
  sessions: SessionStore;
  /** Sealer for login transactions. */
  sealer: Sealer;
  metrics: Metrics;
  secureCookies: boolean;
  sessionCookie: string;
  sessionTtlSeconds: number;
  idleSeconds: number;
  transactionSeconds: number;
  scopes: string[];
  httpTimeoutMs: number;
  allowSettingsProviders: boolean;
  /** Paths that never need a session. */
  publicPaths: ReadonlySet<string>;
  now?: () => number;
}

/** What a sealed transaction cookie holds. */
interface SealedTransaction {
  id: string;
  tx: LoginTransaction;
  tenant: string;
  clientId: string;
  host: string;
  redirectUri: string;
  redirect?: string;
}

interface LoadedSession {
  id: string;
  /** As the store holds it: never changed here. */
  data: Readonly<SessionData>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The valid session of this request, once looked up (null: none). */
    authSession?: LoadedSession | null;
  }
}

/** OAuth and OpenID Connect error codes kept as metric labels; any other value counts as `other`. */
const PROVIDER_ERRORS = new Set([
  'access_denied', 'invalid_request', 'unauthorized_client', 'unsupported_response_type', 'invalid_scope',
  'server_error', 'temporarily_unavailable', 'interaction_required', 'login_required', 'account_selection_required',
  'consent_required', 'invalid_request_uri', 'invalid_request_object', 'request_not_supported',
  'request_uri_not_supported', 'registration_not_supported',
]);

/** Sessions whose upstream identity headers are kept ready. */
const IDENTITY_HEADER_CACHE_MAX = 10_000;

/** Touch a session in the store at most this often (it is read on every request). */
const TOUCH_EVERY_MS = 60_000;

function headerValue(s: string): string {
  const clean = s.replace(/[\x00-\x1f\x7f]/g, ' ');
  return /^[\x20-\x7e]*$/.test(clean) ? clean : Buffer.from(clean, 'utf8').toString('latin1');
}

/** Constant-time comparison of two strings. */
function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The callback as a URL with its (validated) parameters in the query, whether they came in the query or a form_post body. */
function callbackUrlOf(origin: string, rawUrl: string, params: CallbackParams): URL {
  const q = rawUrl.indexOf('?');
  const url = new URL(`${origin}${q < 0 ? rawUrl : rawUrl.slice(0, q)}`);
  for (const [k, v] of Object.entries(params)) if (typeof v === 'string') url.searchParams.set(k, v);
  return url;
}

/** The upstream identity headers of a session. */
export function identityHeaders(data: SessionData): Record<string, string> {
  const id = data.identity;
  return {
    'x-auth-request-user': headerValue(id.email ?? id.subject),
    'x-auth-request-email': headerValue(id.email ?? ''),
    'x-auth-request-name': headerValue(id.name ?? ''),
    'x-auth-request-tenant': headerValue(data.tenant),
    'x-auth-request-groups': headerValue(id.groups.join(',')),
    'x-auth-request-admin': id.admin ? 'true' : 'false',
  };
}

/** The login, callback and session logic of authenticate mode, shared by the routing hooks and the guard. */
export interface Authenticator {
  hooks: AuthenticateHooks;
  loadSession(req: FastifyRequest): LoadedSession | null | Promise<LoadedSession | null>;
  logout(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply>;
  guard(req: FastifyRequest, reply: FastifyReply): Decision;
}

/** Builds the authenticator; nothing is registered until the plugin is. */
export function createAuthenticator(opts: AuthenticateOptions): Authenticator {
  const now = opts.now ?? Date.now;
  const jar = cookieJar(opts.secureCookies);
  const sessionCookie = jar.name(opts.sessionCookie);
  const txCookie = jar.name(`${opts.sessionCookie}_tx`);
  const hiddenCookies = [sessionCookie, txCookie];
  const { metrics } = opts;
  /** A session's identity never changes: its upstream headers are built once per session id. */
  const headersBySession = new Map<string, Record<string, string>>();
  const headersOf = (session: LoadedSession): Record<string, string> => {
    let headers = headersBySession.get(session.id);
    if (!headers) {
      headers = identityHeaders(session.data);
      if (headersBySession.size >= IDENTITY_HEADER_CACHE_MAX) headersBySession.clear();
      headersBySession.set(session.id, headers);
    }
    return headers;
  };

  const refuse = (req: FastifyRequest, reply: FastifyReply, status: number, tenant: string, reason: string, message: string, detail?: string, providerError?: string) => {
    metrics.loginOutcome(tenant, status >= 500 ? 'error' : 'refused', reason);
    req.log.warn({ audit: 'login', tenant, outcome: status >= 500 ? 'error' : 'refused', reason, detail, ...(providerError ? { providerError } : {}) }, 'login refused');
    reply.header('set-cookie', jar.clear(txCookie));
    if (status === 503) reply.header('retry-after', '10');
    return sendPage(reply, status, {
      title: status === 403 ? 'Access denied' : status === 502 ? 'Sign-in is misconfigured' : status >= 500 ? 'Sign-in is unavailable' : 'Sign-in could not be completed',
      paragraphs: [message.charAt(0).toUpperCase() + message.slice(1)],
      link: { href: loginLocation(tenant, {}), text: 'Back to sign-in' },
      ...(tenant ? { tenantName: req.gate.tenant?.company.sso.display_name ?? tenant } : {}),
    });
  };

  /** Accepts the session read for this request when it is valid on this host. */
  function acceptSession(req: FastifyRequest, id: string, data: Readonly<SessionData> | undefined): LoadedSession | null {
    if (!data) return null;
    const hostTenant = req.gate.tenant?.company.sso.tenant;
    if (hostTenant !== undefined && hostTenant !== data.tenant && tenantKey(hostTenant) !== tenantKey(data.tenant)) return null;
    const t = now();
    if (t - data.lastSeenAt > TOUCH_EVERY_MS) {
      opts.sessions.touch(id, t, opts.idleSeconds).catch((err: unknown) => {
        req.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'session activity could not be recorded');
      });
    }
    req.authSession = { id, data };
    return req.authSession;
  }

  /** The request's valid session: at once with a store that holds sessions in this process, later otherwise. */
  function loadSession(req: FastifyRequest): LoadedSession | null | Promise<LoadedSession | null> {
    if (req.authSession !== undefined) return req.authSession;
    req.authSession = null;
    const id = readCookie(req.headers.cookie, sessionCookie);
    if (!id) return null;
    const { sessions } = opts;
    if (sessions.peek) return acceptSession(req, id, sessions.peek(id));
    return sessions.get(id).then((data) => acceptSession(req, id, data));
  }

  const hooks: AuthenticateHooks = {
    async login(req, reply, tenant, { redirect, loginHint }) {
      const tenantId = tenant.company.sso.tenant;
      const providers = tenant.providers;
      const wanted = (req.query as Record<string, unknown> | undefined)?.provider;
      const provider = providers.length === 1 ? providers[0] : providers.find((p) => p.configuration.id === wanted);
      if (providers.length === 0) {
        return sendPage(reply, 404, {
          title: 'Sign-in is not set up',
          paragraphs: ['This organisation has no identity provider configured yet. Please contact your administrator.'],
          tenantName: tenant.company.sso.display_name ?? tenantId,
        });
      }
      if (!provider) {
        const items = providers
          .map((p) => {
            const href = loginLocation(tenantId, { provider: p.configuration.id, redirect, login_hint: loginHint });
            return `<li><a class="button" href="${escapeHtml(href)}">${escapeHtml(p.configuration.display_name || p.configuration.id)}</a></li>`;
          })
          .join('\n');
        const name = tenant.company.sso.display_name ?? tenantId;
        return sendPage(reply, 200, { title: `Sign in to ${name}`, heading: `Sign in to ${name}`, html: `<ul class="providers">${items}</ul>`, tenantName: name });
      }
      let config;
      try {
        config = await opts.registry.get(provider);
      } catch (err) {
        req.log.error({ tenant: tenantId, err: err instanceof GatewayError ? err.detail ?? err.message : String(err) }, 'identity provider unavailable');
        const f = providerFailure(err);
        return refuse(req, reply, f.status, tenantId, f.reason, f.message, f.detail, f.providerError);
      }
      const clientId = provider.configuration.client_id;
      const redirectUri = `${req.gate.origin}/callback_${encodeURIComponent(clientId)}`;
      const scopes = provider.configuration.scope ? provider.configuration.scope.split(' ') : opts.scopes;
      const { url, transaction } = await startLogin(config, { redirectUri, scopes, ...(loginHint ? { loginHint } : {}) });
      const sealed: SealedTransaction = {
        id: randomBytes(16).toString('base64url'),
        tx: transaction,
        tenant: tenantId,
        clientId,
        host: req.gate.host,
        redirectUri,
        ...(redirect ? { redirect } : {}),
      };
      req.log.info({ audit: 'login', tenant: tenantId, outcome: 'started', clientId }, 'login started');
      return reply
        .header('set-cookie', jar.set(txCookie, opts.sealer.seal(sealed, opts.transactionSeconds, now()), { maxAge: opts.transactionSeconds }))
        .header('cache-control', 'no-store')
        .redirect(url, 302);
    },

    async callback(req, reply, client: ClientRecord, params: CallbackParams) {
      const tenantId = client.tenant ?? '';
      const raw = readCookie(req.headers.cookie, txCookie);
      const sealed = raw ? opts.sealer.unseal<SealedTransaction>(raw, now()) : undefined;
      const clientId = client.provider.configuration.client_id;
      if (!sealed) return refuse(req, reply, 400, tenantId, 'no_transaction', 'This sign-in link has expired or was already used. Please start again.');
      if (sealed.clientId !== clientId || sealed.host !== req.gate.host || tenantKey(sealed.tenant) !== tenantKey(tenantId)) {
        return refuse(req, reply, 400, tenantId, 'transaction_mismatch', 'This sign-in response does not belong to the sign-in you started. Please start again.');
      }
      if (!sameText(params.state, sealed.tx.state)) {
        return refuse(req, reply, 400, tenantId, 'state_mismatch', 'This sign-in response does not belong to the sign-in you started. Please start again.');
      }
      if (!(await opts.sessions.consumeOnce(`tx:${sealed.id}`, opts.transactionSeconds))) {
        return refuse(req, reply, 400, tenantId, 'replayed', 'This sign-in response was already used. Please start again.');
      }
      if (params.error !== undefined) {
        const known = PROVIDER_ERRORS.has(params.error) ? params.error : 'other';
        return refuse(req, reply, 400, tenantId, `provider_error:${known}`, 'The identity provider did not complete the sign-in.');
      }
      const tenant = await opts.directory.tenant(tenantId);
      if (!tenant) return refuse(req, reply, 400, tenantId, 'unknown_tenant', 'This organisation is no longer set up for sign-in.');
      let result;
      try {
        result = await finishLogin(await opts.registry.client(client.provider), {
          callbackUrl: callbackUrlOf(req.gate.origin, req.url, params),
          transaction: sealed.tx,
          expectedRedirectUri: sealed.redirectUri,
        });
      } catch (err) {
        const f = providerFailure(err);
        return refuse(req, reply, f.status, tenantId, f.reason, f.message, f.detail, f.providerError);
      }
      const decided = claimsToIdentity(result.claims, client.provider.configuration, tenant.company.sso, client.provider.provider);
      if (!decided.ok) {
        return refuse(req, reply, 403, tenantId, decided.refusal.reason, decided.refusal.message, decided.refusal.detail);
      }
      const previous = readCookie(req.headers.cookie, sessionCookie);
      if (previous) await opts.sessions.destroy(previous);
      const t = now();
      const data: SessionData = {
        identity: decided.identity,
        tenant: tenant.company.sso.tenant,
        company: tenant.company.company,
        clientId,
        idToken: result.idToken,
        ...(result.accessToken ? { accessToken: result.accessToken } : {}),
        ...(result.refreshToken ? { refreshToken: result.refreshToken } : {}),
        createdAt: t,
        lastSeenAt: t,
        expiresAt: t + opts.sessionTtlSeconds * 1000,
      };
      const id = await opts.sessions.create(data, opts.idleSeconds);
      metrics.loginOutcome(tenantId, 'success', 'ok');
      req.log.info({ audit: 'login', tenant: tenantId, outcome: 'success', subject: decided.identity.subject, admin: decided.identity.admin }, 'login succeeded');
      return reply
        .header('set-cookie', [jar.clear(txCookie), jar.set(sessionCookie, id, { maxAge: opts.sessionTtlSeconds })])
        .header('cache-control', 'no-store')
        .redirect(sealed.redirect ?? '/', 302);
    },

    hasSession(req) {
      const session = loadSession(req);
      return session instanceof Promise ? session.then((s) => s !== null) : session !== null;
    },
  };

  async function logout(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const session = await loadSession(req);
    const hostTenant = req.gate.tenant?.company.sso.tenant;
    reply.header('set-cookie', jar.clear(sessionCookie)).header('cache-control', 'no-store');
    if (!session) return reply.redirect(hostTenant ? loginLocation(hostTenant, {}) : '/login', 302);
    await opts.sessions.destroy(session.id);
    headersBySession.delete(session.id);
    const { data } = session;
    req.log.info({ audit: 'logout', tenant: data.tenant, subject: data.identity.subject }, 'logout');
    const local = loginLocation(data.tenant, {});
    const client = await opts.directory.client(data.clientId).catch(() => undefined);
    if (!client) return reply.redirect(local, 302);
    let config;
    try {
      config = await opts.registry.get(client.provider);
    } catch {
      return reply.redirect(local, 302);
    }
    void revokeTokens(config, { ...(data.accessToken ? { accessToken: data.accessToken } : {}), ...(data.refreshToken ? { refreshToken: data.refreshToken } : {}) }, opts.httpTimeoutMs);
    if (client.provider.configuration.logout_from_provider) {
      const url = buildEndSessionUrl(config, {
        postLogoutRedirectUri: `${req.gate.origin}${local}`,
        clientId: data.clientId,
        ...(data.idToken ? { idTokenHint: data.idToken } : {}),
      });
      if (url) return reply.redirect(url, 302);
    }
    return reply.redirect(local, 302);
  }

  function admit(req: FastifyRequest, reply: FastifyReply, path: string, session: LoadedSession | null): FastifyReply | undefined {
    if (session) {
      const view = req.proxyView ?? (req.proxyView = {});
      view.upstreamHeaders = headersOf(session);
      view.hiddenCookies = hiddenCookies;
      return undefined;
    }
    if (isPageNavigation(req.method, path, req.headers)) {
      const redirect = safeRelativeRedirect(req.url);
      const tenant = req.gate.tenant?.company.sso.tenant;
      const target = tenant ? loginLocation(tenant, { redirect: redirect === '/' ? undefined : redirect }) : `/login${redirect && redirect !== '/' ? `?redirect=${encodeURIComponent(redirect)}` : ''}`;
      return reply.redirect(target, 302);
    }
    return reply.code(401).header('cache-control', 'no-store').header('content-type', 'application/json; charset=utf-8').send({ error: 'unauthorized', message: 'sign in first' });
  }

  function guard(req: FastifyRequest, reply: FastifyReply): Decision {
    if (reply.sent || req.callbackClient) return undefined;
    const q = req.url.indexOf('?');
    const path = q < 0 ? req.url : req.url.slice(0, q);
    if (opts.publicPaths.has(path) && (req.method === 'GET' || req.method === 'HEAD' || (req.method === 'POST' && path === '/login'))) return undefined;
    const session = loadSession(req);
    return session instanceof Promise ? session.then((s) => admit(req, reply, path, s)) : admit(req, reply, path, session);
  }

  return { hooks, loadSession, logout, guard };
}

async function authenticate(app: FastifyInstance, opts: { authenticator: Authenticator }): Promise<void> {
  app.decorateRequest('authSession', undefined);
  app.get('/logout', (req, reply) => opts.authenticator.logout(req, reply));
  app.addHook('onRequest', decisionHook((req, reply) => opts.authenticator.guard(req, reply)));
}

/** Registers `/logout` and the session guard; register it after the routing plugin. */
export default fp(authenticate, { name: 'tenant-gate-authenticate', fastify: '5.x', dependencies: ['tenant-gate-tenant-routing'] });
