import t from 'tap';
import { readFileSync } from 'node:fs';
import { adminCall, publicRequest, seedRouteTenants, startGateway, startUpstream } from '../helpers/gateway.js';

type Test = import('tap').Test;
const NAV = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };

async function setup(t: Test, overrides: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}) {
  const upstream = await startUpstream(t);
  const api = await startUpstream(t);
  const gw = await startGateway(t, { upstreams: { webapp: upstream.url, apiserver: api.url, timeoutMs: 1500 }, ...overrides }, { env });
  const { put, provider } = await seedRouteTenants(gw.adminUrl);
  const req = (o: Parameters<typeof publicRequest>[1]) => publicRequest(gw.publicPort, o);
  return { ...gw, upstream, api, req, put, provider };
}

t.test('hosts: base proxied, unknown and malformed refused, vanity and custom resolved', async (t) => {
  const s = await setup(t);
  const base = await s.req({ path: '/projects?x=1', headers: { accept: 'application/json' } });
  t.equal(base.status, 200);
  const seen = JSON.parse(base.body) as { url: string; headers: Record<string, string> };
  t.equal(seen.url, '/projects?x=1');
  t.equal(seen.headers['x-forwarded-host'], 'ml.example.com');
  t.equal(seen.headers['x-forwarded-proto'], 'https');

  const count = s.upstream.seen.length;
  for (const host of ['evil.com', 'nobody.ml.example.com', 'a.b.ml.example.com', 'ml.example.com.evil.com']) {
    const r = await s.req({ path: '/', host });
    t.equal(r.status, 421, `${host} refused`);
    t.match(r.headers['content-type'], /text\/html/);
  }
  for (const host of ['bad host', 'a..b', 'x@ml.example.com', '']) {
    const r = await s.req({ path: '/', host });
    t.ok(r.status === 400, `malformed ${JSON.stringify(host)} refused with 400 (got ${r.status})`);
  }
  t.equal(s.upstream.seen.length, count, 'nothing refused reached the upstream');

  for (const host of ['acme.ml.example.com', 'ACME.ML.Example.COM.:8443', 'ml.acme.com', 'globex.ml.example.com']) {
    const r = await s.req({ path: '/x', host, headers: { accept: 'application/json' } });
    t.equal(r.status, 200, `${host} proxied`);
  }
});

t.test('vanity redirect for page navigations without a session only', async (t) => {
  const s = await setup(t);
  const r = await s.req({ path: '/projects/1?tab=a', host: 'acme.ml.example.com', headers: NAV });
  t.equal(r.status, 302);
  t.equal(r.headers.location, '/login/acme?redirect=%2Fprojects%2F1%3Ftab%3Da');
  const root = await s.req({ path: '/', host: 'ml.acme.com', headers: { accept: 'text/html' } });
  t.equal(root.headers.location, '/login/acme', 'custom host, root path, Accept-based detection');
  const globex = await s.req({ path: '/', host: 'globex.ml.example.com', headers: NAV });
  t.equal(globex.headers.location, '/login/Globex');
  const unsafe = await s.req({ path: '//evil.com/x', host: 'acme.ml.example.com', headers: NAV });
  t.equal(unsafe.status, 302);
  t.equal(unsafe.headers.location, '/login/acme', 'an unsafe original path is not kept');

  const before = s.upstream.seen.length;
  const cases: Array<[string, Record<string, string>]> = [
    ['/projects', { ...NAV, cookie: 'other=1; clearml_token_basic=abc' }],
    ['/main.js', { accept: '*/*', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'script' }],
    ['/data', { accept: 'application/json', 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty' }],
    ['/page', { accept: 'text/html', 'x-requested-with': 'XMLHttpRequest' }],
    ['/api/v2.31/projects.get_all', NAV],
    ['/frame', { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'iframe' }],
  ];
  for (const [path, headers] of cases) {
    const res = await s.req({ path, host: 'acme.ml.example.com', headers });
    t.equal(res.status, 200, `${path} ${JSON.stringify(headers)} is proxied`);
  }
  t.equal(s.upstream.seen.length + s.api.seen.length - before, cases.length);
  const baseNav = await s.req({ path: '/projects', headers: NAV });
  t.equal(baseNav.status, 200, 'the base host never redirects to a tenant');
  const emptyCookie = await s.req({ path: '/p', host: 'acme.ml.example.com', headers: { ...NAV, cookie: 'clearml_token_basic=' } });
  t.equal(emptyCookie.status, 302, 'an empty session cookie is no session');
});

t.test('/login/<tenant> and /login on tenant hosts', async (t) => {
  const s = await setup(t);
  const ok = await s.req({ path: '/login/ACME?redirect=/projects', headers: NAV });
  t.equal(ok.status, 200);
  t.equal((JSON.parse(ok.body) as { url: string }).url, '/login/ACME?redirect=/projects', 'known tenant proxied as is');
  const before = s.upstream.seen.length;
  for (const path of ['/login/nobody', '/login/a%2Fb', '/login/acme/extra', '/login//acme', '/login/..', '/LOGIN/nobody', '/login/%00']) {
    const r = await s.req({ path, headers: NAV });
    t.equal(r.status, 404, `${path} -> 404`);
  }
  const other = await s.req({ path: '/login/globex', host: 'acme.ml.example.com', headers: NAV });
  t.equal(other.status, 404, "another tenant's login on a tenant host");
  t.equal(s.upstream.seen.length, before, 'none of them reached the webapp');
  const bare = await s.req({ path: '/login?redirect=%2Fp', host: 'acme.ml.example.com', headers: NAV });
  t.equal(bare.status, 302);
  t.equal(bare.headers.location, '/login/acme?redirect=%2Fp');
  const seenBefore = s.upstream.seen.length;
  const cleaned = await s.req({ path: '/login/acme?redirect=//evil.com&x=1', headers: NAV });
  t.equal(cleaned.status, 303, 'a page navigation with an unsafe redirect is sent back without it');
  t.equal(cleaned.headers.location, '/login/acme?x=1', 'the rest of the query is kept');
  t.equal(s.upstream.seen.length, seenBefore, 'the webapp never saw the unsafe address');
  const dropped = await s.req({ path: '/login/acme?redirect=//evil.com&x=1' });
  t.equal((JSON.parse(dropped.body) as { url: string }).url, '/login/acme?x=1', 'unsafe redirect dropped before the webapp');
});

t.test('email discovery', async (t) => {
  const s = await setup(t);
  const page = await s.req({ path: '/login', headers: NAV });
  t.equal(page.status, 200);
  t.match(page.body, /<label for="email">/);
  t.match(page.headers['content-security-policy'], /frame-ancestors 'none'/);
  t.equal(page.headers['x-content-type-options'], 'nosniff');
  const post = (email: string, extra = '') =>
    s.req({ path: '/login', method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `email=${encodeURIComponent(email)}${extra}` });
  const found = await post('  Alice@ACME.com ');
  t.equal(found.status, 303);
  t.equal(found.headers.location, '/login/acme?login_hint=Alice%40ACME.com');
  const withRedirect = await post('bob@globex.com', '&redirect=%2Fprojects');
  t.equal(withRedirect.headers.location, '/login/Globex?login_hint=bob%40globex.com&redirect=%2Fprojects');
  const unknown = await post('carol@initech.com');
  const malformed = await post('not-an-email');
  const evil = await post('x@acme.com@evil.com');
  const emails = ['carol@initech.com', 'not-an-email', 'x@acme.com@evil.com'];
  const shapes = [unknown, malformed, evil].map((r, i) => {
    t.equal(r.status, 200);
    t.match(r.body, /could not find single sign-on/);
    return r.body.replace(emails[i]!, 'EMAIL');
  });
  t.equal(shapes[0], shapes[1], 'unknown and malformed emails get the same page');
  t.equal(shapes[0], shapes[2], 'an email naming a known domain in a bad way gets the same page');
  t.notMatch(shapes[0], /acme|globex/i, 'no tenant named');
  const onTenantHost = await s.req({ path: '/login', host: 'acme.ml.example.com', headers: NAV });
  t.equal(onTenantHost.headers.location, '/login/acme');
  t.equal(s.upstream.seen.length, 0, 'discovery never reaches the webapp');
});

t.test('email discovery is rate limited per client', async (t) => {
  const s = await setup(t, { rateLimit: { discoveryPerMinute: 3 } });
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await s.req({ path: '/login', method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'email=a@b.com' });
    statuses.push(r.status);
    if (r.status === 429) t.ok(r.headers['retry-after'], 'Retry-After on 429');
  }
  t.same(statuses, [200, 200, 200, 429, 429]);
});

t.test('callbacks: only well-formed callbacks of known clients of the right tenant pass', async (t) => {
  const s = await setup(t);
  const good = await s.req({ path: '/callback_acme-webapp?code=abc&state=xyz&session_state=s1&iss=https%3A%2F%2Fkc', host: 'acme.ml.example.com' });
  t.equal(good.status, 200);
  t.equal((JSON.parse(good.body) as { url: string }).url, '/callback_acme-webapp?code=abc&state=xyz&session_state=s1&iss=https%3A%2F%2Fkc');
  t.equal((await s.req({ path: '/callback_acme-webapp?error=access_denied&error_description=no&state=xyz' })).status, 200, 'error callbacks on the base host');
  t.equal((await s.req({ path: '/callback_globex-webapp?code=a&state=b', host: 'globex.ml.example.com' })).status, 200);
  const google = '/callback_acme-webapp?state=xyz&code=4%2F0Ab&scope=email+openid+https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fuserinfo.email&authuser=0&hd=acme.com&prompt=consent';
  const passed = await s.req({ path: google, host: 'acme.ml.example.com' });
  t.equal(passed.status, 200, "Google's extra parameters are accepted");
  t.equal((JSON.parse(passed.body) as { url: string }).url, google, 'and passed on to the webapp as sent');

  const before = s.upstream.seen.length;
  const refused: Array<[string, string, string?]> = [
    ['/callback_globex-webapp?code=a&state=b', 'wrong_tenant', 'acme.ml.example.com'],
    ['/callback_acme-webapp?code=a&state=b', 'wrong_tenant', 'ml.acme.com'.replace('ml.acme.com', 'globex.ml.example.com')],
    ['/callback_unknown?code=a&state=b', 'unknown_client'],
    ['/callback_acme-webapp?code=a', 'missing_state'],
    ['/callback_acme-webapp?state=a', 'missing_code'],
    ['/callback_acme-webapp?code=a&code=b&state=c', 'duplicate_param'],
    ['/callback_acme-webapp?code=a&state=b&redirect=//evil.com', 'unknown_param'],
    ['/callback_acme-webapp?code=a&error=x&state=b', 'both_code_and_error'],
    ['/callback_acme-webapp', 'missing_state'],
    ['/callback_acme%2Fwebapp?code=a&state=b', 'encoded_separator'],
    ['/callback_acme-webapp/x?code=a&state=b', 'bad_path'],
    ['/./callback_acme-webapp?code=a&state=b', 'dot_segment'],
    ['/x/../callback_acme-webapp?code=a&state=b', 'dot_segment'],
    ['//callback_acme-webapp?code=a&state=b', 'double_slash'],
    ['/CALLBACK_acme-webapp?code=a&state=b', 'bad_path'],
    ['/%63allback_acme-webapp?code=a&state=b', 'bad_path'],
    [`/callback_acme-webapp?code=${'a'.repeat(3000)}&state=b`, 'too_long'],
  ];
  for (const [path, reason, host] of refused) {
    const r = await s.req({ path, ...(host ? { host } : {}) });
    t.equal(r.status, 400, `${path.slice(0, 60)} on ${host ?? 'base'} -> 400`);
    t.match(r.body, /Back to sign-in/);
    void reason;
  }
  t.equal((await s.req({ path: '/callback_acme-webapp?code=a&state=b', method: 'PUT' })).status, 400, 'other methods refused');
  t.equal(s.upstream.seen.length, before, 'the upstream never saw a refused callback');
  const metrics = await (await fetch(`${s.adminUrl}/metrics`)).text();
  for (const reason of ['wrong_tenant', 'unknown_client', 'missing_state', 'duplicate_param', 'encoded_separator', 'dot_segment']) {
    t.match(metrics, new RegExp(`tenant_gate_callback_refused_total\\{reason="${reason}"`), `metric for ${reason}`);
  }
});

t.test('form_post callbacks: the body is validated and passed on intact', async (t) => {
  const s = await setup(t);
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  const ok = await s.req({ path: '/callback_acme-webapp', method: 'POST', host: 'acme.ml.example.com', headers: form, body: 'code=abc&state=xyz' });
  t.equal(ok.status, 200);
  t.equal((JSON.parse(ok.body) as { body: string }).body, 'code=abc&state=xyz');
  const before = s.upstream.seen.length;
  const bad = [
    { headers: form, body: 'code=abc' },
    { headers: form, body: 'code=a&state=b&redirect_uri=https%3A%2F%2Fevil.example' },
    { headers: { 'content-type': 'application/json' }, body: '{"code":"a","state":"b"}' },
  ];
  for (const b of bad) {
    const r = await s.req({ path: '/callback_acme-webapp', method: 'POST', ...b });
    t.equal(r.status, 400, `${b.body} refused`);
  }
  t.equal(s.upstream.seen.length, before);
});

t.test('unsafe redirect parameters are dropped before the webapp; safe ones kept', async (t) => {
  const s = await setup(t);
  const cases: Array<[string, string]> = [
    ['/a?redirect=%2F%2Fevil.com&x=1', '/a?x=1'],
    ['/a?x=1&redirect=https://evil.com', '/a?x=1'],
    ['/a?redirect=/ok&redirect=/ok2', '/a'],
    ['/a?redirect=%2Fprojects%3Fa%3D1&y=%20z', '/a?redirect=%2Fprojects%3Fa%3D1&y=%20z'],
    ['/a?redirect=/%5Cevil.com', '/a'],
  ];
  for (const [path, expected] of cases) {
    const r = await s.req({ path, headers: { accept: 'application/json' } });
    t.equal((JSON.parse(r.body) as { url: string }).url, expected, path);
  }
});

t.test('/api/* goes to the apiserver with /api stripped; bodies and methods kept', async (t) => {
  const s = await setup(t);
  const r = await s.req({ path: '/api/v2.31/projects.get_all?x=1', method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
  t.equal(r.status, 200);
  const seen = s.api.seen.at(-1)!;
  t.equal(seen.url, '/v2.31/projects.get_all?x=1');
  t.equal(seen.method, 'POST');
  t.equal(seen.body, '{"a":1}');
  const put = await s.req({ path: '/files/1', method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: 'raw-bytes' });
  t.equal(put.status, 200);
  t.equal(s.upstream.seen.at(-1)!.body, 'raw-bytes');
});

t.test('identity headers from clients never reach the webapp in route mode', async (t) => {
  const s = await setup(t);
  await s.req({ path: '/x', headers: { 'x-auth-request-user': 'admin', 'x-auth-request-admin': 'true', accept: 'application/json' } });
  const seen = s.upstream.seen.at(-1)!;
  t.notOk(seen.headers['x-auth-request-user']);
  t.notOk(seen.headers['x-auth-request-admin']);
});

t.test('upstream down: a quick 502 page; too slow: 504 within the timeout', async (t) => {
  const down = await startGateway(t, { upstreams: { webapp: 'http://127.0.0.1:9', connectTimeoutMs: 500 } });
  const started = Date.now();
  const r = await publicRequest(down.publicPort, { path: '/x' });
  t.equal(r.status, 502);
  t.match(r.body, /unavailable/);
  t.ok(Date.now() - started < 2000, 'fast');
  const slow = await startUpstream(t, (_req, res) => {
    setTimeout(() => res.end('late'), 3000).unref();
    return true;
  });
  const gw = await startGateway(t, { upstreams: { webapp: slow.url, timeoutMs: 300 } });
  const s2 = Date.now();
  const r2 = await publicRequest(gw.publicPort, { path: '/x' });
  t.equal(r2.status, 504);
  t.ok(Date.now() - s2 < 2000, 'within the timeout');
});

t.test('the seed flags through the environment', async (t) => {
  const off = await setup(t, {}, { CLEARML__services__login__sso__tenant_login: 'false' });
  const nav = await off.req({ path: '/p', host: 'acme.ml.example.com', headers: NAV });
  t.equal(nav.status, 200, 'no vanity redirect');
  const unknown = await off.req({ path: '/login/nobody', headers: NAV });
  t.equal(unknown.status, 200, '/login/<tenant> is an ordinary path');
  const pw = await setup(t, {}, { WEBSERVER__onlyPasswordLogin: 'true' });
  const login = await pw.req({ path: '/login', headers: NAV });
  t.equal((JSON.parse(login.body) as { upstream: boolean }).upstream, true, '/login is the webapp password login');
});

t.test('admin writes take effect at once on routing', async (t) => {
  const s = await setup(t);
  const post = (email: string) => s.req({ path: '/login', method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `email=${email}` });
  t.equal((await post('a@initech.com')).status, 200);
  t.equal((await s.req({ path: '/', host: 'initech.ml.example.com' })).status, 421);
  t.equal((await s.req({ path: '/', host: 'sso.initech.com' })).status, 421);
  await s.put('c-initech', { tenant: 'initech', domains: ['initech.com'], hosts: ['sso.initech.com'] });
  t.equal((await post('a@initech.com')).status, 303, 'new domain discovered at once');
  t.equal((await s.req({ path: '/', host: 'initech.ml.example.com', headers: NAV })).status, 302);
  t.equal((await s.req({ path: '/', host: 'sso.initech.com', headers: NAV })).status, 302);
  await s.put('c-acme', { tenant: 'acme-corp', hosts: [] });
  t.equal((await s.req({ path: '/', host: 'acme.ml.example.com' })).status, 421, 'renamed tenant gone at once');
  t.equal((await s.req({ path: '/', host: 'ml.acme.com' })).status, 421, 'removed host gone at once');
  t.equal((await s.req({ path: '/callback_acme-webapp?code=a&state=b', host: 'acme-corp.ml.example.com' })).status, 200, 'client follows the tenant');
  await adminCall(s.adminUrl, 'sso.delete_provider_configuration', { company: 'c-acme', id: 'c-acme' });
  t.equal((await s.req({ path: '/callback_acme-webapp?code=a&state=b' })).status, 400, 'deleted client refused at once');
});

t.test('probes answer on any host', async (t) => {
  const s = await setup(t);
  t.equal((await s.req({ path: '/healthz', host: '10.1.2.3:8080' })).status, 200);
  t.equal((await s.req({ path: '/readyz', host: 'whatever' })).status, 200);
});

t.test('logins and callbacks are rate limited per client address', async (t) => {
  const s = await setup(t, { rateLimit: { loginPerMinute: 2, callbackPerMinute: 2 } });
  const logins = [];
  for (let i = 0; i < 3; i++) logins.push((await s.req({ path: '/login/acme', headers: NAV })).status);
  t.same(logins, [200, 200, 429]);
  const callbacks = [];
  for (let i = 0; i < 3; i++) {
    const r = await s.req({ path: '/callback_acme-webapp?code=a&state=b' });
    callbacks.push(r.status);
    if (r.status === 429) t.ok(Number(r.headers['retry-after']) > 0, 'Retry-After');
  }
  t.same(callbacks, [200, 200, 429]);
});

t.test('X-Forwarded-Host counts only from trusted proxies', async (t) => {
  const untrusted = await setup(t);
  const r1 = await untrusted.req({ path: '/x', host: 'evil.com', headers: { 'x-forwarded-host': 'acme.ml.example.com', accept: 'application/json' } });
  t.equal(r1.status, 421, 'an untrusted client cannot pick the host');
  const r2 = await untrusted.req({ path: '/x', host: 'acme.ml.example.com', headers: { 'x-forwarded-host': 'evil.com', 'x-forwarded-for': '6.6.6.6', accept: 'application/json' } });
  t.equal(r2.status, 200);
  const seen = JSON.parse(r2.body) as { headers: Record<string, string> };
  t.equal(seen.headers['x-forwarded-host'], 'acme.ml.example.com', 'the upstream hears the real host');
  t.equal(seen.headers['x-forwarded-for'], '127.0.0.1', 'a spoofed X-Forwarded-For is not passed on');
  const trusted = await setup(t, { public: { host: '127.0.0.1', port: 0, url: 'https://ml.example.com', trustedProxies: ['127.0.0.1'] } });
  const r3 = await trusted.req({ path: '/x', host: 'internal:8080', headers: { 'x-forwarded-host': 'acme.ml.example.com', 'x-forwarded-for': '203.0.113.9', accept: 'application/json' } });
  t.equal(r3.status, 200, 'a trusted proxy names the host');
  t.equal((JSON.parse(r3.body) as { headers: Record<string, string> }).headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
});

t.test('websocket upgrades are proxied on a tenant host', async (t) => {
  const { WebSocketServer, WebSocket } = await import('ws');
  const http = await import('node:http');
  const server = http.createServer();
  const wss = new WebSocketServer({ server });
  wss.on('connection', (socket, req) => socket.on('message', (m) => socket.send(`echo:${Buffer.from(m as Buffer).toString('utf8')}:${req.url}`)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => { wss.close(); server.close(() => r()); }));
  const port = (server.address() as { port: number }).port;
  const gw = await startGateway(t, { upstreams: { webapp: `http://127.0.0.1:${port}` } });
  await adminCall(gw.adminUrl, 'system.update_company_sso_config', { company: 'c', sso: { tenant: 'acme' } });
  const ws = new WebSocket(`ws://127.0.0.1:${gw.publicPort}/socket?x=1`, { headers: { host: 'acme.ml.example.com' } });
  const reply = await new Promise<string>((resolve, reject) => {
    ws.on('open', () => ws.send('hi'));
    ws.on('message', (m) => resolve(Buffer.from(m as Buffer).toString('utf8')));
    ws.on('error', reject);
  });
  ws.close();
  t.equal(reply, 'echo:hi:/socket?x=1');
  const refused = new WebSocket(`ws://127.0.0.1:${gw.publicPort}/socket`, { headers: { host: 'evil.com' } });
  const outcome = await new Promise<string>((resolve) => {
    refused.on('open', () => resolve('open'));
    refused.on('unexpected-response', (_req, res) => resolve(String(res.statusCode)));
    refused.on('error', () => resolve('error'));
  });
  t.equal(outcome, '421', 'an unknown host cannot open a websocket');
});

/** A gateway in front of a webapp that redirects to its `to` query parameter; tenant acme exists. */
async function redirectingWebapp(t: Test) {
  const upstream = await startUpstream(t, (req, res) => {
    const target = new URL(req.url ?? '/', 'http://x').searchParams.get('to');
    if (!target) return false;
    res.writeHead(302, { location: target });
    res.end();
    return true;
  });
  const gw = await startGateway(t, { upstreams: { webapp: upstream.url } });
  await adminCall(gw.adminUrl, 'system.update_company_sso_config', { company: 'c', sso: { tenant: 'acme' } });
  return gw;
}

t.test("route mode: the webapp's logout redirects may only name allowed post-logout URIs", async (t) => {
  const gw = await redirectingWebapp(t);
  const endSession = 'https://kc.acme.com/realms/acme/protocol/openid-connect/logout?client_id=web&post_logout_redirect_uri=';
  const via = async (host: string, postLogout: string) => {
    const r = await publicRequest(gw.publicPort, { path: `/logout?to=${encodeURIComponent(endSession + encodeURIComponent(postLogout))}`, host });
    return new URL(r.headers.location!).searchParams.get('post_logout_redirect_uri');
  };
  t.equal(await via('acme.ml.example.com', 'https://acme.ml.example.com/login/acme'), 'https://acme.ml.example.com/login/acme', 'allowed: kept');
  t.equal(await via('ml.example.com', 'https://ml.example.com/login'), 'https://ml.example.com/login');
  t.equal(await via('ml.example.com', 'https://ml.example.com/login/acme'), 'https://ml.example.com/login/acme');
  for (const bad of ['https://evil.com/login', 'https://acme.ml.example.com/login/globex', 'https://acme.ml.example.com/login?next=//evil.com', 'https://acme.ml.example.com.evil.com/login']) {
    t.equal(await via('acme.ml.example.com', bad), 'https://acme.ml.example.com/login/acme', `${bad} replaced`);
  }
  const plain = await publicRequest(gw.publicPort, { path: `/x?to=${encodeURIComponent('/dashboard')}` });
  t.equal(plain.headers.location, '/dashboard', 'other redirects untouched');
});

t.test("route mode: the webapp's login redirects name the callback on the user's origin", async (t) => {
  const gw = await redirectingWebapp(t);
  const auth = (redirectUri: string) => `https://kc.acme.com/realms/acme/protocol/openid-connect/auth?client_id=web&response_type=code&redirect_uri=${encodeURIComponent(redirectUri)}`;
  const via = async (redirectUri: string) => {
    const r = await publicRequest(gw.publicPort, { path: `/login/acme?to=${encodeURIComponent(auth(redirectUri))}`, host: 'acme.ml.example.com' });
    return new URL(r.headers.location!).searchParams.get('redirect_uri');
  };
  t.equal(await via('https://acme.ml.example.com/callback_web'), 'https://acme.ml.example.com/callback_web');
  t.equal(await via('https://evil.com/callback_web'), 'https://acme.ml.example.com/callback_web');
  t.equal(await via('https://ml.example.com/callback_other'), 'https://acme.ml.example.com/callback_web');
});

t.test('/login/ with a trailing slash is the bare /login', async (t) => {
  const s = await setup(t);
  const r = await s.req({ path: '/login/', host: 'acme.ml.example.com', headers: NAV });
  t.equal(r.status, 302);
  t.equal(r.headers.location, '/login/acme');
  t.equal((await s.req({ path: '/login/acme/', headers: NAV })).status, 200, 'a trailing slash after the tenant is fine');
});

t.test("route mode: the webapp's redirects are read decoded: encoded or repeated parameter names never smuggle a URI", async (t) => {
  const gw = await redirectingWebapp(t);
  const lines = readFileSync(new URL('../fixtures/hostile-upstream-locations.txt', import.meta.url), 'utf8')
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'));
  t.ok(lines.length >= 10, 'the corpus is not truncated');
  for (const location of lines) {
    const r = await publicRequest(gw.publicPort, { path: `/login/acme?to=${encodeURIComponent(location)}`, host: 'acme.ml.example.com' });
    const sent = new URL(r.headers.location!);
    const uris = [...sent.searchParams].filter(([k]) => k === 'post_logout_redirect_uri' || k === 'redirect_uri').map(([, v]) => v);
    t.ok(uris.length > 0, `${location}: a URI is named`);
    for (const v of uris) t.ok(['https://acme.ml.example.com/login/acme', 'https://acme.ml.example.com/callback_web'].includes(v), `${location}: only the user's own origin (${v})`);
    t.notMatch(r.headers.location!, /evil/, `${location}: nothing of the hostile value reaches the browser`);
  }
});

t.test('/api is classified after it is stripped: gateway paths under /api never reach the apiserver', async (t) => {
  const s = await setup(t);
  const before = s.api.seen.length;
  const cases: Array<[string, string]> = [
    ['/api/callback_acme-webapp?code=abc&state=x&evil=1', 'acme.ml.example.com'],
    ['/api/callback_acme-webapp?code=abc&state=x', 'ml.example.com'],
    ['/api/login/globex', 'acme.ml.example.com'],
    ['/api/login/acme', 'acme.ml.example.com'],
    ['/api/login', 'ml.example.com'],
    ['/api/logout', 'ml.example.com'],
    ['/api/x/../callback_acme-webapp?code=a&state=b', 'ml.example.com'],
  ];
  for (const [path, host] of cases) {
    const r = await s.req({ path, host, headers: { accept: 'application/json' } });
    t.equal(r.status, 404, `${path} on ${host}: 404`);
  }
  t.equal(s.api.seen.length, before, 'none of them reached the apiserver');
  const ok = await s.req({ path: '/api/login.supported_modes', headers: { accept: 'application/json' } });
  t.equal(ok.status, 200, "the apiserver's own login endpoints still pass");
});
