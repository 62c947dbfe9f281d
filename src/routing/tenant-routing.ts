/**
 * The gateway's decisions on every public request, after the host is known.
 *
 * Rules, in order:
 * 1. `/callback_<client_id>` (and anything that decodes or normalises to it) passes
 *    only when the path is well formed, the client_id is a known provider's, the
 *    provider's tenant is the host's tenant (on a tenant host), and the query (or the
 *    form_post body) is `code`+`state` or `error`+`state`. Anything else is a 400
 *    page, a log line and a metric by reason; the upstream never sees it.
 * 2. With `sso.tenant_login`: `/login/<tenant>` for an existing tenant goes on (to the
 *    webapp in route mode, to the identity provider in authenticate mode); an unknown
 *    tenant, a malformed path or another tenant's login on a tenant host is a 404 page.
 *    `/login` on a tenant host goes to `/login/<tenant>`.
 * 3. With `sso.tenant_login`: a page navigation on a tenant host without a session
 *    goes to `302 /login/<tenant>` with the original path as a safe `redirect`.
 * 4. A `redirect` query parameter that is not a safe relative path is removed before
 *    the request goes upstream.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { Readable } from 'node:stream';
import type { CachedDirectory } from '../directory/cached-directory.js';
import type { ClientRecord, TenantRecord } from '../directory/types.js';
import { StoreUnavailableError } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import { sendPage } from '../pages/render.js';
import { parseCallbackPath, splitRawUrl, validateCallbackQuery, type CallbackParams } from '../tenancy/callback.js';
import { percentDecode } from '../tenancy/percent.js';
import { safeRelativeRedirect } from '../tenancy/redirect.js';
import { isValidTenantId, tenantKey } from '../tenancy/tenant-id.js';
import { sendUnavailable } from './host-context.js';
import { decisionHook, type Decision } from './decision-hook.js';
import { loginLocation } from './login-location.js';
import { dropUnsafeRedirect, isPageNavigation, singleQueryParam } from './request-shape.js';

/** What authenticate mode plugs into the routing decisions. */
export interface AuthenticateHooks {
  /** Starts a login at the tenant's identity provider (or shows the chooser). */
  login(req: FastifyRequest, reply: FastifyReply, tenant: TenantRecord, opts: { redirect?: string; loginHint?: string }): Promise<unknown>;
  /** Completes a validated callback. */
  callback(req: FastifyRequest, reply: FastifyReply, client: ClientRecord, params: CallbackParams): Promise<unknown>;
  /** Whether the request carries a session valid on this host. */
  hasSession(req: FastifyRequest): boolean | Promise<boolean>;
}

/** Options of the routing plugin. */
export interface TenantRoutingOptions {
  directory: CachedDirectory;
  metrics: Metrics;
  tenantLogin: boolean;
  allowSettingsProviders: boolean;
  /** Route mode: the webapp's session cookie. */
  webappCookie: string;
  bodyLimit: number;
  anyHostPaths: ReadonlySet<string>;
  /** Present in authenticate mode. */
  authenticate?: AuthenticateHooks;
  /** Per-client limits of logins and callbacks. */
  limits?: { login: RequestLimiter; callback: RequestLimiter };
}

/** A per-client rate limit check (from @fastify/rate-limit's `createRateLimit`). */
export type RequestLimiter = (req: FastifyRequest) => Promise<{ isAllowed: boolean; isExceeded?: boolean; ttlInSeconds?: number }>;

declare module 'fastify' {
  interface FastifyRequest {
    /** Set for a POST callback whose form body must be validated before it goes on. */
    callbackClient?: ClientRecord;
  }
}

const FORM = 'application/x-www-form-urlencoded';

/** Decodes (up to three times), collapses slashes and resolves dot segments: what a lenient router would see. */
function looseCanonical(path: string): string {
  if (!/[%\\]|\/\/|\/\.|^[^/]/.test(path)) {
    const lower = path.toLowerCase();
    return lower.length > 1 && lower.endsWith('/') ? lower.slice(0, -1) : lower;
  }
  let decoded = path;
  for (let i = 0; i < 3 && decoded.includes('%'); i++) decoded = percentDecode(decoded, 'lenient') ?? decoded;
  decoded = decoded.replace(/\\/g, '/');
  const out: string[] = [];
  for (const seg of decoded.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return `/${out.join('/')}`.toLowerCase();
}

async function readBody(stream: NodeJS.ReadableStream, limit: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function tenantRouting(app: FastifyInstance, opts: TenantRoutingOptions): Promise<void> {
  const { directory, metrics } = opts;

  const refuseCallback = (req: FastifyRequest, reply: FastifyReply, reason: string, tenant?: string) => {
    metrics.callbackRefused(reason, tenant);
    req.log.warn({ reason, tenant }, 'callback refused');
    const home = req.gate.tenant ? `/login/${encodeURIComponent(req.gate.tenant.company.sso.tenant)}` : '/login';
    return sendPage(reply, 400, {
      title: 'Sign-in could not be completed',
      paragraphs: ['The sign-in response was not valid. Please start again.'],
      link: { href: home, text: 'Back to sign-in' },
    });
  };

  const notFound = (reply: FastifyReply) =>
    sendPage(reply, 404, { title: 'Unknown organisation', paragraphs: ['There is no sign-in page at this address.'], link: { href: '/login', text: 'Find your organisation' } });

  async function limited(req: FastifyRequest, reply: FastifyReply, limiter: RequestLimiter | undefined): Promise<boolean> {
    if (!limiter) return false;
    const r = await limiter(req);
    if (r.isAllowed || !r.isExceeded) return false;
    req.log.warn('rate limit exceeded');
    sendPage(reply.header('retry-after', String(Math.max(1, r.ttlInSeconds ?? 60))), 429, {
      title: 'Too many attempts',
      paragraphs: ['Please wait a minute before trying again.'],
    });
    return true;
  }

  async function handleCallback(req: FastifyRequest, reply: FastifyReply, path: string, query: string | undefined) {
    if (await limited(req, reply, opts.limits?.callback)) return reply;
    const parsed = parseCallbackPath(path);
    if ('error' in parsed) return refuseCallback(req, reply, parsed.error);
    const client = await directory.client(parsed.clientId);
    if (!client || (client.tenant === undefined && !opts.allowSettingsProviders)) return refuseCallback(req, reply, 'unknown_client');
    const hostTenant = req.gate.tenant?.company.sso.tenant;
    if (hostTenant !== undefined && (client.tenant === undefined || tenantKey(client.tenant) !== tenantKey(hostTenant))) {
      return refuseCallback(req, reply, 'wrong_tenant', hostTenant);
    }
    if (req.method === 'GET') {
      const v = validateCallbackQuery(query ?? '');
      if (!v.ok) return refuseCallback(req, reply, v.reason, client.tenant);
      if (opts.authenticate) return opts.authenticate.callback(req, reply, client, v.params);
      return undefined;
    }
    if (req.method === 'POST') {
      const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== FORM || (query !== undefined && query !== '')) return refuseCallback(req, reply, 'bad_form_post', client.tenant);
      req.callbackClient = client;
      return undefined;
    }
    return refuseCallback(req, reply, 'bad_method', client.tenant);
  }

  async function handleLogin(req: FastifyRequest, reply: FastifyReply, path: string, query: string | undefined, canonical: string) {
    const hostTenant = req.gate.tenant;
    if (canonical === '/login' && (path === '/login' || path === '/login/')) {
      if (!hostTenant) return undefined;
      const redirect = safeRelativeRedirect(singleQueryParam(query, 'redirect'));
      return reply.redirect(loginLocation(hostTenant.company.sso.tenant, { redirect }), 302);
    }
    if (await limited(req, reply, opts.limits?.login)) return reply;
    const m = /^\/login\/([^/]+)\/?$/.exec(path);
    const id = m ? percentDecode(m[1]!, 'strict') : undefined;
    if (id === undefined || !isValidTenantId(id)) return notFound(reply);
    if (hostTenant && tenantKey(hostTenant.company.sso.tenant) !== tenantKey(id)) return notFound(reply);
    const tenant = hostTenant ?? (await directory.tenant(id));
    if (!tenant) return notFound(reply);
    if (opts.authenticate) {
      const redirect = safeRelativeRedirect(singleQueryParam(query, 'redirect'));
      const loginHint = singleQueryParam(query, 'login_hint');
      return opts.authenticate.login(req, reply, tenant, { ...(redirect ? { redirect } : {}), ...(loginHint ? { loginHint } : {}) });
    }
    return undefined;
  }

  /** Removes an unsafe `redirect` parameter from what goes upstream. */
  function cleanQuery(req: FastifyRequest, query: string | undefined): undefined {
    if (query === undefined) return undefined;
    const cleaned = dropUnsafeRedirect(query);
    if (cleaned.changed) {
      req.log.info('unsafe redirect parameter dropped');
      req.proxyView = { ...req.proxyView, upstreamQuery: cleaned.query };
    }
    return undefined;
  }

  function toLogin(req: FastifyRequest, reply: FastifyReply, tenant: TenantRecord, path: string, query: string | undefined): FastifyReply {
    const target = path === '/' && !query ? undefined : safeRelativeRedirect(req.url);
    return reply.redirect(loginLocation(tenant.company.sso.tenant, { redirect: target }), 302);
  }

  function decide(req: FastifyRequest, reply: FastifyReply): Decision {
    const { path, query } = splitRawUrl(req.url);
    if (opts.anyHostPaths.has(path) && (req.method === 'GET' || req.method === 'HEAD')) return undefined;
    const canonical = looseCanonical(path);
    if (canonical.startsWith('/callback_')) return handleCallback(req, reply, path, query);
    if (opts.tenantLogin && (canonical === '/login' || canonical.startsWith('/login/') || /^\/+login(\/|$)/i.test(path))) {
      return handleLogin(req, reply, path, query, canonical).then(() => (reply.sent ? undefined : cleanQuery(req, query)));
    }
    const tenant = req.gate.tenant;
    if (opts.tenantLogin && tenant && isPageNavigation(req.method, path, req.headers)) {
      const signedIn = opts.authenticate ? opts.authenticate.hasSession(req) : hasWebappSession(req);
      if (typeof signedIn !== 'boolean') return signedIn.then((yes) => (yes ? cleanQuery(req, query) : toLogin(req, reply, tenant, path, query)));
      if (!signedIn) return toLogin(req, reply, tenant, path, query);
    }
    return cleanQuery(req, query);
  }

  const hasWebappSession = (req: FastifyRequest) => {
    const cookie = req.headers.cookie;
    return typeof cookie === 'string' && cookie.includes(opts.webappCookie) && readWebappCookie(cookie);
  };
  const readWebappCookie = (cookie: string) =>
    cookie.split(';').some((p) => {
      const eq = p.indexOf('=');
      return eq > 0 && p.slice(0, eq).trim() === opts.webappCookie && p.slice(eq + 1).trim() !== '';
    });

  app.addHook(
    'onRequest',
    decisionHook(decide, (err, _req, reply) => {
      if (!(err instanceof StoreUnavailableError)) return false;
      sendUnavailable(reply);
      return true;
    }),
  );

  /** Validates a form_post callback body before it goes on; other requests pass untouched. */
  async function checkFormCallback(req: FastifyRequest, reply: FastifyReply, client: ClientRecord, payload: NodeJS.ReadableStream): Promise<Readable> {
    const body = await readBody(payload, opts.bodyLimit);
    const v = body === undefined ? ({ ok: false, reason: 'too_long' } as const) : validateCallbackQuery(body);
    if (!v.ok) {
      await refuseCallback(req, reply, v.reason, client.tenant);
      return Readable.from([]);
    }
    if (opts.authenticate) {
      await opts.authenticate.callback(req, reply, client, v.params);
      return Readable.from([]);
    }
    const replay = Readable.from([Buffer.from(body!, 'utf8')]);
    (replay as Readable & { receivedEncodedLength?: number }).receivedEncodedLength = Buffer.byteLength(body!);
    return replay;
  }

  app.addHook('preParsing', (req, reply, payload, done) => {
    const client = req.callbackClient;
    if (!client) return done(null, payload);
    checkFormCallback(req, reply, client, payload).then(
      (replay) => done(null, replay),
      (err: unknown) => done(err instanceof Error ? err : new Error(String(err))),
    );
  });
}

/** Registers the routing decisions; after host-context, before the proxy. */
export default fp(tenantRouting, { name: 'tenant-gate-tenant-routing', fastify: '5.x', dependencies: ['tenant-gate-host-context'] });
