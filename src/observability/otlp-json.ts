/**
 * Finished spans as plain data, and their OTLP/JSON encoding (the body of an OTLP/HTTP
 * export request). Pure; shared by the exporter and its thread.
 *
 * The spans carry only what the gateway sets: name, kind, times, ids, status, and
 * string, number, boolean (or array) attributes.
 */
import type { AttributeValue, Attributes, HrTime } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';

/** One finished span, structured-clone safe. */
interface PlainSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  /** The API's SpanKind number. */
  kind: number;
  start: HrTime;
  end: HrTime;
  attributes: Attributes;
  droppedAttributesCount: number;
  status: { code: number; message?: string };
}

/** Spans of one resource and instrumentation scope. */
export interface PlainBatch {
  resource: Attributes;
  scope: { name: string; version?: string };
  spans: PlainSpan[];
}

/** Where the export thread sends batches. */
export interface ExporterTarget {
  url: string;
  headers: Record<string, string>;
  timeoutMs: number;
}

/** A batch handed to the export thread. */
export interface ExportJob {
  id: number;
  batch: PlainBatch[];
}

/** The export thread's answer about one job. */
export interface ExportResult {
  id: number;
  ok: boolean;
  error?: string;
}

function nanos(t: HrTime): string {
  const [s, ns] = t;
  return s === 0 ? String(ns) : `${s}${String(ns).padStart(9, '0')}`;
}

function anyValue(v: AttributeValue): string | undefined {
  switch (typeof v) {
    case 'string':
      return `{"stringValue":${JSON.stringify(v)}}`;
    case 'boolean':
      return `{"boolValue":${v}}`;
    case 'number':
      return Number.isInteger(v) ? `{"intValue":"${v}"}` : Number.isFinite(v) ? `{"doubleValue":${v}}` : undefined;
    default: {
      const items = (v as Array<AttributeValue | null | undefined>).flatMap((x) => {
        const value = x === null || x === undefined ? undefined : anyValue(x);
        return value === undefined ? [] : [value];
      });
      return `{"arrayValue":{"values":[${items.join(',')}]}}`;
    }
  }
}

function attributes(attrs: Attributes): string {
  const out: string[] = [];
  for (const key in attrs) {
    const v = attrs[key];
    if (v === undefined || v === null) continue;
    const value = anyValue(v);
    if (value !== undefined) out.push(`{"key":${JSON.stringify(key)},"value":${value}}`);
  }
  return `[${out.join(',')}]`;
}

function span(s: PlainSpan): string {
  const status = s.status.code === 0 ? '{}' : `{"code":${s.status.code}${s.status.message ? `,"message":${JSON.stringify(s.status.message)}` : ''}}`;
  return (
    `{"traceId":"${s.traceId}","spanId":"${s.spanId}"${s.parentSpanId ? `,"parentSpanId":"${s.parentSpanId}"` : ''},"name":${JSON.stringify(s.name)},` +
    // OTLP numbers span kinds from 1 (INTERNAL); the API from 0.
    `"kind":${s.kind + 1},"startTimeUnixNano":"${nanos(s.start)}","endTimeUnixNano":"${nanos(s.end)}",` +
    `"attributes":${attributes(s.attributes)},"droppedAttributesCount":${s.droppedAttributesCount},"status":${status}}`
  );
}

/** The OTLP/JSON body of an export request. */
export function encodeBatch(batches: readonly PlainBatch[]): string {
  const resourceSpans = batches.map((b) => {
    const scope = `{"name":${JSON.stringify(b.scope.name)}${b.scope.version ? `,"version":${JSON.stringify(b.scope.version)}` : ''}}`;
    return `{"resource":{"attributes":${attributes(b.resource)}},"scopeSpans":[{"scope":${scope},"spans":[${b.spans.map(span).join(',')}]}]}`;
  });
  return `{"resourceSpans":[${resourceSpans.join(',')}]}`;
}

function plain(s: ReadableSpan): PlainSpan {
  const ctx = s.spanContext();
  return {
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    ...(s.parentSpanContext ? { parentSpanId: s.parentSpanContext.spanId } : {}),
    name: s.name,
    kind: s.kind,
    start: s.startTime,
    end: s.endTime,
    attributes: s.attributes,
    droppedAttributesCount: s.droppedAttributesCount,
    status: s.status.message ? { code: s.status.code, message: s.status.message } : { code: s.status.code },
  };
}

/** Finished spans grouped by resource and scope, as plain data for the export thread. */
export function toBatches(spans: readonly ReadableSpan[]): PlainBatch[] {
  const groups = new Map<object, Map<string, PlainBatch>>();
  for (const s of spans) {
    let scopes = groups.get(s.resource);
    if (!scopes) groups.set(s.resource, (scopes = new Map<string, PlainBatch>()));
    const { name, version } = s.instrumentationScope;
    const key = `${name}\n${version ?? ''}`;
    let batch = scopes.get(key);
    if (!batch) scopes.set(key, (batch = { resource: s.resource.attributes, scope: version ? { name, version } : { name }, spans: [] }));
    batch.spans.push(plain(s));
  }
  return [...groups.values()].flatMap((scopes) => [...scopes.values()]);
}
