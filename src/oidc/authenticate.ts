/**
 * Authenticate mode: the gateway is the OpenID Connect relying party of every tenant.
 * The pipeline decides when a login starts, a callback completes or a session ends;
 * this module does it.
 *
 * Rules:
 * - a login starts with PKCE (S256), state and nonce; the transaction travels in a
 *   sealed, short-lived cookie and is accepted once, on the host and for the client it
 *   started with (src/tenancy/isolation.ts);
 * - a callback must match its transaction (client, host, state) and pass the code
 *   exchange and ID token checks; the claims must name the tenant and, with group
 *   integration, a mapped group; every refusal is a page, a log line with the reason
 *   and a per-tenant counter, and creates no session;
 * - a session is valid only on its tenant's hosts and the base host, and only while
 *   the directory still backs it (src/tenancy/isolation.ts); its groups and admin flag
 *   follow the company's current group settings, recomputed from the IdP groups kept
 *   at login; a session the directory no longer backs is ended;
 * - the identity reaches the upstream only in the X-Auth-Request-* headers built here;
 *   the gateway's own cookies never reach it;
 * - logout ends the session and, when the provider asks for it, the provider session.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply } from 'fastify';
import { NOT_CACHED, type CachedDirectory } from '../directory/cached-directory.js';
import type { ClientRecord, TenantRecord } from '../directory/types.js';
import { GatewayError } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import { escapeHtml, sendPage } from '../pages/render.js';
import type { SiteContext } from '../pipeline/context.js';
import type { LoadedSession, SessionAccess } from '../pipeline/env.js';
import type { AuthenticateHandlers } from '../pipeline/gate-plugin.js';
import { providerErrorCode, type LoginReason } from '../reasons.js';
import { loginLocation } from '../routing/login-location.js';
import { readCookie, singleQueryParam } from '../routing/request-shape.js';
import { cookieJar } from '../session/cookies.js';
import type { SessionData, SessionStore } from '../session/types.js';
import type { CallbackParams } from '../tenancy/callback.js';
import { providerOfSession, sessionValidOnHost, transactionMatches } from '../tenancy/isolation.js';
import type { ClientRegistry } from './client-registry.js';
import { buildEndSessionUrl, finishLogin, revokeTokens, startLogin, type LoginTransaction } from './flow.js';
import { providerFailure } from './provider-failure.js';
import { claimsToIdentity, regroup } from './identity.js';
import { identityHeaders } from '../proxy/identity-headers.js';
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
  /** Where failures off the request path are reported. */
  log?: { warn(obj: object, msg: string): void };
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

/** Sessions whose upstream identity headers are kept ready. */
const IDENTITY_HEADER_CACHE_MAX = 10_000;

/** Touch a session in the store at most this often (it is read on every request). */
const TOUCH_EVERY_MS = 60_000;

/** Constant-time comparison of two strings. */
function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The callback as a URL with its (validated) parameters in the query, whether they came in the query or a form_post body. */
function callbackUrlOf(origin: string, rawPath: string, params: CallbackParams): URL {
  const url = new URL(`${origin}${rawPath}`);
  for (const [k, v] of Object.entries(params)) if (typeof v === 'string') url.searchParams.set(k, v);
  return url;
}

/** Authenticate mode, as the pipeline uses it: sessions to look up and the handlers of its decisions. */
export interface Authenticator {
  sessions: SessionAccess;
  handlers: AuthenticateHandlers;
  /** Whether a session is still valid and backed by the directory (for long-lived connections). */
  stillValid(sessionId: string): Promise<boolean>;
}

/** Builds authenticate mode; nothing is registered here (the gate plugin calls it). */
export function createAuthenticator(opts: AuthenticateOptions): Authenticator {
  const now = opts.now ?? Date.now;
  const jar = cookieJar(opts.secureCookies);
  const sessionCookie = jar.name(opts.sessionCookie);
  const txCookie = jar.name(`${opts.sessionCookie}_tx`);
  const hiddenCookies = [sessionCookie, txCookie] as const;
  const { metrics } = opts;
  /**
   * The upstream headers of each live session, with the tenant record they were
   * computed under: when the directory hands out a new record (any write to the
   * company or its providers), groups and admin are recomputed.
   */
  const headersBySession = new Map<string, { record: TenantRecord; headers: Record<string, string> }>();
  const identityOf = (session: LoadedSession): Record<string, string> => headersBySession.get(session.id)?.headers ?? identityHeaders(session.data);

  const refuse = (ctx: SiteContext, reply: FastifyReply, status: number, tenant: string, reason: LoginReason, message: string, detail?: string, providerError?: string) => {
    const outcome = status >= 500 ? 'error' : 'refused';
    metrics.loginOutcome(tenant, outcome, reason);
    reply.request.log.warn({ audit: 'login', tenant, outcome, reason, detail, ...(providerError ? { providerError } : {}) }, 'login refused');
    reply.header('set-cookie', jar.clear(txCookie));
    if (status === 503) reply.header('retry-after', '10');
    return sendPage(reply, status, {
      title: status === 403 ? 'Access denied' : status === 502 ? 'Sign-in is misconfigured' : status >= 500 ? 'Sign-in is unavailable' : 'Sign-in could not be completed',
      paragraphs: [message.charAt(0).toUpperCase() + message.slice(1)],
      link: { href: loginLocation(tenant, {}), text: 'Back to sign-in' },
      ...(tenant ? { tenantName: ctx.site.tenant?.company.sso.display_name ?? tenant } : {}),
    });
  };

  /** Ends a session the directory no longer backs (best effort: it is refused either way). */
  function drop(id: string, data: Readonly<SessionData>, why: string): null {
    headersBySession.delete(id);
    opts.log?.warn({ audit: 'session', tenant: data.tenant, subject: data.identity.subject, reason: why }, 'session ended: the directory no longer backs it');
    opts.sessions.destroy(id).then(() => opts.metrics.sessionsEnded('tenant_deleted', 1), () => undefined);
    return null;
  }

  /** Accepts a session that is valid on this host and still backed by the directory's current record of its tenant. */
  function settle(id: string, data: Readonly<SessionData>, record: TenantRecord | undefined): LoadedSession | null {
    const provider = providerOfSession(data, record);
    if (!provider || !record) return drop(id, data, 'tenant_or_provider_gone');
    const known = headersBySession.get(id);
    if (known?.record !== record) {
      const identity = data.idpGroups ? regroup(data.identity, data.idpGroups, provider.configuration, record.company.sso) : data.identity;
      if (!identity) return drop(id, data, 'no_group');
      if (headersBySession.size >= IDENTITY_HEADER_CACHE_MAX) headersBySession.clear();
      headersBySession.set(id, { record, headers: identityHeaders({ ...data, identity }) });
    }
    const t = now();
    if (t - data.lastSeenAt > TOUCH_EVERY_MS) {
      opts.sessions.touch(id, t, opts.idleSeconds).catch((err: unknown) => {
        opts.log?.warn({ err: err instanceof Error ? err.message : String(err) }, 'session activity could not be recorded');
      });
    }
    return { id, data };
  }

  function acceptSession(ctx: SiteContext, id: string, data: Readonly<SessionData> | undefined): LoadedSession | null | Promise<LoadedSession | null> {
    if (!data || !sessionValidOnHost(data.tenant, ctx.site.tenant?.company.sso.tenant)) return null;
    const record = ctx.site.tenant ?? opts.directory.peek('tenant', data.tenant);
    if (record !== NOT_CACHED) return settle(id, data, record);
    return opts.directory.tenant(data.tenant).then((r) => settle(id, data, r));
  }

  async function stillValid(id: string): Promise<boolean> {
    const data = await opts.sessions.get(id);
    if (!data || data.expiresAt <= now()) return false;
    return settle(id, data, await opts.directory.tenant(data.tenant)) !== null;
  }

  /** The request's valid session: at once when the store and the directory can tell, later otherwise. */
  function load(ctx: SiteContext): LoadedSession | null | Promise<LoadedSession | null> {
    const id = readCookie(ctx.headers.cookie, sessionCookie);
    if (!id) return null;
    const { sessions } = opts;
    if (sessions.peek) return acceptSession(ctx, id, sessions.peek(id));
    return sessions.get(id).then((data) => acceptSession(ctx, id, data));
  }

  const handlers: AuthenticateHandlers = {
    async login(ctx, reply, { tenant, redirect, loginHint }) {
      const tenantId = tenant.company.sso.tenant;
      const providers = tenant.providers;
      const wanted = singleQueryParam(ctx.query, 'provider');
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
        config = await opts.registry.get(provider, tenantId);
      } catch (err) {
        reply.request.log.error({ tenant: tenantId, err: err instanceof GatewayError ? err.detail ?? err.message : String(err) }, 'identity provider unavailable');
        const f = providerFailure(err);
        return refuse(ctx, reply, f.status, tenantId, f.reason, f.message, f.detail, f.providerError);
      }
      const clientId = provider.configuration.client_id;
      const redirectUri = `${ctx.site.origin}/callback_${encodeURIComponent(clientId)}`;
      const scopes = provider.configuration.scope ? provider.configuration.scope.split(' ') : opts.scopes;
      const { url, transaction } = await startLogin(config, { redirectUri, scopes, ...(loginHint ? { loginHint } : {}) });
      const sealed: SealedTransaction = {
        id: randomBytes(16).toString('base64url'),
        tx: transaction,
        tenant: tenantId,
        clientId,
        host: ctx.site.host,
        redirectUri,
        ...(redirect ? { redirect } : {}),
      };
      reply.request.log.info({ audit: 'login', tenant: tenantId, outcome: 'started', clientId }, 'login started');
      return reply
        .header('set-cookie', jar.set(txCookie, opts.sealer.seal(sealed, opts.transactionSeconds, now()), { maxAge: opts.transactionSeconds }))
        .header('cache-control', 'no-store')
        .redirect(url, 302);
    },

    async callback(ctx, reply, client: ClientRecord, params: CallbackParams) {
      const tenantId = client.tenant ?? '';
      const raw = readCookie(ctx.headers.cookie, txCookie);
      const sealed = raw ? opts.sealer.unseal<SealedTransaction>(raw, now()) : undefined;
      const clientId = client.provider.configuration.client_id;
      if (!sealed) return refuse(ctx, reply, 400, tenantId, 'no_transaction', 'This sign-in link has expired or was already used. Please start again.');
      if (!transactionMatches(sealed, { clientId, host: ctx.site.host, tenant: tenantId })) {
        return refuse(ctx, reply, 400, tenantId, 'transaction_mismatch', 'This sign-in response does not belong to the sign-in you started. Please start again.');
      }
      if (!sameText(params.state, sealed.tx.state)) {
        return refuse(ctx, reply, 400, tenantId, 'state_mismatch', 'This sign-in response does not belong to the sign-in you started. Please start again.');
      }
      if (!(await opts.sessions.consumeOnce(`tx:${sealed.id}`, opts.transactionSeconds))) {
        return refuse(ctx, reply, 400, tenantId, 'replayed', 'This sign-in response was already used. Please start again.');
      }
      if (params.error !== undefined) {
        return refuse(ctx, reply, 400, tenantId, `provider_error:${providerErrorCode(params.error)}`, 'The identity provider did not complete the sign-in.');
      }
      const tenant = ctx.site.tenant ?? (await opts.directory.tenant(tenantId));
      if (!tenant) return refuse(ctx, reply, 400, tenantId, 'unknown_tenant', 'This organisation is no longer set up for sign-in.');
      let result;
      try {
        result = await finishLogin(await opts.registry.client(client.provider, tenantId), {
          callbackUrl: callbackUrlOf(ctx.site.origin, ctx.path, params),
          transaction: sealed.tx,
          expectedRedirectUri: sealed.redirectUri,
        });
      } catch (err) {
        const f = providerFailure(err);
        return refuse(ctx, reply, f.status, tenantId, f.reason, f.message, f.detail, f.providerError);
      }
      const decided = claimsToIdentity(result.claims, client.provider.configuration, tenant.company.sso, client.provider.provider);
      if (!decided.ok) {
        return refuse(ctx, reply, 403, tenantId, decided.refusal.reason, decided.refusal.message, decided.refusal.detail);
      }
      const previous = readCookie(ctx.headers.cookie, sessionCookie);
      if (previous) await opts.sessions.destroy(previous);
      const t = now();
      const data: SessionData = {
        identity: decided.identity,
        idpGroups: decided.idpGroups,
        tenant: tenant.company.sso.tenant,
        company: tenant.company.company,
        clientId,
        providerId: client.provider.configuration.id,
        ...(typeof result.claims['sid'] === 'string' ? { sid: result.claims['sid'] } : {}),
        idToken: result.idToken,
        ...(result.accessToken ? { accessToken: result.accessToken } : {}),
        ...(result.refreshToken ? { refreshToken: result.refreshToken } : {}),
        createdAt: t,
        lastSeenAt: t,
        expiresAt: t + opts.sessionTtlSeconds * 1000,
      };
      const id = await opts.sessions.create(data, opts.idleSeconds);
      metrics.loginOutcome(tenantId, 'success', 'ok');
      reply.request.log.info({ audit: 'login', tenant: tenantId, outcome: 'success', subject: decided.identity.subject, admin: decided.identity.admin, emailDropped: decided.emailDropped }, 'login succeeded');
      return reply
        .header('set-cookie', [jar.clear(txCookie), jar.set(sessionCookie, id, { maxAge: opts.sessionTtlSeconds })])
        .header('cache-control', 'no-store')
        .redirect(sealed.redirect ?? '/', 302);
    },

    async logout(ctx, reply) {
      const session = await load(ctx);
      const hostTenant = ctx.site.tenant?.company.sso.tenant;
      reply.header('set-cookie', jar.clear(sessionCookie)).header('cache-control', 'no-store');
      if (!session) return reply.redirect(hostTenant ? loginLocation(hostTenant, {}) : '/login', 302);
      await opts.sessions.destroy(session.id);
      opts.metrics.sessionsEnded('logout', 1);
      headersBySession.delete(session.id);
      const { data } = session;
      reply.request.log.info({ audit: 'logout', tenant: data.tenant, subject: data.identity.subject }, 'logout');
      const local = loginLocation(data.tenant, {});
      const client = await opts.directory.client(data.clientId).catch(() => undefined);
      if (!client) return reply.redirect(local, 302);
      let config;
      try {
        config = await opts.registry.get(client.provider, data.tenant);
      } catch {
        return reply.redirect(local, 302);
      }
      void revokeTokens(config, { ...(data.accessToken ? { accessToken: data.accessToken } : {}), ...(data.refreshToken ? { refreshToken: data.refreshToken } : {}) }, opts.httpTimeoutMs);
      if (client.provider.configuration.logout_from_provider) {
        const url = buildEndSessionUrl(config, {
          postLogoutRedirectUri: `${ctx.site.origin}${local}`,
          clientId: data.clientId,
          ...(data.idToken ? { idTokenHint: data.idToken } : {}),
        });
        if (url) return reply.redirect(url, 302);
      }
      return reply.redirect(local, 302);
    },
  };

  return { sessions: { load, identityOf, hiddenCookies }, handlers, stillValid };
}
