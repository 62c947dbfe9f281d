import t from 'tap';
import { loginAtIdp } from '../helpers/idp.js';
import { decodeEscapes, describeEntry, readFixture } from '../tenancy/fixture-reader.js';
import {
  API,
  authStack,
  bodyText,
  Browser,
  checkNoErrorLogs,
  checkOutcomes,
  checkUpstreamRecords,
  NAV,
  replay,
  routeStack,
  type Outcome,
  type Probe,
} from './harness.js';


const FORM = 'application/x-www-form-urlencoded';
const emails = readFixture('hostile-emails.txt');
const bodies = readFixture('hostile-discovery-bodies.txt').map((e) => {
  const sp = e.raw.indexOf(' ');
  const type = decodeEscapes(sp < 0 ? e.raw : e.raw.slice(0, sp));
  return { ...e, type: type === '-' ? undefined : type, body: sp < 0 ? '' : decodeEscapes(e.raw.slice(sp + 1)) };
});
const unsafe = readFixture('open-redirects.txt');
const safe = readFixture('safe-redirects.txt');

const stacks = { route: await routeStack(t), authenticate: await authStack(t) };
// A tenant with two providers: its login page is a chooser whose links show the
// redirect a login would carry, without a round trip to an identity provider.
await stacks.authenticate.tt.call('system.update_company_sso_config', { company: 'c-initech', sso: { tenant: 'initech' } });
for (const id of ['one', 'two']) {
  await stacks.authenticate.tt.call('sso.save_provider_configuration', { provider: 'keycloak', company: 'c-initech', configuration: { id, client_id: `initech-${id}`, issuer: stacks.authenticate.tt.acmeIdp.issuer } });
}

/** The `redirect` each provider link of a chooser page carries (null when none). */
function chooserRedirects(html: string): Array<string | null> {
  const hrefs = [...html.matchAll(/href="([^"]*[?&]provider=[^"]*)"/g)].map((m) => m[1]!.replace(/&#(\d+);/g, (_x, n: string) => String.fromCharCode(Number(n))));
  return hrefs.map((h) => new URLSearchParams(h.slice(h.indexOf('?') + 1)).get('redirect'));
}

/** The input must never come back as markup: `<script`, `<img` or an attribute break-out. */
function reflectsMarkup(o: Outcome): boolean {
  return /<script|<img|"><|'></i.test(bodyText(o.first).replace(/<style>[\s\S]*?<\/style>/, ''));
}

/** Locations the discovery form may answer with. */
const DISCOVERY_LOCATION = /^\/login\/(acme|Globex|globex)\?login_hint=[^&]*(&redirect=[^&]*)?$/;

for (const mode of ['route', 'authenticate'] as const) {
  const stack = stacks[mode];

  t.test(`${mode} mode: hostile emails get the neutral form`, async (t) => {
    const logFrom = stack.logs.lines.length;
    const upFrom = stack.upstream.length;
    const probes: Probe[] = emails.flatMap((e) => [
      { label: `form ${describeEntry(e)}`, method: 'POST', target: '/login', headers: [['Content-Type', FORM]] as Array<[string, string]>, body: `email=${encodeURIComponent(e.value)}` },
      { label: `json ${describeEntry(e)}`, method: 'POST', target: '/login', headers: [['Content-Type', 'application/json']] as Array<[string, string]>, body: JSON.stringify({ email: e.value }) },
    ]);
    const outcomes = await replay(stack, probes, { concurrency: 16 });
    t.ok(emails.length >= 50, 'the email corpus is not accidentally truncated');
    checkOutcomes(t, stack, outcomes, (o, label) => {
      if (o.first?.status !== 200 || !/could not find single sign-on/.test(bodyText(o.first))) t.fail(`${label}: the neutral form`, { status: o.first?.status });
      if (/acme|globex/i.test(bodyText(o.first).replace(/value="[^"]*"/, ''))) t.fail(`${label}: names no tenant`);
      if (reflectsMarkup(o)) t.fail(`${label}: the input is not echoed as markup`);
    });
    t.equal(stack.upstream.length, upFrom, 'discovery never reaches the upstream');
    checkNoErrorLogs(t, stack, logFrom);
    await stack.healthy(t);
  });

  t.test(`${mode} mode: hostile discovery bodies, content types and sizes`, async (t) => {
    const logFrom = stack.logs.lines.length;
    const upFrom = stack.upstream.length;
    const probes: Probe[] = bodies.map((e) => ({
      label: describeEntry(e),
      method: 'POST',
      target: '/login',
      headers: e.type === undefined ? [] : [['Content-Type', e.type]],
      body: e.body,
    }));
    const big = (n: number) => `email=a%40acme.com&pad=${'x'.repeat(n)}`;
    probes.push(
      { label: 'a form body just under the limit', method: 'POST', target: '/login', headers: [['Content-Type', FORM]], body: big(60_000) },
      { label: 'a form body over the limit', method: 'POST', target: '/login', headers: [['Content-Type', FORM]], body: big(70_000) },
      { label: 'a 2 MB form body', method: 'POST', target: '/login', headers: [['Content-Type', FORM]], body: big(2_000_000) },
      { label: 'a 2 MB JSON body', method: 'POST', target: '/login', headers: [['Content-Type', 'application/json']], body: JSON.stringify({ email: 'a@acme.com', pad: 'x'.repeat(2_000_000) }) },
      { label: 'a 2 MB chunked body', method: 'POST', target: '/login', headers: [['Content-Type', FORM], ['Transfer-Encoding', 'chunked']], body: `${(2_000_000).toString(16)}\r\n${'x'.repeat(2_000_000)}\r\n0\r\n\r\n` },
      { label: 'a Content-Length larger than the body', method: 'POST', target: '/login', headers: [['Content-Type', FORM], ['Content-Length', '100000']], body: 'email=a%40acme.com' },
      { label: 'a negative Content-Length', method: 'POST', target: '/login', headers: [['Content-Type', FORM], ['Content-Length', '-1']], body: 'email=a%40acme.com' },
      { label: 'two Content-Lengths', method: 'POST', target: '/login', headers: [['Content-Type', FORM], ['Content-Length', '18'], ['Content-Length', '5']], body: 'email=a%40acme.com' },
      { label: 'Content-Length and chunked', method: 'POST', target: '/login', headers: [['Content-Type', FORM], ['Content-Length', '18'], ['Transfer-Encoding', 'chunked']], body: '12\r\nemail=a%40acme.com\r\n0\r\n\r\n' },
      { label: '10 000 fields', method: 'POST', target: '/login', headers: [['Content-Type', FORM]], body: `${Array.from({ length: 10_000 }, (_, i) => `f${i}=1`).join('&')}&email=a%40acme.com` },
      { label: '5 000 email fields', method: 'POST', target: '/login', headers: [['Content-Type', FORM]], body: 'email=a%40acme.com&'.repeat(5_000) },
      { label: 'JSON nested 5 000 deep', method: 'POST', target: '/login', headers: [['Content-Type', 'application/json']], body: `${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}` },
      { label: 'a 60 000-character email', method: 'POST', target: '/login', headers: [['Content-Type', FORM]], body: `email=${'a'.repeat(60_000)}%40acme.com` },
    );
    const outcomes = await replay(stack, probes, { concurrency: 8, timeoutMs: 10_000 });
    t.ok(bodies.length >= 60, 'the body corpus is not accidentally truncated');
    checkOutcomes(t, stack, outcomes, (o, label) => {
      const status = o.first?.status ?? 0;
      if (![200, 303, 400, 411, 413, 415].includes(status)) t.fail(`${label}: the form, a 303 to a tenant login, or a 4xx page`, { status });
      const loc = o.first?.headers.location?.[0];
      if (status === 303 && !DISCOVERY_LOCATION.test(loc ?? '')) t.fail(`${label}: a 303 only to /login/<tenant>`, { location: loc });
      if (loc && /redirect=/.test(loc) && !/redirect=%2Fok$/.test(loc)) t.fail(`${label}: an unsafe redirect is not carried on`, { location: loc });
      if (reflectsMarkup(o)) t.fail(`${label}: the input is not echoed as markup`);
    });
    t.equal(stack.upstream.length, upFrom, 'discovery never reaches the upstream');
    checkNoErrorLogs(t, stack, logFrom);
    await stack.healthy(t);
  });

  t.test(`${mode} mode: unsafe redirect targets are dropped wherever they are given`, async (t) => {
    const logFrom = stack.logs.lines.length;
    const upFrom = stack.upstream.length;
    const probes: Probe[] = [];
    for (const [kind, list] of [['unsafe', unsafe], ['safe', safe]] as const) {
      for (const e of list) {
        const v = encodeURIComponent(e.value);
        const name = `${kind} ${describeEntry(e)}`;
        probes.push({ label: `${name} | /login on a tenant host`, target: `/login?redirect=${v}`, host: 'acme.ml.example.com', headers: NAV });
        probes.push({ label: `${name} | discovery`, method: 'POST', target: '/login', headers: [['Content-Type', FORM]], body: `email=a%40acme.com&redirect=${v}` });
        probes.push({ label: `${name} | page without a session`, target: `/projects?redirect=${v}`, host: 'acme.ml.example.com', headers: NAV });
        if (mode === 'authenticate') probes.push({ label: `${name} | a login page with a chooser`, target: `/login/initech?redirect=${v}`, host: 'initech.ml.example.com', headers: NAV });
        if (mode === 'route') {
          probes.push({ label: `${name} | /login/<tenant> to the webapp`, target: `/login/acme?redirect=${v}&x=1`, headers: API });
          probes.push({ label: `${name} | any page to the webapp`, target: `/projects?redirect=${v}`, headers: API });
        }
      }
    }
    const outcomes = await replay(stack, probes, { concurrency: 16 });
    t.ok(unsafe.length >= 150, 'the redirect corpus is not accidentally truncated');
    const kept = (q: URLSearchParams) => q.get('redirect');
    checkOutcomes(t, stack, outcomes, (o, label) => {
      const isSafe = label.startsWith('safe ');
      const entry = (isSafe ? safe : unsafe).find((e) => label.startsWith(`${isSafe ? 'safe' : 'unsafe'} ${describeEntry(e)} |`))!;
      const loc = o.first?.headers.location?.[0];
      if (label.endsWith('| /login on a tenant host') || label.endsWith('| discovery')) {
        const u = new URL(loc ?? '/missing', 'http://x');
        if (u.pathname !== '/login/acme') t.fail(`${label}: to the tenant login`, { location: loc });
        if (kept(u.searchParams) !== (isSafe ? entry.value : null)) t.fail(`${label}: the redirect is ${isSafe ? 'kept' : 'dropped'}`, { location: loc });
      }
      if (label.endsWith('| a login page with a chooser')) {
        const carried = chooserRedirects(bodyText(o.first));
        if (o.first?.status !== 200 || carried.length !== 2) t.fail(`${label}: the chooser`, { status: o.first?.status });
        if (carried.some((r) => r !== (isSafe ? entry.value : null))) t.fail(`${label}: its links carry the redirect only when safe`, { carried });
      }
      for (const seen of o.reached) {
        const q = new URLSearchParams(seen.url.slice(seen.url.indexOf('?') + 1));
        if (!isSafe && q.has('redirect')) t.fail(`${label}: the webapp never sees an unsafe redirect`, { url: seen.url });
        if (isSafe && kept(q) !== entry.value) t.fail(`${label}: the webapp sees a safe redirect unchanged`, { url: seen.url });
      }
    });
    checkUpstreamRecords(t, stack, upFrom);
    checkNoErrorLogs(t, stack, logFrom);
    await stack.healthy(t);
  });
}

t.test('authenticate mode: after a real login the browser lands only on a safe path of the same host', async (t) => {
  const s = stacks.authenticate.tt;
  const logFrom = s.logs.lines.length;
  // Every entry is checked at the login's start above (the chooser's links); here a
  // sample goes through a whole login: every safe target and every eighth hostile one.
  const entries = [...unsafe.filter((_e, i) => i % 8 === 0).map((e) => ({ e, safe: false })), ...safe.map((e) => ({ e, safe: true }))];
  const results: Array<{ label: string; safe: boolean; value: string; start: number; location: string | undefined }> = [];
  const queue = [...entries];
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let item = queue.shift(); item; item = queue.shift()) {
        const browser = new Browser();
        const start = await s.req({ path: `/login/acme?redirect=${encodeURIComponent(item.e.value)}`, host: 'acme.ml.example.com' }, browser);
        let location: string | undefined;
        if (start.status === 302) {
          const cb = new URL((await loginAtIdp(start.headers.location!, 'bob')).callbackUrl);
          const done = await s.req({ path: cb.pathname + cb.search, host: cb.host }, browser);
          location = done.status === 302 ? done.headers.location : `status ${done.status}`;
        }
        results.push({ label: `${item.safe ? 'safe' : 'unsafe'} ${describeEntry(item.e)}`, safe: item.safe, value: item.e.value, start: start.status, location });
      }
    }),
  );
  let wrong = 0;
  for (const r of results) {
    const expected = r.safe ? r.value : '/';
    if (r.start !== 302 || r.location !== expected) {
      wrong++;
      t.fail(`${r.label}: lands on ${expected}`, { start: r.start, location: r.location });
    }
  }
  t.equal(wrong, 0, `${results.length} logins, each landing where it may`);
  checkNoErrorLogs(t, stacks.authenticate, logFrom);
});

