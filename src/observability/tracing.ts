/**
 * OpenTelemetry tracing of one gateway instance, exported over OTLP/HTTP (JSON, from a
 * thread of its own: ./otlp-exporter.ts).
 *
 * Rules:
 * - off unless `tracing.enabled`, `OTEL_TRACES_EXPORTER=otlp` or an OTLP endpoint in
 *   `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`; `OTEL_SDK_DISABLED=true` and
 *   `OTEL_TRACES_EXPORTER=none` keep it off; off costs one boolean check per request;
 * - the tracer provider, context manager and propagator belong to this instance:
 *   nothing is registered globally;
 * - a client's `traceparent` is never trusted: each public request starts its own
 *   trace, sampled by a parent-based ratio; the gateway's context goes out as W3C
 *   `traceparent` to the upstream and to identity providers;
 * - span attributes name tenants, decision classes, statuses and reason codes, never
 *   cookies, codes, tokens, secrets or query strings.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Span, type TextMapSetter } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { isPromise } from '../is-promise.js';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  AlwaysOnSampler,
  ParentBasedSampler,
  SimpleSpanProcessor,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import type { Config } from '../config/schema.js';
import { OtlpJsonExporter } from './otlp-exporter.js';

export { SpanKind };
export type { Span };

/** Tracing settings after the config and the OTEL_* environment are combined. */
export interface TracingSettings {
  serviceName: string;
  sampleRatio: number;
  /** OTLP/HTTP traces URL. */
  url: string;
  /** Extra export request headers (OTEL_EXPORTER_OTLP_[TRACES_]HEADERS). */
  headers?: Record<string, string>;
  /** Export request timeout, ms. */
  timeoutMs: number;
}

/** OTLP's default traces URL (a collector on this host). */
const DEFAULT_TRACES_URL = 'http://localhost:4318/v1/traces';

/** `k=v,k2=v2` as OTEL_EXPORTER_OTLP_HEADERS writes it (values URL-encoded). */
function parseHeaders(text: string | undefined): Record<string, string> | undefined {
  if (!text?.trim()) return undefined;
  const out: Record<string, string> = {};
  for (const pair of text.split(',')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const key = pair.slice(0, eq).trim().toLowerCase();
    const raw = pair.slice(eq + 1).trim();
    try {
      out[key] = decodeURIComponent(raw);
    } catch {
      out[key] = raw;
    }
  }
  return Object.keys(out).length ? out : undefined;
}

/** The traces URL: the signal's own variable as is, the general one with `/v1/traces` appended, else the config's. */
function tracesUrl(cfgEndpoint: string | undefined, env: NodeJS.ProcessEnv): string {
  const own = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  if (own) return own;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (base) return `${base.replace(/\/+$/, '')}/v1/traces`;
  return cfgEndpoint ?? DEFAULT_TRACES_URL;
}

/** Tracing as the rest of the gateway uses it. */
export interface Tracing {
  readonly enabled: boolean;
  /** The span of a new public request, when the sampling draw picks it; a new trace (a client's traceparent is not trusted). */
  startRequest(attributes: Attributes): Span | undefined;
  /** A child span of `parent`, else of the active scope's span; undefined when there is neither. */
  startChild(name: string, kind: SpanKind, attributes?: Attributes, parent?: Span): Span | undefined;
  /**
   * Runs `fn` with `span` active while `fn` runs synchronously: spans started before its
   * first `await` are children. Costs nothing asynchronous. Without a span, just runs `fn`.
   */
  scope<T>(span: Span | undefined, fn: () => T): T;
  /**
   * Runs `fn` with `span` active in it and all its continuations. Context tracking is
   * switched on only while such a scope is open (it slows every asynchronous operation
   * of the process), so it is meant for sampled login flows, not for every request.
   */
  scopeAsync<T>(span: Span | undefined, fn: () => T): T;
  /** The active scope's span, if any. */
  activeSpan(): Span | undefined;
  /** Runs `fn` in a child span of the active one, ending it when `fn` settles; without an active span, just runs `fn`. */
  run<T>(name: string, attributes: Attributes, fn: () => Promise<T>, kind?: SpanKind): Promise<T>;
  /** Writes `traceparent` (and `tracestate`) of `span` into headers. */
  inject(span: Span, headers: Record<string, unknown> | Headers): void;
  /** Exports what is buffered and stops. */
  shutdown(): Promise<void>;
}

const truthy = (v: string | undefined) => v !== undefined && /^(1|true|yes|on)$/i.test(v.trim());

/**
 * The effective tracing settings, or `undefined` when tracing is off. The OTEL_*
 * variables win over the config where both speak.
 */
export function tracingSettings(cfg: Config['tracing'], env: NodeJS.ProcessEnv): TracingSettings | undefined {
  if (truthy(env.OTEL_SDK_DISABLED)) return undefined;
  const exporter = env.OTEL_TRACES_EXPORTER?.trim().toLowerCase();
  if (exporter === 'none') return undefined;
  const fromEnv = exporter === 'otlp' || Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT) || Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  if (!cfg.enabled && !fromEnv) return undefined;
  const arg = env.OTEL_TRACES_SAMPLER_ARG === undefined ? NaN : Number(env.OTEL_TRACES_SAMPLER_ARG);
  const sampleRatio = Number.isFinite(arg) && arg >= 0 && arg <= 1 ? arg : cfg.sampleRatio;
  const headers = parseHeaders(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS ?? env.OTEL_EXPORTER_OTLP_HEADERS);
  const timeout = Number(env.OTEL_EXPORTER_OTLP_TRACES_TIMEOUT ?? env.OTEL_EXPORTER_OTLP_TIMEOUT);
  return {
    serviceName: env.OTEL_SERVICE_NAME || cfg.serviceName,
    sampleRatio,
    url: tracesUrl(cfg.endpoint, env),
    ...(headers ? { headers } : {}),
    timeoutMs: Number.isFinite(timeout) && timeout > 0 ? timeout : 10_000,
  };
}

/** Tracing that is off: every method does nothing. */
const TRACING_OFF: Tracing = {
  enabled: false,
  startRequest: () => undefined,
  startChild: () => undefined,
  scope: (_span, fn) => fn(),
  scopeAsync: (_span, fn) => fn(),
  activeSpan: () => undefined,
  run: (_name, _attributes, fn) => fn(),
  inject: () => undefined,
  shutdown: async () => undefined,
};

const headersSetter: TextMapSetter<Record<string, unknown> | Headers> = {
  set(carrier, key, value) {
    if (carrier instanceof Headers) carrier.set(key, value);
    else carrier[key] = value;
  },
};

/** Options of {@link createTracing}, for tests. */
export interface CreateTracingOptions {
  /** Exporter instead of OTLP/HTTP (e.g. the SDK's InMemorySpanExporter). */
  exporter?: SpanExporter;
  /** Export each span as it ends instead of in batches. */
  simple?: boolean;
}

/**
 * Builds tracing for these settings; `undefined` settings give {@link TRACING_OFF}.
 *
 * Sampling is decided once per public request, before any span exists; every other
 * span is a child of a request's span (a call outside any request is not traced).
 * Context tracking (AsyncLocalStorage, which slows every asynchronous operation of the
 * process while on) is switched on only while a sampled login flow runs, and off again
 * when the last one settles; a request's decision uses the synchronous scope.
 */
export function createTracing(settings: TracingSettings | undefined, opts: CreateTracingOptions = {}): Tracing {
  if (!settings) return TRACING_OFF;
  const exporter = opts.exporter ?? new OtlpJsonExporter({ url: settings.url, headers: settings.headers ?? {}, timeoutMs: settings.timeoutMs });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': settings.serviceName }),
    // The ratio is drawn in startRequest; children follow their request.
    sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    spanProcessors: [opts.simple ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('tenant-gate');
  const contexts = new AsyncLocalStorageContextManager();
  const propagator = new W3CTraceContextPropagator();
  const ratio = settings.sampleRatio;
  let open = 0;
  let current: Span | undefined;
  const close = () => {
    if (--open === 0) contexts.disable();
  };
  const active = () => current ?? (open > 0 ? trace.getSpan(contexts.active()) : undefined);
  const startChild = (name: string, kind: SpanKind, attributes?: Attributes, parent?: Span) => {
    const of = parent ?? active();
    if (!of) return undefined;
    return tracer.startSpan(name, { kind, ...(attributes ? { attributes } : {}) }, trace.setSpan(ROOT_CONTEXT, of));
  };
  return {
    enabled: true,
    startRequest: (attributes) => (ratio > 0 && (ratio >= 1 || Math.random() < ratio) ? tracer.startSpan('request', { kind: SpanKind.SERVER, root: true, attributes }, ROOT_CONTEXT) : undefined),
    startChild,
    scope(span, fn) {
      if (!span) return fn();
      const outer = current;
      current = span;
      try {
        return fn();
      } finally {
        current = outer;
      }
    },
    scopeAsync(span, fn) {
      if (!span) return fn();
      if (open++ === 0) contexts.enable();
      let out: ReturnType<typeof fn>;
      try {
        out = contexts.with(trace.setSpan(ROOT_CONTEXT, span), fn);
      } catch (err) {
        close();
        throw err;
      }
      if (isPromise(out)) out.then(close, close);
      else close();
      return out;
    },
    activeSpan: active,
    async run(name, attributes, fn, kind = SpanKind.INTERNAL) {
      const span = startChild(name, kind, attributes);
      if (!span) return fn();
      try {
        return await (open > 0 ? contexts.with(trace.setSpan(ROOT_CONTEXT, span), fn) : fn());
      } catch (err) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.name : 'error' });
        throw err;
      } finally {
        span.end();
      }
    },
    inject: (span, headers) => propagator.inject(trace.setSpan(ROOT_CONTEXT, span), headers, headersSetter),
    async shutdown() {
      contexts.disable();
      await provider.shutdown();
    },
  };
}
