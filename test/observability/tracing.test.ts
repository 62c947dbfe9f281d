import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import t from 'tap';
import { createTracing, tracingSettings } from '../../src/observability/tracing.js';
import { publicRequest, seedRouteTenants, startGateway, startUpstream, tempDir, testConfig } from '../helpers/gateway.js';
import { ACME_SECRET, SESSION_SECRET, twoTenants } from '../helpers/two-tenants.js';
import { sample } from '../helpers/metrics-text.js';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

t.test('tracing is off by default and follows the standard OTEL_* variables', async (t) => {
  const cfg = testConfig({}, tempDir(t)).tracing;
  t.equal(tracingSettings(cfg, {}), undefined, 'off without config or environment');
  t.same(tracingSettings(cfg, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }), { serviceName: 'tenant-gate', sampleRatio: 1, url: 'http://127.0.0.1:4318/v1/traces', timeoutMs: 10000 });
  t.same(tracingSettings(cfg, { OTEL_TRACES_EXPORTER: 'otlp', OTEL_SERVICE_NAME: 'edge', OTEL_TRACES_SAMPLER_ARG: '0.1' }), { serviceName: 'edge', sampleRatio: 0.1, url: 'http://localhost:4318/v1/traces', timeoutMs: 10000 });
  t.same(
    tracingSettings(cfg, {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://traces:4318/custom',
      OTEL_EXPORTER_OTLP_HEADERS: 'Authorization=Bearer%20abc, x-tenant = edge,broken',
      OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '2500',
    }),
    { serviceName: 'tenant-gate', sampleRatio: 1, url: 'http://traces:4318/custom', headers: { authorization: 'Bearer abc', 'x-tenant': 'edge' }, timeoutMs: 2500 },
    "the signal's own URL is used as is; headers and timeout follow the standard variables",
  );
  t.equal(tracingSettings(cfg, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' })?.url, 'http://collector:4318/v1/traces');
  t.equal(tracingSettings({ ...cfg, enabled: true }, { OTEL_SDK_DISABLED: 'true' }), undefined);
  t.equal(tracingSettings({ ...cfg, enabled: true }, { OTEL_TRACES_EXPORTER: 'none' }), undefined);
  t.same(tracingSettings({ ...cfg, enabled: true, endpoint: 'http://127.0.0.1:1/v1/traces', sampleRatio: 0.5 }, {}), { serviceName: 'tenant-gate', sampleRatio: 0.5, url: 'http://127.0.0.1:1/v1/traces', timeoutMs: 10000 });
});

t.test('with tracing off, nothing is propagated and nothing is traced', async (t) => {
  const upstream = await startUpstream(t);
  const gw = await startGateway(t, { upstreams: { webapp: upstream.url } });
  await seedRouteTenants(gw.adminUrl);
  await publicRequest(gw.publicPort, { path: '/api/x', host: 'acme.ml.example.com', headers: { accept: 'application/json' } });
  t.equal(upstream.seen[0]?.headers.traceparent, undefined);
});

t.test('a login and a proxied request make one span each with children for stores, provider calls and the upstream; no secrets', async (t) => {
  const exporter = new InMemorySpanExporter();
  const tracing = createTracing({ serviceName: 'tenant-gate', sampleRatio: 1, url: 'http://127.0.0.1:1/v1/traces', timeoutMs: 1000 }, { exporter, simple: true });
  const s = await twoTenants(t, {}, { tracing });
  const { browser, start, callback, callbackUrl } = await s.login('alice');
  t.equal(start.status, 302);
  t.equal(callback?.status, 302);
  const page = await s.req({ path: '/projects?token=abc', host: 'acme.ml.example.com', headers: { accept: 'application/json', traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01` } }, browser);
  t.equal(page.status, 200);
  const refused = await s.req({ path: '/callback_acme-web?code=zzz&state=nope', host: 'acme.ml.example.com' });
  t.equal(refused.status, 400);
  await sleep(50);

  const spans = exporter.getFinishedSpans();
  const byName = (name: string) => spans.filter((sp) => sp.name === name);
  const requests = spans.filter((sp) => sp.attributes['tenant_gate.class'] !== undefined);
  const classes = requests.map((sp) => sp.attributes['tenant_gate.class']);
  t.ok(classes.includes('login_start') && classes.includes('callback') && classes.includes('proxied'), `request spans: ${classes.join(', ')}`);
  for (const sp of requests) {
    t.equal(sp.attributes['tenant_gate.tenant'], 'acme');
    t.equal(typeof sp.attributes['http.response.status_code'], 'number');
    t.equal(sp.parentSpanContext, undefined, 'a request span starts its own trace (a client traceparent is not trusted)');
  }
  const callbackSpan = requests.find((sp) => sp.attributes['tenant_gate.class'] === 'callback' && sp.attributes['http.response.status_code'] === 302)!;
  const refusedSpan = requests.find((sp) => sp.attributes['http.response.status_code'] === 400)!;
  t.ok(refusedSpan.attributes['tenant_gate.reason'], `the refused callback carries its reason (${String(refusedSpan.attributes['tenant_gate.reason'])})`);

  const childrenOf = (parent: (typeof spans)[number]) => spans.filter((sp) => sp.parentSpanContext?.spanId === parent.spanContext().spanId).map((sp) => sp.name);
  const loginSpan = requests.find((sp) => sp.attributes['tenant_gate.class'] === 'login_start')!;
  t.ok(childrenOf(loginSpan).includes('provider discovery'), `login children: ${childrenOf(loginSpan).join(', ')}`);
  t.ok(childrenOf(loginSpan).includes('directory findTenant'));
  const callbackChildren = childrenOf(callbackSpan);
  for (const name of ['provider token', 'sessions create', 'sessions consumeOnce', 'directory findClient']) t.ok(callbackChildren.includes(name), `callback child ${name} (${callbackChildren.join(', ')})`);
  const proxied = requests.find((sp) => sp.attributes['tenant_gate.class'] === 'proxied')!;
  t.ok(childrenOf(proxied).includes('upstream'));

  const upstreamSpan = byName('upstream')[0]!;
  const seen = s.upstream.seen.find((r) => r.url.startsWith('/projects'))!;
  const m = TRACEPARENT.exec(String(seen.headers.traceparent));
  t.ok(m, `the upstream got a traceparent (${String(seen.headers.traceparent)})`);
  t.equal(m?.[1], upstreamSpan.spanContext().traceId, "the upstream request continues the gateway's trace");
  t.equal(m?.[2], upstreamSpan.spanContext().spanId);
  const tokenCall = TRACEPARENT.exec(String(s.acmeIdp.lastHeaders.get(new URL(s.acmeIdp.url('/token')).pathname)?.traceparent));
  t.equal(tokenCall?.[1], callbackSpan.spanContext().traceId, "the token request to the provider continues the callback's trace");

  const dump = JSON.stringify(spans.map((sp) => ({ name: sp.name, attributes: sp.attributes, events: sp.events, status: sp.status })));
  const secrets = [ACME_SECRET, SESSION_SECRET, 'token=abc', 'zzz', 'state=', callbackUrl!.searchParams.get('code')!, callbackUrl!.searchParams.get('state')!, ...browser.cookies.values()];
  for (const secret of secrets) t.notOk(dump.includes(secret), `no span holds ${secret.slice(0, 12)}…`);

  const metrics = await (await fetch(`${s.adminUrl}/metrics`)).text();
  t.equal(sample(metrics, 'tenant_gate_provider_request_duration_seconds_count', { tenant: 'acme', call: 'discovery', outcome: 'ok' }), 1);
  t.equal(sample(metrics, 'tenant_gate_provider_request_duration_seconds_count', { tenant: 'acme', call: 'token', outcome: 'ok' }), 1);
  t.equal(sample(metrics, 'tenant_gate_sessions_active'), 1);
});

t.test('spans reach an OTLP/HTTP receiver', async (t) => {
  const received: Array<{ path: string; type: string; body: Buffer }> = [];
  const receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', type: String(req.headers['content-type']), body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => receiver.close(() => r())));
  const endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/traces`;
  const upstream = await startUpstream(t);
  const gw = await startGateway(t, { upstreams: { webapp: upstream.url }, tracing: { enabled: true, endpoint, serviceName: 'gate-under-test' } });
  await seedRouteTenants(gw.adminUrl);
  await publicRequest(gw.publicPort, { path: '/api/x', host: 'acme.ml.example.com', headers: { accept: 'application/json' } });
  await gw.gateway.close();
  t.ok(received.length >= 1, 'the batch was exported on close');
  t.equal(received[0]?.path, '/v1/traces');
  t.equal(received[0]?.type, 'application/json', 'OTLP/JSON');
  t.ok(Array.isArray((JSON.parse(received[0]!.body.toString('utf8')) as { resourceSpans?: unknown }).resourceSpans), 'an ExportTraceServiceRequest');
  const all = Buffer.concat(received.map((r) => r.body)).toString('latin1');
  t.ok(all.includes('gate-under-test'), 'the service name is in the export');
  t.ok(all.includes('tenant_gate.class'), 'the request span is in the export');
});

t.test('sampling is drawn once per request; other spans only exist under a sampled request', async (t) => {
  const exporter = new InMemorySpanExporter();
  const at = { url: 'http://127.0.0.1:1/v1/traces', timeoutMs: 1000 };
  const never = createTracing({ serviceName: 'x', sampleRatio: 0, ...at }, { exporter, simple: true });
  const always = createTracing({ serviceName: 'x', sampleRatio: 1, ...at }, { exporter, simple: true });
  const half = createTracing({ serviceName: 'x', sampleRatio: 0.5, ...at }, { exporter, simple: true });
  t.equal(never.startRequest({}), undefined);
  t.ok(always.startRequest({}));
  let picked = 0;
  for (let i = 0; i < 2000; i++) {
    const span = half.startRequest({});
    if (span) picked++;
    span?.end();
  }
  t.ok(picked > 800 && picked < 1200, `about half sampled (${picked} of 2000)`);
  exporter.reset();

  t.equal(always.startChild('orphan', 0), undefined, 'no span outside a request');
  t.equal(await always.run('orphan', {}, async () => 7), 7, 'run without a request just runs');
  const request = always.startRequest({})!;
  const seen: Array<string | undefined> = [];
  const syncSeen: Array<string | undefined> = [];
  await always.scope(request, async () => {
    syncSeen.push(always.activeSpan()?.spanContext().spanId);
    await sleep(1);
    syncSeen.push(always.activeSpan()?.spanContext().spanId);
  });
  t.same(syncSeen, [request.spanContext().spanId, undefined], 'the synchronous scope ends at the first await');
  await always.scopeAsync(request, async () => {
    await sleep(5);
    seen.push(always.activeSpan()?.spanContext().spanId);
    await always.run('store call', {}, async () => {
      await sleep(1);
    });
  });
  t.same(seen, [request.spanContext().spanId], 'the scope follows its continuations');
  t.equal(always.activeSpan(), undefined, 'nothing is active once the scope settled');
  request.end();
  const spans = exporter.getFinishedSpans();
  t.same(spans.map((s) => s.name).sort(), ['request', 'store call']);
  t.equal(spans.find((s) => s.name === 'store call')?.parentSpanContext?.spanId, request.spanContext().spanId);
});

t.test('a request that is not sampled is neither traced nor propagated', async (t) => {
  const exporter = new InMemorySpanExporter();
  const tracing = createTracing({ serviceName: 'tenant-gate', sampleRatio: 0, url: 'http://127.0.0.1:1/v1/traces', timeoutMs: 1000 }, { exporter, simple: true });
  const s = await twoTenants(t, {}, { tracing });
  const page = await s.req({ path: '/projects', host: 'acme.ml.example.com', headers: { accept: 'application/json' } });
  t.not(page.status, 500);
  await s.login('alice');
  t.same(exporter.getFinishedSpans(), []);
  t.notOk(s.upstream.seen.some((r) => r.headers.traceparent !== undefined));
});

t.test('a forward-auth answer (served before fastify) is a request span of class forward_auth', async (t) => {
  const exporter = new InMemorySpanExporter();
  const tracing = createTracing({ serviceName: 'tenant-gate', sampleRatio: 1, url: 'http://127.0.0.1:1/v1/traces', timeoutMs: 1000 }, { exporter, simple: true });
  const s = await twoTenants(t, { public: { host: '127.0.0.1', port: 0, url: 'http://ml.example.com', trustedProxies: ['127.0.0.1'] } }, { tracing });
  const cookie = (await s.login('alice')).browser.header()!;
  exporter.reset();
  const r = await s.req({ path: '/_auth/auth-request', host: 'acme.ml.example.com', headers: { cookie, 'x-original-uri': '/projects', 'x-original-method': 'GET', 'x-forwarded-proto': 'http' } });
  t.equal(r.status, 200);
  await sleep(50);
  const spans = exporter.getFinishedSpans();
  const request = spans.find((sp) => sp.attributes['tenant_gate.class'] === 'forward_auth');
  t.ok(request, `spans: ${spans.map((sp) => sp.name).join(', ')}`);
  t.equal(request?.name, 'GET forward_auth');
  t.equal(request?.attributes['http.response.status_code'], 200);
  t.notMatch(JSON.stringify(spans.map((sp) => sp.attributes)), cookie.split('=')[1]!, 'no session cookie in any span');
});
