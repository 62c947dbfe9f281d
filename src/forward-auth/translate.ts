/**
 * The shared translator of the forward-auth endpoints: a described request is decided
 * by the same pipeline as the built-in proxy, and the decision becomes an answer a
 * proxy in front understands.
 *
 * Rules:
 * - the describing headers are believed only from a peer in `public.trustedProxies`;
 *   from anyone else, or when one is missing or malformed, the answer is 403;
 * - the described target is normalised (./target.ts) before anything is decided;
 * - a pass is a 200 carrying every identity header of authenticate mode, present and
 *   empty when unknown (none in route mode); a pass whose query the built-in proxy
 *   would have rewritten (unsafe `redirect`) is refused, since a proxy cannot rewrite it;
 * - only an authenticate-mode 200 for a session may be cached (`max-age=cacheSeconds`
 *   when above 0); every other answer is `no-store`;
 * - a redirect is an absolute URL on the described host whose path is the gateway's
 *   (`/login/<tenant>…`); decisions the gateway completes itself (login start,
 *   callback, logout) send the browser to the same, normalised, address, which the
 *   proxy routes to the gateway;
 * - nginx (`auth-request`) gets only 200, 401 (with `X-Auth-Request-Redirect` for a
 *   navigation), 403 and 503; the other families get what the built-in proxy answers;
 * - every answer has a body of known length (Content-Length in its headers, never chunked).
 */
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AssertionFor } from '../assertion/plugin.js';
import type { IncomingHttpHeaders } from 'node:http';
import { StoreUnavailableError } from '../errors.js';
import { isPromise } from '../is-promise.js';
import { PAGE_HEADERS, renderPage } from '../pages/render.js';
import { createContext, type RequestContext } from '../pipeline/context.js';
import type { Decider } from '../pipeline/decide.js';
import type { Decision, UpstreamView } from '../pipeline/decision.js';
import { IDENTITY_HEADERS } from '../proxy/identity-headers.js';
import { normaliseTarget } from './target.js';
import type { PeerCheck } from './trusted-peers.js';

/** Every identity header of authenticate mode, in the order they are sent. */
export const FORWARD_IDENTITY_HEADERS = [...IDENTITY_HEADERS, 'x-auth-request-jwt'] as const;

/** The family of proxies an endpoint serves. */
export type Family = 'auth-request' | 'forward-auth' | 'ext-authz';

/** A request as the describing headers of one family tell it; undefined when not told. */
export interface Described {
  method: string | undefined;
  /** `http` or `https`, as the proxy saw the client. */
  proto: string | undefined;
  /** Host as the client sent it (port included). */
  host: string | undefined;
  /** Raw origin-form target (path and query). */
  uri: string | undefined;
}

/** Who asks: an auth request as either server that takes it sees it (./fast-path.ts, the fastify routes). */
export interface Asker {
  /** The connection's own peer address (never a forwarded one). */
  peer: string | undefined;
  headers: IncomingHttpHeaders;
  /** The client's address as the trusted proxies tell it (fastify's `req.ip`): per-client limits key on it. */
  clientAddress(): string;
  /** The request's logger (made when first needed). */
  log(): Pick<FastifyBaseLogger, 'warn' | 'error'>;
}

/** An answer, ready to send: its headers include Content-Length. */
export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** An answer whose headers (a fresh object) gain the body's Content-Length. */
function sized(status: number, headers: Record<string, string>, body: string): Answer {
  headers['content-length'] = body === '' ? '0' : String(Buffer.byteLength(body));
  return { status, headers, body };
}

/** Settings of the translator. */
export interface TranslatorOptions {
  decider: Decider;
  mode: 'route' | 'authenticate';
  trusted: PeerCheck;
  /** max-age of authenticate-mode 200s for a session; 0: never cached. */
  cacheSeconds: number;
  /** The signed identity assertion of a pass (X-Auth-Request-Jwt), when it is on. */
  assertion?: AssertionFor;
  /** An API server takes `/api/*` (as the pipeline's env says). */
  apiPrefix: boolean;
}

const NO_STORE = 'no-store';
const HOST_CHARS = /^[A-Za-z0-9.\-:[\]]+$/;
const METHOD = /^[A-Z]{1,16}$/;

function text(status: number, body: string, extra: Record<string, string> = {}): Answer {
  return sized(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': NO_STORE, ...extra }, body);
}

function pageAnswer(status: number, d: Extract<Decision, { kind: 'page' }> | undefined, title: string, paragraph: string): Answer {
  const page = d?.page ?? { title, paragraphs: [paragraph] };
  return sized(status, { ...PAGE_HEADERS, ...(d?.headers ?? {}) }, renderPage({ status, ...page }));
}

/** What the describing headers of one family say, or undefined when they say nothing usable. */
function described(d: Described): { method: string; host: string; uri: string; proto: 'http' | 'https' | undefined } | undefined {
  if (d.method === undefined || d.host === undefined || d.uri === undefined) return undefined;
  const method = d.method.toUpperCase();
  if (!METHOD.test(method) || !HOST_CHARS.test(d.host)) return undefined;
  const uri = normaliseTarget(d.uri);
  if (uri === undefined) return undefined;
  const proto = d.proto === 'http' || d.proto === 'https' ? d.proto : undefined;
  if (d.proto !== undefined && proto === undefined) return undefined;
  return { method, host: d.host, uri, proto };
}

/** Builds the translator shared by the three endpoints. */
export function createTranslator(opts: TranslatorOptions) {
  const { decider, mode, trusted, cacheSeconds, apiPrefix } = opts;
  const cached = cacheSeconds > 0 ? `max-age=${cacheSeconds}` : NO_STORE;

  function allowed(view: UpstreamView, jwt: string | undefined): Answer {
    const headers: Record<string, string> = { 'cache-control': NO_STORE };
    if (mode === 'authenticate') {
      const { identity, sessionId } = view;
      for (const name of FORWARD_IDENTITY_HEADERS) headers[name] = identity?.[name] ?? '';
      if (jwt !== undefined) headers['x-auth-request-jwt'] = jwt;
      if (identity && sessionId) headers['cache-control'] = cached;
    }
    return sized(200, headers, '');
  }

  /** A refusal: 403 for nginx, the family's page otherwise. */
  function refused(family: Family, status: number, title: string, paragraph: string, d?: Extract<Decision, { kind: 'page' }>): Answer {
    if (family === 'auth-request') return status === 503 ? text(503, 'unavailable', { 'retry-after': d?.headers?.['retry-after'] ?? '10' }) : text(403, 'forbidden');
    return pageAnswer(status, d, title, paragraph);
  }

  /** Sends the browser to `location` (a gateway path, or the described address itself). */
  function redirect(family: Family, ctx: RequestContext, proto: 'http' | 'https' | undefined, location: string, status: 302 | 303 = 302): Answer {
    const scheme = proto ?? ctx.site?.scheme ?? 'https';
    const path = location.startsWith('/') && !location.startsWith('//') ? location : '/';
    const url = `${scheme}://${ctx.host}${path}`;
    if (family === 'auth-request') return text(401, 'sign in first', { 'x-auth-request-redirect': url });
    return sized(status, { location: url, 'cache-control': NO_STORE, 'content-type': 'text/plain; charset=utf-8' }, '');
  }

  function translate(family: Family, ctx: RequestContext, proto: 'http' | 'https' | undefined, d: Decision): Answer {
    switch (d.kind) {
      case 'pass':
        if (d.view.query !== undefined) return refused(family, 400, 'Bad request', 'The address carries an unsafe redirect parameter.');
        return allowed(d.view, undefined);
      case 'local':
        return refused(family, 404, 'Not found', 'This address is served by the sign-in gateway itself.');
      case 'redirect':
        return redirect(family, ctx, proto, d.location, d.status);
      case 'page':
        return refused(family, d.status, d.page.title, '', d);
      case 'unauthorized':
        if (family === 'auth-request') return text(401, 'sign in first');
        return sized(401, { 'content-type': 'application/json; charset=utf-8', 'cache-control': NO_STORE }, '{"error":"unauthorized","message":"sign in first"}');
      case 'login':
      case 'callback':
      case 'logout':
        return redirect(family, ctx, proto, ctx.url);
      case 'form-callback':
        return refused(family, 403, 'Forbidden', 'Callbacks must be routed to the sign-in gateway.');
    }
  }

  function unavailable(asker: Asker, family: Family, err: unknown): Answer {
    if (!(err instanceof StoreUnavailableError)) throw err;
    asker.log().error({ err: err.detail }, 'an engine the decision needs is unavailable');
    return refused(family, 503, 'Service unavailable', 'Please try again in a moment.');
  }

  function decided(family: Family, ctx: RequestContext, proto: 'http' | 'https' | undefined, decision: Decision): Answer | Promise<Answer> {
    if (decision.kind === 'pass' && decision.view.query === undefined && opts.assertion && ctx.site && decision.view.identity) {
      const jwt = opts.assertion(ctx.site, decision.view);
      return isPromise(jwt) ? jwt.then((token) => allowed(decision.view, token)) : allowed(decision.view, jwt);
    }
    return translate(family, ctx, proto, decision);
  }

  /** Decides a described request and answers it: at once when nothing needs I/O (a cached tenant, an in-process session). */
  function answer(family: Family, asker: Asker, told: Described): Answer | Promise<Answer> {
    if (!trusted(asker.peer)) {
      asker.log().warn({ family, peer: asker.peer }, 'forward-auth request from an untrusted address refused');
      return refused(family, 403, 'Forbidden', 'This endpoint answers only the proxies the gateway trusts.');
    }
    const r = described(told);
    if (!r) {
      asker.log().warn({ family }, 'forward-auth request without usable describing headers refused');
      return refused(family, 403, 'Forbidden', 'The proxy did not describe the request.');
    }
    const fail = (err: unknown) => unavailable(asker, family, err);
    try {
      const ctx = createContext({ method: r.method, host: r.host, url: r.uri, headers: asker.headers, clientAddress: asker.clientAddress() }, apiPrefix);
      const decision = decider.decideContext(ctx);
      if (!isPromise(decision)) {
        const out = decided(family, ctx, r.proto, decision);
        return isPromise(out) ? out.catch(fail) : out;
      }
      return decision.then((d) => decided(family, ctx, r.proto, d)).catch(fail);
    } catch (err) {
      return fail(err);
    }
  }

  return { answer };
}

/** The translator of one listener. */
export type Translator = ReturnType<typeof createTranslator>;

/** Sends an answer: status, headers and a body of known length. */
function sendAnswer(reply: FastifyReply, a: Answer): FastifyReply {
  reply.code(a.status).headers(a.headers);
  // An empty string would gain fastify's text/plain type; no body, no type (unless the answer names one).
  return a.body === '' ? reply.send() : reply.send(a.body);
}

/** Sends an answer now or once it is known (a route handler's result: errors go to fastify's error handler). */
export function reply(res: FastifyReply, a: Answer | Promise<Answer>): Promise<void> | undefined {
  if (isPromise(a)) {
    return a.then((answer) => {
      sendAnswer(res, answer);
    });
  }
  sendAnswer(res, a);
  return undefined;
}


/** Which request headers describe the original request, for the families that say it all in headers. */
export interface DescribingHeaders {
  method: string;
  proto: string;
  host: string;
  uri: string;
}

/** A GET endpoint that reads the original request from headers: its path under the prefix, its family, its headers. */
export interface HeaderEndpoint {
  /** `/auth-request`: appended to `forwardAuth.path`. */
  suffix: string;
  family: Family;
  names: DescribingHeaders;
}

/** What the headers of one endpoint describe. */
export function describedBy(headers: IncomingHttpHeaders, names: DescribingHeaders): Described {
  return { method: single(headers, names.method), proto: single(headers, names.proto), host: single(headers, names.host), uri: single(headers, names.uri) };
}

/** The asker of a request fastify took (counted as a forward-auth answer). */
export function askerOf(req: FastifyRequest): Asker {
  req.requestClass = 'forward_auth';
  return { peer: req.socket.remoteAddress, headers: req.headers, clientAddress: () => req.gate?.clientAddress ?? req.ip, log: () => req.log };
}

/** Registers a header-described endpoint as a fastify route. */
export function headerRoute(app: FastifyInstance, prefix: string, endpoint: HeaderEndpoint, translator: Translator): void {
  app.get(`${prefix}${endpoint.suffix}`, (req, res) => reply(res, translator.answer(endpoint.family, askerOf(req), describedBy(req.headers, endpoint.names))));
}

/** One header's value, or undefined when absent or repeated. */
export function single(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return typeof v === 'string' ? v : undefined;
}
