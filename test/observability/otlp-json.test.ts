import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import t from 'tap';
import { encodeBatch, toBatches } from '../../src/observability/otlp-json.js';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: Array<{ key: string; value: Record<string, unknown> }>;
  status: { code?: number; message?: string };
}

t.test('spans become OTLP/JSON: ids, kinds, nanosecond times, typed attributes, status', async (t) => {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ resource: resourceFromAttributes({ 'service.name': 'gate "one"' }), spanProcessors: [new SimpleSpanProcessor(memory)] });
  const tracer = provider.getTracer('tenant-gate');
  const parent = tracer.startSpan('request', { kind: SpanKind.SERVER, startTime: [1700000000, 5] });
  parent.setAttributes({ 'tenant_gate.tenant': 'acme "quoted"\n', 'http.response.status_code': 200, ratio: 0.5, cached: true, list: ['a', 'b'] });
  parent.setStatus({ code: SpanStatusCode.ERROR, message: 'upstream 5xx' });
  const child = tracer.startSpan('upstream', { kind: SpanKind.CLIENT }, trace.setSpan(ROOT_CONTEXT, parent));
  child.end();
  parent.end([1700000001, 250]);
  const spans = memory.getFinishedSpans();
  const body = JSON.parse(encodeBatch(toBatches(spans))) as { resourceSpans: Array<{ resource: { attributes: unknown[] }; scopeSpans: Array<{ scope: { name: string }; spans: OtlpSpan[] }> }> };
  const rs = body.resourceSpans[0]!;
  t.same(rs.resource.attributes.find((a) => (a as { key: string }).key === 'service.name'), { key: 'service.name', value: { stringValue: 'gate "one"' } });
  t.equal(rs.scopeSpans[0]!.scope.name, 'tenant-gate');
  const out = rs.scopeSpans[0]!.spans;
  const req = out.find((s) => s.name === 'request')!;
  const up = out.find((s) => s.name === 'upstream')!;
  t.equal(req.traceId, parent.spanContext().traceId);
  t.match(req.traceId, /^[0-9a-f]{32}$/);
  t.match(req.spanId, /^[0-9a-f]{16}$/);
  t.equal(up.parentSpanId, req.spanId);
  t.equal(req.parentSpanId, undefined);
  t.equal(req.kind, 2, 'SPAN_KIND_SERVER');
  t.equal(up.kind, 3, 'SPAN_KIND_CLIENT');
  t.equal(req.startTimeUnixNano, '1700000000000000005');
  t.equal(req.endTimeUnixNano, '1700000001000000250');
  const attr = (key: string) => req.attributes.find((a) => a.key === key)?.value;
  t.same(attr('tenant_gate.tenant'), { stringValue: 'acme "quoted"\n' });
  t.same(attr('http.response.status_code'), { intValue: '200' });
  t.same(attr('ratio'), { doubleValue: 0.5 });
  t.same(attr('cached'), { boolValue: true });
  t.same(attr('list'), { arrayValue: { values: [{ stringValue: 'a' }, { stringValue: 'b' }] } });
  t.same(req.status, { code: 2, message: 'upstream 5xx' }, 'STATUS_CODE_ERROR');
  t.same(up.status, {}, 'an unset status is left empty');
});
