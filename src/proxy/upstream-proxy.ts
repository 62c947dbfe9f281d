/**
 * Forwarding to the upstreams with @fastify/http-proxy.
 *
 * Rules: `/api/*` goes to upstreams.apiserver with `/api` stripped (when configured),
 * everything else to upstreams.webapp; method, path, query, body and websocket
 * upgrades are kept; hop-by-hop headers are not forwarded either way; identity and
 * forwarding headers sent by the client are always removed, in every spelling
 * (header-hygiene.ts), and only the gateway's own verified identity, its signed
 * assertion and X-Forwarded-For/-Proto/-Host are added; a websocket upgrade reaches
 * the upstream with exactly the headers and query an HTTP request would; X-Forwarded-For/-Proto/-Host
 * describe the client as the gateway saw it; an upstream that is down answers 502,
 * one that is too slow 504, both as a page and never after a retry.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction, RawServerBase, RouteGenericInterface } from 'fastify';
import httpProxy from '@fastify/http-proxy';
import fp from 'fastify-plugin';
import type { IncomingHttpHeaders } from 'node:http';
import type { UpstreamObserver } from '../observability/request-timing.js';
import { sendPage } from '../pages/render.js';
import { readCookie } from '../routing/request-shape.js';
import type { UpstreamView } from '../pipeline/decision.js';
import { headerFilter } from './header-hygiene.js';
import { FairShare, fairShareHook, type FairShareLimits } from './fair-share.js';
import { idleTimeouts } from './idle-timeouts.js';

/** Options of the proxy plugin. */
interface UpstreamProxyOptions {
  webapp: string;
  apiserver?: string;
  connectTimeoutMs: number;
  timeoutMs: number;
  /** Checks (and may rewrite) each Location the upstream answers with. */
  guardLocation?: (req: FastifyRequest, location: string) => string;
  /** Told when each upstream request is sent and answered (metrics, traces). */
  observer?: UpstreamObserver;
  /** Drop request headers whose name contains `_` (public.dropUnderscoreHeaders). */
  dropUnderscoreHeaders: boolean;
  /** Each upstream's fair share (pool size, caps per client and session, queue wait). */
  share?: FairShareLimits;
  /** Client-side idle timeout of a proxied exchange (body and slow reader), ms; 0 = none. */
  bodyIdleTimeoutMs?: number;
  /** Cookie whose value names the session in route mode (the webapp's). */
  sessionCookie?: string;
}

/** The Cookie header without the pairs of these names (pairs and their spacing otherwise kept). */
function stripCookies(cookieHeader: string, names: readonly string[]): string {
  const kept: string[] = [];
  for (let start = 0; start <= cookieHeader.length; ) {
    let end = cookieHeader.indexOf(';', start);
    if (end < 0) end = cookieHeader.length;
    const part = cookieHeader.slice(start, end);
    const eq = part.indexOf('=');
    if (!names.includes((eq < 0 ? part : part.slice(0, eq)).trim())) kept.push(part);
    start = end + 1;
  }
  return kept.join(';').trim();
}

/** Sets the view's forwarding, cookie and identity headers on `out` (the client's headers, already filtered). */
function applyView(req: FastifyRequest, prior: string | string[] | undefined, out: IncomingHttpHeaders): IncomingHttpHeaders {
  const view: UpstreamView | undefined = req.gate.view;
  const client = req.gate?.clientAddress ?? req.ip;
  const peer = req.socket.remoteAddress;
  out['x-forwarded-for'] = prior && client !== peer ? `${String(prior)}, ${peer ?? ''}` : client;
  if (view?.publicScheme) out['x-forwarded-proto'] = view.publicScheme;
  if (view?.publicHost) out['x-forwarded-host'] = view.publicHost;
  if (view?.hiddenCookies && typeof out.cookie === 'string') {
    const rest = stripCookies(out.cookie, view.hiddenCookies);
    if (rest) out.cookie = rest;
    else delete out.cookie;
  }
  if (view?.identity) Object.assign(out, view.identity);
  if (view?.assertion) out['x-auth-request-jwt'] = view.assertion;
  return out;
}

/** The upstream request headers of an HTTP request: the client's, filtered, plus the view. */
function httpHeaderRewriter(drop: (name: string) => boolean, observer: UpstreamObserver | undefined) {
  return (proxied: ProxyRequest, headers: IncomingHttpHeaders): IncomingHttpHeaders => {
    const req = http1(proxied);
    const out: IncomingHttpHeaders = {};
    for (const name in headers) if (!drop(name)) out[name] = headers[name];
    applyView(req, req.headers['x-forwarded-for'], out);
    observer?.sent(req, out);
    return out;
  };
}

/** Handshake headers the websocket client writes itself. */
const WS_OWN = new Set(['host', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol', 'content-length']);

/**
 * The upstream handshake headers of a websocket upgrade: the same view as an HTTP
 * request (@fastify/http-proxy otherwise passes the raw Cookie header only).
 */
function wsHeaderRewriter(drop: (name: string) => boolean) {
  return (_base: IncomingHttpHeaders, proxied: ProxyRequest): IncomingHttpHeaders => {
    const req = http1(proxied);
    const headers = req.headers;
    const named = typeof headers.connection === 'string' ? headers.connection.toLowerCase().split(',').map((s) => s.trim()) : [];
    const out: IncomingHttpHeaders = {};
    for (const name in headers) if (!drop(name) && !WS_OWN.has(name) && !named.includes(name)) out[name] = headers[name];
    return applyView(req, headers['x-forwarded-for'], out);
  };
}

const HOP_BY_HOP_RESPONSE = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade']);

function responseRewriter(guard: ((req: FastifyRequest, location: string) => string) | undefined, observer: UpstreamObserver | undefined) {
  return (headers: IncomingHttpHeaders, proxied?: ProxyRequest): IncomingHttpHeaders => {
    const req = proxied && http1(proxied);
    if (req) observer?.answered(req);
    const out: IncomingHttpHeaders = {};
    for (const name in headers) if (!HOP_BY_HOP_RESPONSE.has(name)) out[name] = headers[name];
    if (req && guard && typeof out.location === 'string') out.location = guard(req, out.location);
    return out;
  };
}

/** A request or reply as @fastify/reply-from types it (any server kind). */
type ProxyRequest = FastifyRequest<RouteGenericInterface, RawServerBase>;
type ProxyReply = FastifyReply<RouteGenericInterface, RawServerBase>;

/** The gateway's listeners are HTTP/1.1 servers, so the proxy's requests are theirs. */
function http1(req: ProxyRequest): FastifyRequest {
  return req as FastifyRequest;
}

/** The upstream query: the view's override (unsafe parameters removed) or the client's. */
function queryString(_search: string | undefined, reqUrl: string, req: ProxyRequest): string {
  const override = req.gate.view?.query;
  if (override !== undefined) return override;
  const i = reqUrl.indexOf('?');
  return i >= 0 ? reqUrl.slice(i + 1) : '';
}

function onError(proxyReply: ProxyReply, { error: failure }: { error: Error }): void {
  const reply = proxyReply as FastifyReply;
  const error: Error & { statusCode?: number; code?: string } = failure;
  if (reply.raw.headersSent || reply.raw.destroyed) return;
  const timeout = error.statusCode === 504 || error.code === 'UND_ERR_CONNECT_TIMEOUT';
  reply.request.log.warn({ code: error.code, upstreamError: error.message }, timeout ? 'upstream timed out' : 'upstream unavailable');
  sendPage(reply, timeout ? 504 : 502, {
    title: timeout ? 'The application is taking too long' : 'The application is unavailable',
    paragraphs: ['Please try again in a moment.'],
  });
}

async function upstreamProxy(app: FastifyInstance, opts: UpstreamProxyOptions): Promise<void> {
  const drop = headerFilter({ dropUnderscoreHeaders: opts.dropUnderscoreHeaders });
  const sessionKey = (req: FastifyRequest) => req.gate.view?.sessionId ?? (opts.sessionCookie ? readCookie(req.headers.cookie, opts.sessionCookie) : undefined);
  const idleMs = opts.bodyIdleTimeoutMs ?? 0;
  const arm = idleMs > 0 ? idleTimeouts(idleMs) : undefined;
  const preHandler = () => {
    const admit = opts.share ? fairShareHook(new FairShare(opts.share), sessionKey) : undefined;
    return (req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
      if (arm && req.headers.upgrade === undefined) arm(reply);
      if (admit) admit(req, reply, done);
      else done();
    };
  };
  const common = {
    undici: {
      connections: opts.share?.connections ?? 128,
      pipelining: 1,
      connect: { timeout: opts.connectTimeoutMs },
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
    },
    disableRequestLogging: true,
    websocket: true,
    wsClientOptions: { rewriteRequestHeaders: wsHeaderRewriter(drop), queryString },
    replyOptions: {
      rewriteRequestHeaders: httpHeaderRewriter(drop, opts.observer),
      rewriteHeaders: responseRewriter(opts.guardLocation, opts.observer),
      queryString,
      onError,
      retryDelay: () => null,
    },
  };
  if (opts.apiserver) {
    await app.register(httpProxy, { ...common, preHandler: preHandler(), upstream: opts.apiserver, prefix: '/api', rewritePrefix: '' });
  }
  await app.register(httpProxy, { ...common, preHandler: preHandler(), upstream: opts.webapp, prefix: '/' });
}

/** Registers the catch-all proxy routes; register it after every route the gateway answers itself. */
export default fp(upstreamProxy, { name: 'tenant-gate-upstream-proxy', fastify: '5.x' });
