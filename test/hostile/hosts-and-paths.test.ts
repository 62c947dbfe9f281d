import t from 'tap';
import { normalizeHost } from '../../src/tenancy/host.js';
import { BASE_DOMAIN } from '../helpers/gateway.js';
import { describeEntry, readFixture } from '../tenancy/fixture-reader.js';
import {
  API,
  authStack,
  checkNoErrorLogs,
  checkOutcomes,
  checkUpstreamRecords,
  NAV,
  readsAsCallback,
  readTagged,
  replay,
  routeStack,
  type Outcome,
  type Probe,
  type Stack,
} from './harness.js';

type Test = import('tap').Test;

const hostValues = [
  ...readFixture('hostile-hosts.txt').map((e) => ({ ...e, tag: 'refused' })),
  ...readTagged('hostile-host-headers.txt'),
];
const targets = readTagged('hostile-request-targets.txt');

function hostProbes(stack: Stack): Probe[] {
  const probes: Probe[] = [];
  for (const e of hostValues) {
    const label = `Host ${describeEntry(e)}`;
    // The host is judged before anything else: a refused one needs one shape of request.
    probes.push({ label: `${label} (script)`, target: '/projects', host: e.value, headers: API });
    if (e.tag === 'refused') continue;
    probes.push({ label: `${label} (page)`, target: '/projects', host: e.value, headers: NAV });
    if (stack.session) probes.push({ label: `${label} (signed in)`, target: '/projects', host: e.value, headers: [...API, ['Cookie', stack.session]] });
  }
  probes.push({ label: 'no Host header', target: '/projects', host: null, headers: API });
  probes.push({ label: 'two Host headers, foreign first', target: '/projects', host: 'evil.example', headers: [['Host', 'acme.ml.example.com'], ...API] });
  probes.push({ label: 'two Host headers, ours first', target: '/projects', host: 'acme.ml.example.com', headers: [['Host', 'evil.example'], ...API] });
  probes.push({ label: 'absolute-form target naming another host', target: 'http://acme.ml.example.com/projects', host: 'evil.example', headers: API });
  return probes;
}

function checkHosts(t: Test, stack: Stack, outcomes: Outcome[]) {
  checkOutcomes(t, stack, outcomes, (o, label) => {
    const entry = hostValues.find((e) => o.probe.label.startsWith(`Host ${describeEntry(e)}`));
    if (!entry) return;
    const status = o.first?.status;
    if (entry.tag === 'refused' && (status === undefined || ![400, 421].includes(status) || o.reached.length > 0)) {
      t.fail(`${label}: refused with a 400 or 421 page`, { status, reached: o.reached.length });
    }
    const ours = entry.tag === 'ours' && stack.hosts.has(normalizeHost(entry.value.split('\r\n')[0]!) ?? '');
    if (ours && (status === 400 || status === 421)) t.fail(`${label}: served as one of the gateway's hosts`, { status });
    if (ours && stack.mode === 'route' && o.probe.label.endsWith('(script)') && !o.answeredByUpstream) t.fail(`${label}: proxied`, { status });
  });
}

function targetProbes(stack: Stack): Probe[] {
  const probes: Probe[] = [];
  // Route mode: the base host proxies everything, a tenant host sends pages to the login.
  // Authenticate mode: without a session nothing is proxied, so the variants that matter
  // are signed in, on the session's tenant, on the base host and on another tenant.
  const variants: Array<[string, string, Array<[string, string]>]> = stack.session
    ? [
        ['tenant host, page', 'acme.ml.example.com', NAV],
        ['tenant host, signed in', 'acme.ml.example.com', [...NAV, ['Cookie', stack.session]]],
        ['base host, signed in', BASE_DOMAIN, [...API, ['Cookie', stack.session]]],
        ["other tenant's host, signed in", 'globex.ml.example.com', [...API, ['Cookie', stack.session]]],
      ]
    : [
        ['base host, script', BASE_DOMAIN, API],
        ['tenant host, script', 'acme.ml.example.com', API],
        ['tenant host, page', 'acme.ml.example.com', NAV],
      ];
  for (const e of targets) {
    for (const [name, host, headers] of variants) probes.push({ label: `${describeEntry(e)} (${name})`, target: e.value, host, headers });
  }
  const long: Array<[string, string]> = [
    ['a 20 000-character path', `/${'a'.repeat(20_000)}`],
    ['a 15 000-character query', `/projects?q=${'b'.repeat(15_000)}`],
    ['a 5 000-character tenant', `/login/${'a'.repeat(5_000)}`],
    ['a 10 000-character client id', `/callback_${'c'.repeat(10_000)}?code=a&state=b`],
    ['a 12 000-character code', `/callback_acme-webapp?code=${'d'.repeat(12_000)}&state=b`],
    ['2 000 empty segments', `/${'/'.repeat(2_000)}x`],
    ['1 000 dot segments', `/${'../'.repeat(1_000)}x`],
    ['3 000 query pairs', `/projects?${Array.from({ length: 3_000 }, (_, i) => `k${i}=v`).join('&')}`],
    ['500 redirect parameters', `/projects?${'redirect=%2F%2Fevil.example&'.repeat(500)}`],
    ['a 2 000-deep percent layer', `/${'%25'.repeat(2_000)}2f`],
  ];
  for (const [name, target] of long) {
    probes.push({ label: `${name} (base host)`, target, headers: API });
    probes.push({ label: `${name} (tenant host, page)`, target, host: 'acme.ml.example.com', headers: NAV });
  }
  return probes;
}

function checkTargets(t: Test, stack: Stack, outcomes: Outcome[]) {
  checkOutcomes(t, stack, outcomes, (o, label) => {
    const entry = targets.find((e) => o.probe.label.startsWith(`${describeEntry(e)} (`));
    if (entry?.tag !== 'refused') return;
    const status = o.first?.status ?? 0;
    if (status < 400 || status >= 500 || o.reached.length > 0 || o.answeredByUpstream) t.fail(`${label}: refused by the gateway`, { status, reached: o.reached.length });
  });
}

const stacks = { route: await routeStack(t), authenticate: await authStack(t) };

for (const mode of ['route', 'authenticate'] as const) {
  const stack = stacks[mode];

  t.test(`${mode} mode: hostile Host headers`, async (t) => {
    const logFrom = stack.logs.lines.length;
    const upFrom = stack.upstream.length;
    const outcomes = await replay(stack, hostProbes(stack), { concurrency: 16 });
    t.ok(hostValues.length >= 150, 'the host corpora are not accidentally truncated');
    checkHosts(t, stack, outcomes);
    checkUpstreamRecords(t, stack, upFrom);
    checkNoErrorLogs(t, stack, logFrom);
    await stack.healthy(t);
  });

  t.test(`${mode} mode: hostile request targets`, async (t) => {
    const logFrom = stack.logs.lines.length;
    const upFrom = stack.upstream.length;
    const outcomes = await replay(stack, targetProbes(stack), { concurrency: 16 });
    t.ok(targets.length >= 150, 'the target corpus is not accidentally truncated');
    checkTargets(t, stack, outcomes);
    checkUpstreamRecords(t, stack, upFrom);
    const callbacks = stack.upstream.slice(upFrom).filter((seen) => readsAsCallback(seen.url, [0, 1, 2]));
    t.same(callbacks.map((seen) => seen.url), [], 'nothing that reads as a callback, even decoded twice, reached the upstream');
    checkNoErrorLogs(t, stack, logFrom);
    await stack.healthy(t);
  });
}

/** The gateway's own paths, which some plugins treat specially before the host or session is checked. */
const GATEWAY_PATHS = ['/healthz', '/readyz', '/healthz?x=1', '/login', '/logout', '/login/acme', '/callback_acme-webapp?code=a&state=b', '/callback_acme-web?code=a&state=b'];
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

function methodProbes(host: string, extra: Array<[string, string]> = []): Probe[] {
  return GATEWAY_PATHS.flatMap((target) =>
    METHODS.map((method) => ({
      label: `${method} ${target} on ${host}`,
      method,
      target,
      host,
      headers: [...API, ...extra, ...(method === 'GET' || method === 'HEAD' ? [] : ([['Content-Type', 'application/json']] as Array<[string, string]>))],
      ...(method === 'GET' || method === 'HEAD' ? {} : { body: '{}' }),
    })),
  );
}

t.test('a foreign Host is never proxied, whatever the method and path', async (t) => {
  for (const mode of ['route', 'authenticate'] as const) {
    const stack = stacks[mode];
    const outcomes = await replay(stack, methodProbes('evil.example'), { concurrency: 16 });
    checkOutcomes(t, stack, outcomes);
    const proxied = outcomes.filter((o) => o.reached.length > 0).map((o) => `${o.probe.label} -> ${o.first?.status}`);
    t.same(proxied, [], `${mode} mode: none of ${outcomes.length} requests on a foreign Host reached the upstream`);
  }
});

t.test('authenticate mode: nothing reaches the upstream without a session, whatever the method and path', async (t) => {
  const stack = stacks.authenticate;
  const upFrom = stack.upstream.length;
  const outcomes = await replay(stack, [...methodProbes(BASE_DOMAIN), ...methodProbes('acme.ml.example.com')], { concurrency: 16 });
  checkOutcomes(t, stack, outcomes);
  const proxied = outcomes.filter((o) => o.reached.length > 0).map((o) => `${o.probe.label} -> ${o.first?.status}`);
  t.same(proxied, [], `none of ${outcomes.length} requests without a session reached the upstream`);
  checkUpstreamRecords(t, stack, upFrom);
});

t.test('the gateway paths with every method: no 5xx, no hang, and the gateway still serves', async (t) => {
  for (const mode of ['route', 'authenticate'] as const) {
    const stack = stacks[mode];
    const logFrom = stack.logs.lines.length;
    const probes = [...methodProbes(BASE_DOMAIN), ...methodProbes('acme.ml.example.com'), ...(stack.session ? methodProbes('acme.ml.example.com', [['Cookie', stack.session]]) : [])];
    const outcomes = await replay(stack, probes, { concurrency: 16 });
    const statuses = outcomes.map((o) => o.first?.status ?? 0);
    t.ok(statuses.every((s) => s > 0 && s < 500), `${mode} mode: ${outcomes.length} requests, none failed`);
    checkNoErrorLogs(t, stack, logFrom);
    await stack.healthy(t);
  }
});
