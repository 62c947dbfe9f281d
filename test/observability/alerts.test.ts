import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { findProgram, PROMETHEUS_DIR } from '../helpers/prometheus.js';

const promtool = findProgram('promtool');

t.test('the alerting and recording rules are valid and pass their unit tests', { skip: promtool ? false : 'promtool is not installed (Debian package prometheus): rule tests skipped' }, async (t) => {
  const check = spawnSync(promtool!, ['check', 'rules', join(PROMETHEUS_DIR, 'rules.yaml'), join(PROMETHEUS_DIR, 'alerts.yaml')], { encoding: 'utf8', timeout: 30_000 });
  t.equal(check.status, 0, `${check.stdout}${check.stderr}`);
  const test = spawnSync(promtool!, ['test', 'rules', join(PROMETHEUS_DIR, 'tests/alerts.test.yaml')], { encoding: 'utf8', timeout: 30_000 });
  t.equal(test.status, 0, `${test.stdout}${test.stderr}`);
});

t.test('every alerting rule has a unit test that expects it to fire', { skip: promtool ? false : 'promtool is not installed' }, async (t) => {
  const { readFileSync } = await import('node:fs');
  const { parse } = await import('yaml');
  const alerts = parse(readFileSync(join(PROMETHEUS_DIR, 'alerts.yaml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert?: string }> }> };
  const tests = parse(readFileSync(join(PROMETHEUS_DIR, 'tests/alerts.test.yaml'), 'utf8')) as { tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts: unknown[] }> }> };
  const fired = new Set(tests.tests.flatMap((c) => (c.alert_rule_test ?? []).filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
  for (const rule of alerts.groups.flatMap((g) => g.rules)) if (rule.alert) t.ok(fired.has(rule.alert), `${rule.alert} is tested`);
});
