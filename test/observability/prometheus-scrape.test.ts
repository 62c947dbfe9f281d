import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { publicRequest, seedRouteTenants, startGateway, startUpstream } from '../helpers/gateway.js';
import { findProgram, PROMETHEUS_DIR, startPrometheus } from '../helpers/prometheus.js';

const prometheus = findProgram('prometheus');

t.test('a real Prometheus scrapes a gateway and the recording rules produce their series', { skip: prometheus ? false : 'prometheus is not installed (Debian package prometheus): scrape test skipped', timeout: 60_000 }, async (t) => {
  const upstream = await startUpstream(t);
  const gw = await startGateway(t, { upstreams: { webapp: upstream.url }, log: { level: 'warn' } });
  await seedRouteTenants(gw.adminUrl);
  const server = await startPrometheus(t, {
    binary: prometheus!,
    targets: [new URL(gw.adminUrl).host],
    ruleFiles: [join(PROMETHEUS_DIR, 'rules.yaml'), join(PROMETHEUS_DIR, 'alerts.yaml')],
  });
  let traffic = true;
  const load = (async () => {
    while (traffic) {
      await publicRequest(gw.publicPort, { path: '/api/x', host: 'acme.ml.example.com', headers: { accept: 'application/json' } });
      await publicRequest(gw.publicPort, { path: '/login/acme' });
      await sleep(100);
    }
  })();
  t.teardown(async () => {
    traffic = false;
    await load;
  });

  const wanted = {
    proxied: 'tenant_gate:requests:rate5m{class="proxied",tenant="acme"} > 0',
    p99: 'tenant_gate:request_duration_seconds:p99_5m{class="proxied"} > 0',
    hits: 'tenant_gate:directory_cache_hit:ratio5m > 0',
    up: 'tenant_gate_backend_up{backend="store"} == 1',
  };
  const deadline = Date.now() + 45_000;
  const found: Record<string, boolean> = {};
  while (Date.now() < deadline && Object.keys(wanted).some((k) => !found[k])) {
    for (const [name, expr] of Object.entries(wanted)) if (!found[name]) found[name] = (await server.query(expr)).length > 0;
    await sleep(500);
  }
  for (const name of Object.keys(wanted)) t.ok(found[name], `${name}: ${wanted[name as keyof typeof wanted]}`);
  const p99 = await server.query('tenant_gate:request_duration_seconds:p99_5m{class="proxied"}');
  t.ok(Number(p99[0]?.value[1]) <= 10, 'p99 is within the buckets');
  const rules = (await (await fetch(`${server.url}/api/v1/rules`)).json()) as { data: { groups: Array<{ name: string; rules: Array<{ health: string; name: string }> }> } };
  const all = rules.data.groups.flatMap((g) => g.rules);
  t.ok(all.length >= 20, 'recording and alerting rules loaded');
  t.same(all.filter((r) => r.health === 'err').map((r) => r.name), [], 'no rule fails to evaluate');
});
