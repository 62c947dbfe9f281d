/**
 * The header-described endpoints (auth-request, forward-auth) answered by the public
 * listener's HTTP server before fastify sees the request (../net/front-door.ts). A proxy
 * asks once per request it proxies; fastify's own per-request work (request and reply
 * objects, a child logger, hooks, routing) cost about as much as the decision. The
 * translator and the answers are the fastify routes' (which still serve `inject` and
 * whatever this path declines).
 *
 * Rules:
 * - only GET and HEAD on an endpoint's exact path, with or without a query (ignored);
 * - the client address is fastify's `req.ip` (the same `public.trustedProxies`);
 * - every answer is counted in the request histogram (class `forward_auth`), traced like
 *   any other request when sampled, and logged like fastify's request lines at `info`;
 * - an unexpected error is logged and answered 500 with a plain body.
 */
import proxyAddr from '@fastify/proxy-addr';
import type { FastifyBaseLogger } from 'fastify';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Claim } from '../net/front-door.js';
import type { Metrics, RequestClass } from '../observability/metrics.js';
import { endRequestSpan } from '../observability/request-timing.js';
import type { Span, Tracing } from '../observability/tracing.js';
import { isPromise } from '../is-promise.js';
import { describedBy, type Answer, type Asker, type HeaderEndpoint, type Translator } from './translate.js';

/** What the fast path needs. */
export interface FastPathOptions {
  /** `forwardAuth.path`. */
  prefix: string;
  endpoints: readonly HeaderEndpoint[];
  translator: Translator;
  trustedProxies: readonly string[];
  /** The public listener's logger. */
  log: FastifyBaseLogger;
  metrics: Metrics;
  tracing: Pick<Tracing, 'enabled' | 'startRequest' | 'scope'>;
}

const CLASS: RequestClass = 'forward_auth';
/** Levels at which fastify writes its request lines. */
const REQUEST_LINE_LEVELS: ReadonlySet<string> = new Set(['trace', 'debug', 'info']);

/** What every asker of one listener shares. */
interface AskerSettings {
  /** `public.trustedProxies` as fastify compiles it (undefined: none). */
  trust: ((addr: string, i: number) => boolean) | undefined;
  log: FastifyBaseLogger;
  reqId: () => string;
}

/** Who asks, for requests the HTTP server took: the client address and the logger only when asked for. */
class ServerAsker implements Asker {
  readonly peer: string | undefined;
  readonly headers: IncomingHttpHeaders;
  readonly #req: IncomingMessage;
  readonly #shared: AskerSettings;
  #log: FastifyBaseLogger | undefined;

  constructor(req: IncomingMessage, shared: AskerSettings) {
    this.#req = req;
    this.#shared = shared;
    this.peer = req.socket.remoteAddress;
    this.headers = req.headers;
  }

  clientAddress(): string {
    const trust = this.#shared.trust;
    if (!trust) return this.peer ?? '';
    const all = proxyAddr.all(this.#req, trust);
    return all[all.length - 1] ?? '';
  }

  log(): FastifyBaseLogger {
    return (this.#log ??= this.#shared.log.child({ reqId: this.#shared.reqId() }));
  }
}

const INTERNAL_ERROR_BODY = 'internal error';
const INTERNAL_ERROR: Answer = {
  status: 500,
  headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'content-length': String(Buffer.byteLength(INTERNAL_ERROR_BODY)) },
  body: INTERNAL_ERROR_BODY,
};

/** Builds the claim of the header-described endpoints. */
export function forwardAuthClaim(opts: FastPathOptions): Claim {
  const { translator, log, metrics, tracing } = opts;
  const byPath = new Map(opts.endpoints.map((e) => [`${opts.prefix}${e.suffix}`, e] as const));
  let nextId = 0;
  const shared: AskerSettings = {
    trust: opts.trustedProxies.length > 0 ? proxyAddr.compile([...opts.trustedProxies]) : undefined,
    log,
    reqId: () => `fa-${(nextId++).toString(36)}`,
  };

  function send(req: IncomingMessage, res: ServerResponse, a: Answer, started: number, span: Span | undefined, reqLog: FastifyBaseLogger | undefined): void {
    res.writeHead(a.status, a.headers);
    res.end(a.body);
    const seconds = (performance.now() - started) / 1000;
    metrics.request(CLASS, undefined, seconds, a.status);
    if (span) endRequestSpan(span, req.method ?? 'GET', CLASS, undefined, a.status);
    reqLog?.info({ res: { statusCode: a.status }, responseTime: seconds * 1000 }, 'request completed');
  }

  function failed(req: IncomingMessage, res: ServerResponse, asker: ServerAsker, err: unknown, started: number, span: Span | undefined, reqLog: FastifyBaseLogger | undefined): void {
    asker.log().error({ err }, 'forward-auth answer failed');
    if (res.headersSent) return void res.destroy();
    send(req, res, INTERNAL_ERROR, started, span, reqLog);
  }

  return (req, res) => {
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') return false;
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const endpoint = byPath.get(q < 0 ? url : url.slice(0, q));
    if (!endpoint) return false;
    const started = performance.now();
    const asker = new ServerAsker(req, shared);
    const infoLog = REQUEST_LINE_LEVELS.has(log.level) ? asker.log() : undefined;
    infoLog?.info({ req: { method, url, host: req.headers.host, ip: asker.clientAddress() } }, 'incoming request');
    const span = tracing.enabled ? tracing.startRequest({ 'http.request.method': method }) : undefined;
    const told = describedBy(req.headers, endpoint.names);
    let a: Answer | Promise<Answer>;
    try {
      a = span ? tracing.scope(span, () => translator.answer(endpoint.family, asker, told)) : translator.answer(endpoint.family, asker, told);
    } catch (err) {
      failed(req, res, asker, err, started, span, infoLog);
      return true;
    }
    if (isPromise(a)) {
      a.then((answer) => send(req, res, answer, started, span, infoLog)).catch((err: unknown) => failed(req, res, asker, err, started, span, infoLog));
    } else send(req, res, a, started, span, infoLog);
    return true;
  };
}
