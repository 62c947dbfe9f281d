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
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Claim } from '../net/front-door.js';
import type { Metrics } from '../observability/metrics.js';
import type { Span, Tracing } from '../observability/tracing.js';
import { SpanStatusCode } from '@opentelemetry/api';
import { describedBy, isPromise, type Answer, type Asker, type HeaderEndpoint, type Translator } from './translate.js';

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

const CLASS = 'forward_auth';
/** Levels at which fastify writes its request lines. */
const REQUEST_LINE_LEVELS: ReadonlySet<string> = new Set(['trace', 'debug', 'info']);

/** Builds the claim of the header-described endpoints. */
export function forwardAuthClaim(opts: FastPathOptions): Claim {
  const { translator, log, metrics, tracing } = opts;
  const byPath = new Map(opts.endpoints.map((e) => [`${opts.prefix}${e.suffix}`, e] as const));
  const trust = opts.trustedProxies.length > 0 ? proxyAddr.compile([...opts.trustedProxies]) : undefined;
  let nextId = 0;

  function send(req: IncomingMessage, res: ServerResponse, a: Answer, started: number, span: Span | undefined, reqLog: FastifyBaseLogger | undefined): void {
    a.headers['content-length'] = String(Buffer.byteLength(a.body));
    res.writeHead(a.status, a.headers);
    res.end(a.body);
    const seconds = (performance.now() - started) / 1000;
    metrics.request(CLASS, undefined, seconds, a.status);
    if (span) {
      span.updateName(`${req.method ?? 'GET'} ${CLASS}`);
      span.setAttribute('tenant_gate.class', CLASS);
      span.setAttribute('http.response.status_code', a.status);
      if (a.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    }
    reqLog?.info({ res: { statusCode: a.status }, responseTime: seconds * 1000 }, 'request completed');
  }

  return (req, res) => {
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') return false;
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const endpoint = byPath.get(q < 0 ? url : url.slice(0, q));
    if (!endpoint) return false;
    const started = performance.now();
    let child: FastifyBaseLogger | undefined;
    const requestLog = () => (child ??= log.child({ reqId: `fa-${(nextId++).toString(36)}` }));
    const infoLog = REQUEST_LINE_LEVELS.has(log.level) ? requestLog() : undefined;
    const asker: Asker = {
      peer: req.socket.remoteAddress,
      headers: req.headers,
      clientAddress: () => {
        if (!trust) return req.socket.remoteAddress ?? '';
        const all = proxyAddr.all(req, trust);
        return all[all.length - 1] ?? '';
      },
      log: requestLog,
    };
    infoLog?.info({ req: { method, url, host: req.headers.host, ip: asker.clientAddress() } }, 'incoming request');
    const span = tracing.enabled ? tracing.startRequest({ 'http.request.method': method }) : undefined;
    const fail = (err: unknown) => {
      requestLog().error({ err }, 'forward-auth answer failed');
      if (res.headersSent) return void res.destroy();
      send(req, res, { status: 500, headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }, body: 'internal error' }, started, span, infoLog);
    };
    try {
      const decide = () => translator.answer(endpoint.family, asker, describedBy(req.headers, endpoint.names));
      const a = span ? tracing.scope(span, decide) : decide();
      if (isPromise(a)) a.then((answer) => send(req, res, answer, started, span, infoLog)).catch(fail);
      else send(req, res, a, started, span, infoLog);
    } catch (err) {
      fail(err);
    }
    return true;
  };
}
