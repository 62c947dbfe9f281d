import t from 'tap';
import { loginAtIdp } from '../helpers/idp.js';
import { describeEntry, readFixture } from '../tenancy/fixture-reader.js';
import {
  API,
  authStack,
  Browser,
  checkNoErrorLogs,
  checkOutcomes,
  checkUpstreamRecords,
  readsAsCallback,
  replay,
  routeStack,
  type Outcome,
  type Probe,
  type Stack,
} from './harness.js';

type Test = import('tap').Test;

const FORM = 'application/x-www-form-urlencoded';
const corpus = readFixture('hostile-callbacks.txt').map((e) => {
  const sp = e.value.indexOf(' ');
  return { ...e, reason: e.value.slice(0, sp), target: e.value.slice(sp + 1) };
});
const params = readFixture('hostile-callback-params.txt');

const stacks = { route: await routeStack(t), authenticate: await authStack(t) };
const clientOf = { route: 'acme-webapp', authenticate: 'acme-web' } as const;

/** The corpus names its client `web`; here it is the acme provider's real client id. */
function withClient(target: string, clientId: string): string {
  return target.replace(/callback_web(?![A-Za-z0-9])/g, `callback_${clientId}`);
}

function corpusProbes(stack: Stack): Probe[] {
  const clientId = clientOf[stack.mode];
  const probes: Probe[] = [];
  const hosts: Array<[string, string, Array<[string, string]>]> = [
    ['base host', 'ml.example.com', API],
    ['tenant host', 'acme.ml.example.com', API],
  ];
  if (stack.session) hosts.push(['tenant host, signed in', 'acme.ml.example.com', [...API, ['Cookie', stack.session]]]);
  for (const e of corpus) {
    const target = withClient(e.target, clientId);
    for (const [name, host, headers] of hosts) probes.push({ label: `GET ${describeEntry(e)} (${name})`, target, host, headers });
    // The same query as a form_post body.
    const q = target.indexOf('?');
    const path = q < 0 ? target : target.slice(0, q);
    const body = q < 0 ? '' : target.slice(q + 1);
    probes.push({ label: `POST ${describeEntry(e)}`, method: 'POST', target: path, host: 'acme.ml.example.com', headers: [['Content-Type', FORM]], body });
  }
  return probes;
}

/**
 * A target the gateway must judge as a callback (one decoding, then normalised) is a 400
 * page and never proxied; any other target may be proxied, but never as anything a
 * lenient router could read as a callback.
 */
function expectRefused(t: Test, o: Outcome, label: string) {
  const status = o.first?.status;
  if (!readsAsCallback(o.probe.target, [1])) {
    for (const seen of o.reached) if (readsAsCallback(seen.url, [0, 1, 2])) t.fail(`${label}: reached the upstream as ${seen.url}, which reads as a callback`);
    return;
  }
  if (status !== 400 || o.reached.length > 0) t.fail(`${label}: a 400 page, never proxied`, { status, reached: o.reached.length });
  for (const r of o.exchange.responses) {
    for (const c of r.headers['set-cookie'] ?? []) if (/^tg_session=[^;]/.test(c)) t.fail(`${label}: a session cookie was set`);
  }
}

for (const mode of ['route', 'authenticate'] as const) {
  t.test(`${mode} mode: every hostile callback is a 400 page and never reaches the upstream`, async (t) => {
    const stack = stacks[mode];
    const logFrom = stack.logs.lines.length;
    const upFrom = stack.upstream.length;
    t.ok(corpus.length >= 100, 'the callback corpus is not accidentally truncated');
    const outcomes = await replay(stack, corpusProbes(stack), { concurrency: 16 });
    checkOutcomes(t, stack, outcomes, (o, label) => expectRefused(t, o, label));
    const callbacks = stack.upstream.slice(upFrom).filter((seen) => readsAsCallback(seen.url, [0, 1, 2]));
    t.same(callbacks.map((seen) => seen.url), [], 'the upstream saw none of them as a callback');
    checkUpstreamRecords(t, stack, upFrom);
    checkNoErrorLogs(t, stack, logFrom);
    await stack.healthy(t);
  });
}

t.test('route mode: a callback passes only on a host of its own tenant', async (t) => {
  const stack = stacks.route;
  const upFrom = stack.upstream.length;
  const cases: Array<[string, string, boolean]> = [
    ['ml.example.com', 'acme-webapp', true],
    ['ml.example.com', 'globex-webapp', true],
    ['acme.ml.example.com', 'acme-webapp', true],
    ['ml.acme.com', 'acme-webapp', true],
    ['ACME.ml.example.com.', 'acme-webapp', true],
    ['globex.ml.example.com', 'globex-webapp', true],
    ['acme.ml.example.com', 'globex-webapp', false],
    ['ml.acme.com', 'globex-webapp', false],
    ['globex.ml.example.com', 'acme-webapp', false],
    ['acme.ml.example.com', 'Acme-Webapp', false],
    ['acme.ml.example.com', 'acme-webapp ', false],
    ['acme.ml.example.com', 'acme-webapp%20', false],
    ['evil.example', 'acme-webapp', false],
  ];
  const outcomes = await replay(
    stack,
    cases.map(([host, client, ok]) => ({ label: `${client} on ${host} (${ok ? 'passes' : 'refused'})`, target: `/callback_${client}?code=a&state=b&iss=https%3A%2F%2Fkc.example.com`, host, headers: API })),
  );
  checkOutcomes(t, stack, outcomes, (o, label) => {
    const ok = label.endsWith('(passes)');
    if (ok && !o.answeredByUpstream) t.fail(`${label}: passed on`, { status: o.first?.status });
    if (!ok && (o.reached.length > 0 || (o.first?.status !== 400 && o.first?.status !== 421))) t.fail(`${label}: refused`, { status: o.first?.status });
  });
  checkUpstreamRecords(t, stack, upFrom);
  t.equal(stack.upstream.length - upFrom, cases.filter((c) => c[2]).length, 'exactly the well-placed callbacks reached the upstream');
});

t.test('authenticate mode: a real transaction with a forged answer is refused and creates no session', async (t) => {
  const stack = stacks.authenticate;
  const s = stack.tt;
  const logFrom = stack.logs.lines.length;
  const upFrom = stack.upstream.length;
  t.ok(params.length >= 30, 'the parameter corpus is not accidentally truncated');

  /** Starts a login as bob and stops at the provider's answer; returns the raw pairs of that answer. */
  async function transaction() {
    const browser = new Browser();
    const start = await s.req({ path: '/login/acme', host: 'acme.ml.example.com' }, browser);
    if (start.status !== 302) throw new Error(`login did not start: ${start.status}`);
    const { callbackUrl } = await loginAtIdp(start.headers.location!, 'bob');
    const raw = new Map(new URL(callbackUrl).search.slice(1).split('&').map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)] as [string, string]));
    return { browser, raw, callbackUrl };
  }

  const control = await transaction();
  const ok = await s.req({ path: `/callback_acme-web?${[...control.raw].map(([k, v]) => `${k}=${v}`).join('&')}`, host: 'acme.ml.example.com' }, control.browser);
  t.equal(ok.status, 302, 'the genuine answer signs in (the probe is sound)');
  t.ok(control.browser.cookies.has('tg_session'), 'and sets a session');

  const results: Array<{ entry: (typeof params)[number]; status: number; body: string; cookies: string[]; afterwards: number }> = [];
  const queue = [...params];
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let entry = queue.shift(); entry; entry = queue.shift()) {
        const tx = await transaction();
        const query = entry.value.replace(/\{(code|state|iss)\}/g, (_m, k: string) => tx.raw.get(k) ?? '');
        const r = await s.req({ path: `/callback_acme-web?${query}`, host: 'acme.ml.example.com' }, tx.browser);
        const after = await s.req({ path: '/projects', host: 'acme.ml.example.com', headers: { accept: 'application/json' } }, tx.browser);
        results.push({ entry, status: r.status, body: r.body, cookies: r.headers['set-cookie'] ?? [], afterwards: after.status });
      }
    }),
  );
  for (const r of results) {
    const label = describeEntry(r.entry);
    t.ok(r.status === 400 || r.status === 403, `${label}: refused with a page (${r.status})`);
    t.notOk(r.cookies.some((c) => /^tg_session=[^;]/.test(c)), `${label}: no session cookie`);
    t.equal(r.afterwards, 401, `${label}: the browser is not signed in`);
    t.notMatch(r.body, /<script|<img/i, `${label}: nothing reflected as markup`);
  }
  t.equal(stack.upstream.length, upFrom, 'nothing reached the upstream');
  checkNoErrorLogs(t, stack, logFrom);
  await stack.healthy(t);
});

t.test('authenticate mode: a callback error page names no secret and no code', async (t) => {
  const s = stacks.authenticate.tt;
  const browser = new Browser();
  const start = await s.req({ path: '/login/acme', host: 'acme.ml.example.com' }, browser);
  const { callbackUrl } = await loginAtIdp(start.headers.location!, 'bob');
  const u = new URL(callbackUrl);
  const code = u.searchParams.get('code')!;
  u.searchParams.set('state', 'forged');
  const r = await s.req({ path: u.pathname + u.search, host: u.host }, browser);
  t.equal(r.status, 400);
  t.notMatch(r.body, code, 'the code is not echoed');
  t.notMatch(s.logs.text(), code, 'nor logged');
});

t.test('authenticate mode: error answers do not create metric series without bound', async (t) => {
  const s = stacks.authenticate.tt;
  const n = 25;
  for (let i = 0; i < n; i++) {
    const browser = new Browser();
    const start = await s.req({ path: '/login/acme', host: 'acme.ml.example.com' }, browser);
    const r = await s.req({ path: `/callback_acme-web?error=made_up_${i}&state=x`, host: 'acme.ml.example.com' }, browser);
    if (start.status !== 302 || r.status !== 400) t.fail(`error answer ${i}: refused`, { start: start.status, status: r.status });
  }
  const metrics = await (await fetch(`${stacks.authenticate.adminUrl}/metrics`)).text();
  const series = metrics.split('\n').filter((l) => l.startsWith('tenant_gate_logins_total{') && l.includes('made_up_'));
  t.ok(series.length < n, `${n} made-up error codes gave ${series.length} series`);
});
