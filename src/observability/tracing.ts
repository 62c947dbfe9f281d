/**
 * OpenTelemetry tracing of one gateway instance, exported over OTLP/HTTP.
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
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type TextMapSetter } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import type { Config } from '../config/schema.js';

export { SpanKind };
export type { Span };

/** Tracing settings after the config and the OTEL_* environment are combined. */
export interface TracingSettings {
  serviceName: string;
  sampleRatio: number;
  /** OTLP/HTTP traces URL; unset: the exporter's own OTEL_* defaults. */
  endpoint?: string;
}

/** Tracing as the rest of the gateway uses it. */
export interface Tracing {
  readonly enabled: boolean;
  /** Starts a span, child of `parent` (default: the active context). */
  start(name: string, kind: SpanKind, attributes?: Attributes, parent?: Context): Span;
  /** The context with `span` as the active span. */
  contextOf(span: Span): Context;
  /** Runs `fn` with `span` active: every span started in it (and its continuations) is a child. */
  withSpan<T>(span: Span, fn: () => T): T;
  /** The active span, if any. */
  activeSpan(): Span | undefined;
  /** Runs `fn` in a child span of the active one, ending it when `fn` settles. */
  run<T>(name: string, attributes: Attributes, fn: () => Promise<T>, kind?: SpanKind): Promise<T>;
  /** Writes `traceparent` (and `tracestate`) of `ctx` into headers. */
  inject(ctx: Context, headers: Record<string, unknown> | Headers): void;
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
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT ? undefined : cfg.endpoint;
  return { serviceName: env.OTEL_SERVICE_NAME || cfg.serviceName, sampleRatio, ...(endpoint ? { endpoint } : {}) };
}

const noopSpan = trace.wrapSpanContext({ traceId: '0'.repeat(32), spanId: '0'.repeat(16), traceFlags: 0 });

/** Tracing that is off: every method does nothing. */
const TRACING_OFF: Tracing = {
  enabled: false,
  start: () => noopSpan,
  contextOf: () => ROOT_CONTEXT,
  withSpan: (_span, fn) => fn(),
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

/** Builds tracing for these settings; `undefined` settings give {@link TRACING_OFF}. */
export function createTracing(settings: TracingSettings | undefined, opts: CreateTracingOptions = {}): Tracing {
  if (!settings) return TRACING_OFF;
  const exporter = opts.exporter ?? new OTLPTraceExporter(settings.endpoint ? { url: settings.endpoint } : {});
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': settings.serviceName }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(settings.sampleRatio) }),
    spanProcessors: [opts.simple ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('tenant-gate');
  const contexts = new AsyncLocalStorageContextManager().enable();
  const propagator = new W3CTraceContextPropagator();
  const start = (name: string, kind: SpanKind, attributes?: Attributes, parent?: Context) =>
    tracer.startSpan(name, { kind, ...(attributes ? { attributes } : {}) }, parent ?? contexts.active());
  const contextOf = (span: Span) => trace.setSpan(contexts.active(), span);
  return {
    enabled: true,
    start,
    contextOf,
    withSpan: (span, fn) => contexts.with(trace.setSpan(contexts.active(), span), fn),
    activeSpan: () => trace.getSpan(contexts.active()),
    async run(name, attributes, fn, kind = SpanKind.INTERNAL) {
      const span = start(name, kind, attributes);
      try {
        return await contexts.with(trace.setSpan(contexts.active(), span), fn);
      } catch (err) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.name : 'error' });
        throw err;
      } finally {
        span.end();
      }
    },
    inject: (ctx, headers) => propagator.inject(ctx, headers, headersSetter),
    async shutdown() {
      contexts.disable();
      await provider.shutdown();
    },
  };
}
