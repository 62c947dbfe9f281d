/**
 * Duration and trace of every public request, and of its upstream request.
 *
 * Rules:
 * - one onResponse hook measures each request (from arrival, `reply.elapsedTime`) and
 *   classifies it from its path and whether it went upstream: callback, login_start,
 *   discovery (`/login` on the base host), other (probes, logout), proxied, else page;
 * - the tenant label is the tenant the host resolved to, never a value from the path;
 * - the upstream duration runs from sending the upstream request to receiving its
 *   response headers; no headers and a 504 is a timeout, no headers otherwise is
 *   unavailable;
 * - with tracing on, the request span is created first (for the sampled share of
 *   requests); the pipeline decides inside its scope, so store, session and provider
 *   spans are its children; the upstream span carries `traceparent` to the upstream.
 *   With tracing off, or for a request not sampled, one check.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { IncomingHttpHeaders } from 'node:http';
import { SpanStatusCode } from '@opentelemetry/api';
import type { Metrics, RequestClass, UpstreamOutcome } from './metrics.js';
import { SpanKind, type Span, type Tracing } from './tracing.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** `performance.now()` when the upstream request was sent; 0: not proxied. */
    upstreamSentAt: number;
    /** `performance.now()` when the upstream's response headers arrived; 0: none. */
    upstreamAnsweredAt: number;
    /** The request's span (tracing on). */
    traceSpan: Span | undefined;
    /** The upstream request's span (tracing on). */
    upstreamSpan: Span | undefined;
    /** The class a route gives its requests, instead of the one read from the path. */
    requestClass: RequestClass | undefined;
  }
}

/** What the proxy reports about each upstream request. */
export interface UpstreamObserver {
  /** The upstream request is about to be sent with these headers (they may gain `traceparent`). */
  sent(req: FastifyRequest, headers: IncomingHttpHeaders): void;
  /** The upstream's response headers arrived. */
  answered(req: FastifyRequest): void;
}

/** Options of the request timing plugin. */
interface RequestTimingOptions {
  metrics: Metrics;
  tracing: Tracing;
}

const CLASS_ATTR = 'tenant_gate.class';
const TENANT_ATTR = 'tenant_gate.tenant';
const REASON_ATTR = 'tenant_gate.reason';

/** Whether `url` starts with `prefix` (lower-case ASCII), ignoring ASCII case. */
function startsWithFolded(url: string, prefix: string): boolean {
  if (url.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    if ((url.charCodeAt(i) | 0x20) !== prefix.charCodeAt(i) && url.charCodeAt(i) !== prefix.charCodeAt(i)) return false;
  }
  return true;
}

/** The decision class of a request, from its raw URL, its host's tenant and whether it went upstream. Pure. */
export function classifyRequest(url: string, onTenantHost: boolean, proxied: boolean): RequestClass {
  const c = url.charCodeAt(1) | 0x20;
  if (c === 0x63 /* c */ && startsWithFolded(url, '/callback_')) return 'callback';
  if (c === 0x6c /* l */ && startsWithFolded(url, '/login')) {
    const next = url.charCodeAt(6);
    if (Number.isNaN(next) || next === 0x3f /* ? */ || (next === 0x2f /* / */ && url.length === 7)) return onTenantHost ? 'login_start' : 'discovery';
    if (next === 0x2f) return 'login_start';
  }
  if (proxied) return 'proxied';
  if (url.startsWith('/healthz') || url.startsWith('/readyz') || url.startsWith('/logout')) return 'other';
  return 'page';
}

function upstreamOutcome(status: number, answered: boolean): UpstreamOutcome {
  if (!answered) return status === 504 ? 'timeout' : 'unavailable';
  if (status >= 500) return '5xx';
  if (status >= 400) return '4xx';
  if (status >= 300) return '3xx';
  return status >= 200 ? '2xx' : '1xx';
}

/** Ends a public request's span with what the request turned out to be. */
export function endRequestSpan(span: Span, method: string, cls: RequestClass, tenant: string | undefined, status: number): void {
  span.updateName(`${method} ${cls}`);
  span.setAttribute(CLASS_ATTR, cls);
  if (tenant !== undefined) span.setAttribute(TENANT_ATTR, tenant);
  span.setAttribute('http.response.status_code', status);
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}

/** The proxy's observer: timestamps, and with tracing an upstream span whose context goes out in `traceparent`. */
export function upstreamObserver(tracing: Tracing): UpstreamObserver {
  return {
    sent(req, headers) {
      req.upstreamSentAt = performance.now();
      if (!req.traceSpan) return;
      const span = tracing.startChild('upstream', SpanKind.CLIENT, { 'http.request.method': req.method }, req.traceSpan);
      if (!span) return;
      req.upstreamSpan = span;
      tracing.inject(span, headers);
    },
    answered(req) {
      req.upstreamAnsweredAt = performance.now();
    },
  };
}

async function requestTiming(app: FastifyInstance, opts: RequestTimingOptions): Promise<void> {
  const { metrics, tracing } = opts;
  app.decorateRequest('upstreamSentAt', 0);
  app.decorateRequest('upstreamAnsweredAt', 0);
  app.decorateRequest('traceSpan', undefined);
  app.decorateRequest('upstreamSpan', undefined);
  app.decorateRequest('requestClass', undefined);

  if (tracing.enabled) {
    metrics.onReason = (reason) => tracing.activeSpan()?.setAttribute(REASON_ATTR, reason);
    app.addHook('onRequest', (req, _reply, done) => {
      req.traceSpan = tracing.startRequest({ 'http.request.method': req.method });
      done();
    });
  }

  app.addHook('onResponse', (req, reply, done) => {
    const status = reply.statusCode;
    const sentAt = req.upstreamSentAt;
    const tenant = req.gate?.site?.tenant?.company.sso.tenant;
    const cls = req.requestClass ?? classifyRequest(req.url, tenant !== undefined, sentAt !== 0);
    metrics.request(cls, tenant, reply.elapsedTime / 1000, status);
    if (sentAt !== 0) {
      const answeredAt = req.upstreamAnsweredAt;
      metrics.upstream(upstreamOutcome(status, answeredAt !== 0), ((answeredAt || performance.now()) - sentAt) / 1000);
    }
    if (tracing.enabled) {
      const up = req.upstreamSpan;
      if (up) {
        up.setAttribute('http.response.status_code', status);
        if (status >= 500) up.setStatus({ code: SpanStatusCode.ERROR });
        up.end();
      }
      if (req.traceSpan) endRequestSpan(req.traceSpan, req.method, cls, tenant, status);
    }
    done();
  });
}

/** Registers request timing; register it first on the public listener so its span encloses every other hook. */
export default fp(requestTiming, { name: 'tenant-gate-request-timing', fastify: '5.x' });
