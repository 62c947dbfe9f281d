import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import t from 'tap';
import { twoTenants } from '../helpers/two-tenants.js';

const DASHBOARD = resolve(import.meta.dirname, '../../deploy/grafana/tenant-gate.json');

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'offset', 'bool', 'inf', 'nan']);

/** The metric names a PromQL expression reads (functions, labels, strings, ranges and keywords removed). */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names: string[] = [];
  for (const m of bare.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?/g)) {
    if (m[1] || KEYWORDS.has(m[0].toLowerCase())) continue;
    names.push(m[0]);
  }
  return names;
}

/** Every PromQL expression of a dashboard: panel targets and query variables. */
function expressions(dashboard: any): string[] {
  const out: string[] = [];
  const walk = (panels: any[]) => {
    for (const p of panels ?? []) {
      for (const target of p.targets ?? []) if (target.expr) out.push(target.expr);
      walk(p.panels);
    }
  };
  walk(dashboard.panels);
  for (const v of dashboard.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : v.query?.query;
    const m = /^label_values\(\s*([^,]+),/.exec(q ?? '');
    if (m) out.push(m[1]!);
  }
  return out;
}

/** Names a Prometheus text exposition declares, with the series names a histogram gives. */
function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(m[1]!);
    if (m[2] === 'histogram' || m[2] === 'summary') for (const s of ['_bucket', '_sum', '_count']) names.add(m[1]! + s);
  }
  return names;
}

t.test('the metric name extraction sees through functions, matchers, ranges and grouping', async (t) => {
  t.same(
    metricNames('histogram_quantile(0.99, sum by (class, le) (rate(a_bucket{tenant=~"x|y", le!="1"}[$__rate_interval]))) / on (class) group_left b_total'),
    ['a_bucket', 'b_total'],
  );
  t.same(metricNames('sum(rate(x_total{result="hit"}[5m])) / sum(rate(x_total{result=~"hit|miss"}[5m]))'), ['x_total', 'x_total']);
});

t.test('every query of the Grafana dashboard names only metrics the gateway exports', async (t) => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8'));
  const gw = await twoTenants(t);
  const exported = exportedNames(await (await fetch(`${gw.adminUrl}/metrics`)).text());
  const exprs = expressions(dashboard);
  t.ok(exprs.length >= 15, `${exprs.length} expressions`);
  const used = new Set(exprs.flatMap(metricNames));
  for (const name of used) t.ok(exported.has(name), `${name} is exported`);
  for (const wanted of ['tenant_gate_logins_total', 'tenant_gate_request_duration_seconds_bucket', 'tenant_gate_sessions_active', 'tenant_gate_provider_request_duration_seconds_bucket', 'tenant_gate_directory_lookups_total']) {
    t.ok(used.has(wanted), `the dashboard shows ${wanted}`);
  }
});

t.test('the dashboard takes its data source from a variable', async (t) => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8'));
  t.ok(dashboard.templating.list.some((v: any) => v.name === 'datasource' && v.type === 'datasource' && v.query === 'prometheus'));
  for (const p of dashboard.panels) {
    t.equal(p.datasource?.uid, '${datasource}', `panel ${p.title}`);
    for (const target of p.targets) t.equal(target.datasource?.uid, '${datasource}', `${p.title} ${target.refId}`);
  }
});
