import t from 'tap';
import { adminCall, publicRequest, startGateway, startUpstream } from '../helpers/gateway.js';
import { loginAtIdp } from '../helpers/idp.js';
import { describeEntry, readFixture } from '../tenancy/fixture-reader.js';
import {
  API,
  authStack,
  Browser,
  checkNoErrorLogs,
  checkOutcomes,
  checkUpstreamRecords,
  NAV,
  readTagged,
  replay,
  routeStack,
  type Outcome,
  type Probe,
  type Stack,
} from './harness.js';
import { rawExchange, rawRequestBytes } from './raw-http.js';

type Test = import('tap').Test;

const cookies = readTagged('hostile-cookies.txt');
const headerLines = readFixture('hostile-headers.txt');
const stacks = { route: await routeStack(t), authenticate: await authStack(t) };

/** Session cookie name and a valid value in each mode. */
function sessionParts(stack: Stack): { name: string; value: string } {
  if (stack.mode === 'route') return { name: 'clearml_token_basic', value: 'webapp-token-0123456789' };
  const [pair] = stack.session!.split(';');
  return { name: pair!.slice(0, pair!.indexOf('=')), value: pair!.slice(pair!.indexOf('=') + 1) };
}

function fill(stack: Stack, value: string): string {
  const { name, value: session } = sessionParts(stack);
  return value.replaceAll('{name}', name).replaceAll('{session}', session).replaceAll('{tx}', `${name}_tx`);
}

/** The identity the authenticate-mode stack's session carries (bob, acme, group Users). */
const BOB = { 'x-auth-request-user': 'bob@acme.com', 'x-auth-request-email': 'bob@acme.com', 'x-auth-request-tenant': 'acme', 'x-auth-request-groups': 'Users', 'x-auth-request-admin': 'false' };

function checkBobIntact(t: Test, o: Outcome, label: string) {
  for (const seen of o.reached) {
    for (const [k, v] of Object.entries(BOB)) if (seen.headers[k] !== v) t.fail(`${label}: the upstream sees ${k}: ${v}`, { found: seen.headers[k] });
  }
}

for (const mode of ['route', 'authenticate'] as const) {
  const stack = stacks[mode];

  t.test(`${mode} mode: hostile cookies`, async (t) => {
    const logFrom = stack.logs.lines.length;
    const upFrom = stack.upstream.length;
    const { name, value } = sessionParts(stack);
    const probes: Probe[] = [];
    for (const e of cookies) {
      const cookie = fill(stack, e.value);
      probes.push({ label: `${describeEntry(e)} (page)`, target: '/projects', host: 'acme.ml.example.com', headers: [...NAV, ['Cookie', cookie]] });
      probes.push({ label: `${describeEntry(e)} (script)`, target: '/projects', host: 'acme.ml.example.com', headers: [...API, ['Cookie', cookie]] });
    }
    const filler = Array.from({ length: 700 }, (_, i) => `c${i}=${'v'.repeat(12)}`).join('; ');
    const generated: Array<[string, string, string]> = [
      ['signed', '14 KB of other cookies before the session', `${filler}; ${name}=${value}`],
      ['signed', '2 000 tiny cookies before the session', `${Array.from({ length: 2_000 }, (_, i) => `${i}=`).join(';')};${name}=${value}`],
      ['forged', 'a 4 000-character session value', `${name}=${'A'.repeat(4_000)}`],
      ['forged', 'a 12 000-character session value', `${name}=${'A'.repeat(12_000)}`],
      ['any', 'a 20 KB cookie header', `${name}=${value}; big=${'x'.repeat(20_000)}`],
      ['any', 'a 1 MB cookie header', `big=${'x'.repeat(1_000_000)}`],
    ];
    for (const [tag, label, cookie] of generated) {
      probes.push({ label: `${tag} ${label} (page)`, target: '/projects', host: 'acme.ml.example.com', headers: [...NAV, ['Cookie', cookie]] });
      probes.push({ label: `${tag} ${label} (script)`, target: '/projects', host: 'acme.ml.example.com', headers: [...API, ['Cookie', cookie]] });
    }
    const split = Array.from({ length: 150 }, (_, i) => ['Cookie', `k${i}=v`] as [string, string]);
    probes.push({ label: 'signed 150 Cookie header lines, the session last (script)', target: '/projects', host: 'acme.ml.example.com', headers: [...API, ...split, ['Cookie', `${name}=${value}`]] });

    const outcomes = await replay(stack, probes, { concurrency: 16 });
    t.ok(cookies.length >= 50, 'the cookie corpus is not accidentally truncated');
    checkOutcomes(t, stack, outcomes, (o, label) => {
      const tag = o.probe.label.startsWith('line ') ? cookies.find((e) => o.probe.label.startsWith(`${describeEntry(e)} (`))!.tag : o.probe.label.split(' ')[0]!;
      const page = label.endsWith('(page)');
      const status = o.first?.status;
      const loc = o.first?.headers.location?.[0] ?? '';
      const toLogin = status === 302 && loc.startsWith('/login/acme');
      if (tag === 'signed') {
        if (!o.answeredByUpstream) t.fail(`${label}: signed in and served`, { status, location: loc });
        if (mode === 'authenticate') checkBobIntact(t, o, label);
      }
      const anonymous = tag === 'anon' || (tag === 'forged' && mode === 'authenticate');
      if (anonymous && page && !toLogin && status !== 400 && status !== 431) t.fail(`${label}: a page goes to the tenant login`, { status, location: loc });
      if (anonymous && !page && mode === 'authenticate' && status !== 401 && status !== 400 && status !== 431) t.fail(`${label}: a script call gets 401`, { status });
      if (anonymous && mode === 'authenticate' && o.reached.length > 0) t.fail(`${label}: never reaches the upstream`);
    });
    checkUpstreamRecords(t, stack, upFrom);
    checkNoErrorLogs(t, stack, logFrom);
    await stack.healthy(t);
  });

  t.test(`${mode} mode: hostile request headers`, async (t) => {
    const logFrom = stack.logs.lines.length;
    const upFrom = stack.upstream.length;
    const probes: Probe[] = [];
    const asHeaders = (line: string): Array<[string, string]> => {
      // One raw line: the name is everything before the first colon, kept byte for byte.
      const colon = line.indexOf(':', 1);
      return colon < 0 ? [[line, '']] : [[line.slice(0, colon), line.slice(colon + 1).replace(/^ /, '')]];
    };
    for (const e of headerLines) {
      const extra = asHeaders(e.value);
      probes.push({ label: `${describeEntry(e)} (base host, script)`, target: '/projects', headers: [...API, ...extra] });
      probes.push({ label: `${describeEntry(e)} (tenant host, page)`, target: '/projects', host: 'acme.ml.example.com', headers: [...NAV, ...extra] });
      if (stack.session) probes.push({ label: `${describeEntry(e)} (tenant host, signed in)`, target: '/projects', host: 'acme.ml.example.com', headers: [...API, ['Cookie', stack.session], ...extra] });
    }
    const big = (n: number): Array<[string, string]> => [['X-Big', 'x'.repeat(n)]];
    const many = (n: number): Array<[string, string]> => Array.from({ length: n }, (_, i) => [`X-H${i}`, '1'] as [string, string]);
    const generated: Array<[string, Array<[string, string]>]> = [
      ['a 12 KB header', big(12_000)],
      ['a 17 KB header', big(17_000)],
      ['a 1 MB header', big(1_000_000)],
      ['500 headers', many(500)],
      ['3 000 headers', many(3_000)],
      ['a 12 KB X-Forwarded-For', [['X-Forwarded-For', Array.from({ length: 1_000 }, (_, i) => `10.0.${i >> 8}.${i & 255}`).join(', ')]]],
      ['200 X-Auth-Request-User lines', Array.from({ length: 200 }, () => ['X-Auth-Request-User', 'admin@acme.com'] as [string, string])],
    ];
    for (const [label, headers] of generated) {
      probes.push({ label: `${label} (base host, script)`, target: '/projects', headers: [...API, ...headers] });
      if (stack.session) probes.push({ label: `${label} (tenant host, signed in)`, target: '/projects', host: 'acme.ml.example.com', headers: [...API, ['Cookie', stack.session], ...headers] });
    }

    const outcomes = await replay(stack, probes, { concurrency: 16 });
    t.ok(headerLines.length >= 70, 'the header corpus is not accidentally truncated');
    checkOutcomes(t, stack, outcomes, (o, label) => {
      if (label.endsWith('(signed in)')) checkBobIntact(t, o, label);
      const loc = o.first?.headers.location?.[0];
      if (loc && !loc.startsWith('/')) t.fail(`${label}: a redirect stays relative`, { location: loc });
    });
    checkUpstreamRecords(t, stack, upFrom);
    checkNoErrorLogs(t, stack, logFrom);
    await stack.healthy(t);
  });
}

t.test('request headers the upstream client cannot send do not turn a request into a 502', async (t) => {
  const stack = stacks.route;
  const upload = 'x'.repeat(2_000);
  const cases: Probe[] = [
    { label: 'an upload with Expect: 100-continue (curl sends it for large bodies)', method: 'POST', target: '/files', headers: [['Content-Type', 'application/octet-stream'], ['Expect', '100-continue']], body: upload },
    { label: 'a request with a Keep-Alive header', target: '/files', headers: [['Keep-Alive', 'timeout=5, max=100']] },
    { label: 'a request offering an h2c upgrade', target: '/files', headers: [['Upgrade', 'h2c']] },
  ];
  const outcomes = await replay(stack, cases);
  for (const o of outcomes) {
    const final = o.exchange.responses.filter((r) => r.status >= 200).at(-1);
    t.equal(final?.status, 200, `${o.probe.label}: served`);
    t.equal(o.reached.length, 1, `${o.probe.label}: reaches the webapp`);
  }
  const chunked = await replay(stack, [{ label: 'a chunked upload', method: 'POST', target: '/files', headers: [['Content-Type', 'application/octet-stream'], ['Transfer-Encoding', 'chunked']], body: '5\r\nhello\r\n0\r\n\r\n' }]);
  t.equal(chunked[0]!.first?.status, 200, 'a chunked upload is served');
  t.equal(chunked[0]!.reached[0]?.body, 'hello', 'with its body');
});

t.test('forwarding headers the gateway does not rewrite never reach the webapp from an untrusted client', async (t) => {
  const spoofed: Array<[string, string]> = [
    ['Forwarded', 'for=6.6.6.6;host=evil.example;proto=http'],
    ['X-Forwarded-Port', '1'],
    ['X-Forwarded-Prefix', '/evil'],
    ['X-Forwarded-Server', 'evil.example'],
    ['X-Forwarded-Uri', '/admin'],
    ['X-Forwarded-Ssl', 'off'],
    ['X-Forwarded-Scheme', 'http'],
    ['X-Forwarded-User', 'admin'],
    ['X-Forwarded-Email', 'admin@acme.com'],
    ['X-Forwarded-Groups', 'Admins'],
    ['X-Real-IP', '6.6.6.6'],
  ];
  for (const mode of ['route', 'authenticate'] as const) {
    const stack = stacks[mode];
    const headers: Array<[string, string]> = [...API, ...spoofed, ...(stack.session ? ([['Cookie', stack.session]] as Array<[string, string]>) : [])];
    const [o] = await replay(stack, [{ label: `${mode} mode: spoofed forwarding headers`, target: '/projects', host: 'acme.ml.example.com', headers }]);
    t.equal(o!.reached.length, 1, `${mode} mode: the request is served`);
    const leaked = spoofed.map(([k]) => k.toLowerCase()).filter((k) => o!.reached[0]?.headers[k] !== undefined);
    t.same(leaked, [], `${mode} mode: none of them reaches the webapp`);
  }
});

t.test("a proxied answer honours the client's Connection: close", async (t) => {
  const stack = stacks.route;
  const bytes = rawRequestBytes({ target: '/projects', headers: [['Host', 'ml.example.com'], ['Accept', 'application/json'], ['Connection', 'close']] });
  const exchange = await rawExchange(stack.port, bytes, { timeoutMs: 3000 });
  t.equal(exchange.responses[0]?.status, 200, 'served');
  const connection = exchange.responses[0]?.headers.connection?.join(',') ?? '';
  t.notMatch(connection, /keep-alive/i, 'the answer does not tell the client to keep the connection');
  t.notOk(exchange.responses[0]?.headers['keep-alive'], "the upstream's Keep-Alive header is not passed on");
});

t.test('X-Forwarded-* count only from a trusted proxy', async (t) => {
  const build = async (trustedProxies: string[]) => {
    const upstream = await startUpstream(t);
    const gw = await startGateway(t, { upstreams: { webapp: upstream.url }, public: { host: '127.0.0.1', port: 0, url: 'https://ml.example.com', trustedProxies } });
    await adminCall(gw.adminUrl, 'system.update_company_sso_config', { company: 'c-acme', sso: { tenant: 'acme' } });
    return { gw, upstream };
  };
  const untrusted = await build(['10.0.0.0/8']);
  const trusted = await build(['127.0.0.1']);
  const req = (port: number, host: string, headers: Record<string, string>) => publicRequest(port, { path: '/projects', host, headers: { accept: 'application/json', ...headers } });

  const spoof = await req(untrusted.gw.publicPort, 'evil.example', { 'x-forwarded-host': 'acme.ml.example.com' });
  t.equal(spoof.status, 421, 'an untrusted X-Forwarded-Host does not make a foreign host ours');
  const other = await req(untrusted.gw.publicPort, 'acme.ml.example.com', { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'http', 'x-forwarded-for': '6.6.6.6' });
  t.equal(other.status, 200, 'nor a host of ours foreign');
  const seen = untrusted.upstream.seen.at(-1)!.headers;
  t.equal(seen['x-forwarded-host'], 'acme.ml.example.com');
  t.equal(seen['x-forwarded-proto'], 'https');
  t.equal(seen['x-forwarded-for'], '127.0.0.1');
  const nav = await publicRequest(untrusted.gw.publicPort, { path: '/projects', host: 'acme.ml.example.com', headers: { ...Object.fromEntries(NAV), 'x-forwarded-host': 'evil.example' } });
  t.equal(nav.headers.location, '/login/acme?redirect=%2Fprojects', 'the vanity redirect ignores it');

  // The same headers from a trusted proxy are honoured: the assertions above can tell.
  const honoured = await req(trusted.gw.publicPort, 'evil.example', { 'x-forwarded-host': 'acme.ml.example.com', 'x-forwarded-for': '6.6.6.6' });
  t.equal(honoured.status, 200, 'a trusted proxy may name the host');
  t.equal(trusted.upstream.seen.at(-1)!.headers['x-forwarded-host'], 'acme.ml.example.com');
  t.match(String(trusted.upstream.seen.at(-1)!.headers['x-forwarded-for']), /6\.6\.6\.6/);
});

t.test('authenticate mode: a session cookie planted before the login is replaced, never adopted', async (t) => {
  const s = stacks.authenticate.tt;
  const other = await s.login('bob');
  const planted: Array<[string, string]> = [
    ['a forged id', 'A'.repeat(43)],
    ["another user's session", other.browser.cookies.get('tg_session')!],
  ];
  for (const [what, value] of planted) {
    const browser = new Browser();
    browser.cookies.set('tg_session', value);
    const start = await s.req({ path: '/login/acme', host: 'acme.ml.example.com' }, browser);
    t.equal(start.status, 302, `${what}: the login starts`);
    const cb = new URL((await loginAtIdp(start.headers.location!, 'alice')).callbackUrl);
    const done = await s.req({ path: cb.pathname + cb.search, host: cb.host }, browser);
    t.equal(done.status, 302, `${what}: and completes`);
    const issued = browser.cookies.get('tg_session');
    t.ok(issued && issued !== value, `${what}: with a session id of its own`);
    const planted = await s.req({ path: '/projects', host: 'acme.ml.example.com', headers: { accept: 'application/json', cookie: `tg_session=${value}` } });
    t.equal(planted.status, 401, `${what}: the planted id signs nobody in afterwards`);
    await s.req({ path: '/projects', host: 'acme.ml.example.com', headers: { accept: 'application/json' } }, browser);
    t.equal(s.upstream.seen.at(-1)?.headers['x-auth-request-user'], 'alice@acme.com', `${what}: the browser is signed in as the user who logged in`);
  }
});
