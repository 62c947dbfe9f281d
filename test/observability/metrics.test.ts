import t from 'tap';
import { classifyRequest } from '../../src/observability/request-timing.js';
import { createMetrics, TenantLabels } from '../../src/observability/metrics.js';
import { sample } from '../helpers/metrics-text.js';
import { adminCall, publicRequest, seedRouteTenants, startGateway, startUpstream } from '../helpers/gateway.js';

t.test('requests are classified by path shape, host and whether they went upstream', async (t) => {
  const table: Array<[string, boolean, boolean, string]> = [
    ['/callback_acme-webapp?code=x&state=y', false, false, 'callback'],
    ['/CALLBACK_acme-webapp', true, true, 'callback'],
    ['/login/acme', false, true, 'login_start'],
    ['/Login/acme?redirect=/x', false, false, 'login_start'],
    ['/login', false, false, 'discovery'],
    ['/login?redirect=/a', false, false, 'discovery'],
    ['/login/', false, false, 'discovery'],
    ['/login', true, false, 'login_start'],
    ['/loginx', false, true, 'proxied'],
    ['/api/projects', true, true, 'proxied'],
    ['/healthz', false, false, 'other'],
    ['/logout', true, false, 'other'],
    ['/projects', true, false, 'page'],
    ['/', false, false, 'page'],
  ];
  for (const [url, tenantHost, proxied, want] of table) t.equal(classifyRequest(url, tenantHost, proxied), want, `${url} ${tenantHost} ${proxied}`);
});

t.test('tenant labels stop growing at the cap; the rest count as other', async (t) => {
  const labels = new TenantLabels(2);
  t.equal(labels.label('acme'), 'acme');
  t.equal(labels.label('globex'), 'globex');
  t.equal(labels.label('initech'), 'other');
  t.equal(labels.label('acme'), 'acme');
  t.equal(labels.label(undefined), 'none');
  const m = createMetrics({ processMetrics: false, tenantLabels: 1 });
  for (const tenant of ['a', 'b', 'c', 'd']) m.request('proxied', tenant, 0.001, 200);
  const text = await m.registry.metrics();
  t.equal(sample(text, 'tenant_gate_request_duration_seconds_count', { class: 'proxied', tenant: 'a' }), 1);
  t.equal(sample(text, 'tenant_gate_request_duration_seconds_count', { class: 'proxied', tenant: 'other' }), 3);
});

t.test('the admin /metrics shows request, upstream and directory latency, 429s, backends and admin auth failures', async (t) => {
  const upstream = await startUpstream(t, (req, res) => {
    if (req.url === '/boom') {
      res.statusCode = 503;
      res.end('down');
      return true;
    }
    return false;
  });
  const gw = await startGateway(t, { upstreams: { webapp: upstream.url }, rateLimit: { loginPerMinute: 2 } });
  await seedRouteTenants(gw.adminUrl);
  const api = { accept: 'application/json' };
  t.equal((await publicRequest(gw.publicPort, { path: '/api/x', host: 'acme.ml.example.com', headers: api })).status, 200);
  t.equal((await publicRequest(gw.publicPort, { path: '/boom', host: 'acme.ml.example.com', headers: api })).status, 503);
  t.equal((await publicRequest(gw.publicPort, { path: '/projects', host: 'acme.ml.example.com', headers: { accept: 'text/html' } })).status, 302);
  for (let i = 0; i < 3; i++) await publicRequest(gw.publicPort, { path: '/login/acme' });
  await publicRequest(gw.publicPort, { path: '/callback_acme-webapp?code=x' });
  await publicRequest(gw.publicPort, { path: '/x', host: 'nobody.example.org' });
  await adminCall(gw.adminUrl, 'system.get_company_sso_config', { company: 'c-acme' }, 'admin-key:wrong-secret');
  await adminCall(gw.adminUrl, 'system.get_company_sso_config', { company: 'c-acme' }, null);

  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  t.equal(sample(text, 'tenant_gate_request_duration_seconds_count', { class: 'proxied', tenant: 'acme' }), 2);
  t.equal(sample(text, 'tenant_gate_request_duration_seconds_count', { class: 'page', tenant: 'acme' }), 1, 'the redirect to the login page');
  t.equal(sample(text, 'tenant_gate_request_duration_seconds_count', { class: 'page', tenant: 'none' }), 1, 'the unknown host');
  t.equal(sample(text, 'tenant_gate_request_duration_seconds_count', { class: 'login_start', tenant: 'none' }), 3);
  t.equal(sample(text, 'tenant_gate_request_duration_seconds_count', { class: 'callback', tenant: 'none' }), 1);
  t.equal(sample(text, 'tenant_gate_request_duration_seconds_bucket', { class: 'proxied', tenant: 'acme', le: '10' }), 2);
  t.ok(text.includes('le="0.0005"'), 'buckets start at 0.5 ms');
  t.equal(sample(text, 'tenant_gate_rate_limited_total', { class: 'login_start' }), 1);
  t.equal(sample(text, 'tenant_gate_upstream_duration_seconds_count', { outcome: '2xx' }), 3, 'route mode: /login/acme goes upstream');
  t.equal(sample(text, 'tenant_gate_upstream_duration_seconds_count', { outcome: '5xx' }), 1);
  t.ok((sample(text, 'tenant_gate_directory_query_duration_seconds_count', { kind: 'tenant', outcome: 'found' }) ?? 0) >= 1);
  t.equal(sample(text, 'tenant_gate_backend_up', { backend: 'store' }), 1);
  t.equal(sample(text, 'tenant_gate_admin_auth_failures_total', { reason: 'bad' }), 1);
  t.equal(sample(text, 'tenant_gate_admin_auth_failures_total', { reason: 'missing' }), 1);
});

t.test('an upstream that is down counts as unavailable', async (t) => {
  const gw = await startGateway(t, { upstreams: { webapp: 'http://127.0.0.1:9' } });
  await seedRouteTenants(gw.adminUrl);
  t.equal((await publicRequest(gw.publicPort, { path: '/api/x', host: 'acme.ml.example.com', headers: { accept: 'application/json' } })).status, 502);
  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  t.equal(sample(text, 'tenant_gate_upstream_duration_seconds_count', { outcome: 'unavailable' }), 1);
  t.equal(sample(text, 'tenant_gate_request_duration_seconds_count', { class: 'proxied', tenant: 'acme' }), 1);
});
