import t from 'tap';
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { twoTenants } from '../helpers/two-tenants.js';

const NAV = { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };
const TRUSTED = { public: { host: '127.0.0.1', port: 0, url: 'http://ml.example.com', trustedProxies: ['127.0.0.1'] }, log: { level: 'info' } };

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A request over a real connection, from `localAddress` (127.0.0.2 is not a trusted proxy). */
function request(port: number, o: { path: string; method?: string; headers: Record<string, string>; localAddress?: string }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: o.path, method: o.method ?? 'GET', headers: o.headers, setHost: false, agent: false, localAddress: o.localAddress ?? '127.0.0.1' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The headers that describe the answer itself (not the connection). */
function answerHeaders(h: IncomingHttpHeaders | OutgoingHttpHeaders): Record<string, unknown> {
  const { date: _d, connection: _c, 'keep-alive': _k, ...rest } = h;
  return rest;
}

const nginx = (host: string, uri: string, extra: Record<string, string> = {}) => ({ host, 'x-original-uri': uri, 'x-original-method': 'GET', 'x-forwarded-proto': 'http', ...extra });
const caddy = (host: string, uri: string, extra: Record<string, string> = {}) => ({ host: '127.0.0.1', 'x-forwarded-host': host, 'x-forwarded-uri': uri, 'x-forwarded-method': 'GET', 'x-forwarded-proto': 'http', ...extra });

t.test('over a real connection the header-described endpoints answer exactly what their routes answer', async (t) => {
  const s = await twoTenants(t, TRUSTED);
  const cookie = (await s.login('alice')).browser.header()!;
  const cases: { what: string; path: string; headers: Record<string, string> }[] = [
    { what: 'nginx, a session', path: '/_auth/auth-request', headers: nginx('acme.ml.example.com', '/projects', { cookie }) },
    { what: 'nginx, a navigation without a session', path: '/_auth/auth-request', headers: nginx('acme.ml.example.com', '/projects/7?tab=1', NAV) },
    { what: 'nginx, a script without a session', path: '/_auth/auth-request', headers: nginx('acme.ml.example.com', '/api/x', { accept: 'application/json' }) },
    { what: 'nginx, an unknown host', path: '/_auth/auth-request', headers: nginx('nope.example.org', '/') },
    { what: 'nginx, a malformed callback', path: '/_auth/auth-request', headers: nginx('acme.ml.example.com', '/callback_acme-web?nothing=1', NAV) },
    { what: 'nginx, dot segments', path: '/_auth/auth-request', headers: nginx('acme.ml.example.com', '/login/%2e%2E/projects/x', NAV) },
    { what: 'nginx, no describing headers', path: '/_auth/auth-request', headers: { host: 'acme.ml.example.com', cookie } },
    { what: 'forward-auth, a session, the endpoint\'s own query', path: '/_auth/forward-auth?x=1', headers: caddy('acme.ml.example.com', '/projects', { cookie }) },
    { what: 'forward-auth, a cross-tenant session', path: '/_auth/forward-auth', headers: caddy('globex.ml.example.com', '/projects', { cookie, ...NAV }) },
    { what: 'forward-auth, an unknown host', path: '/_auth/forward-auth', headers: caddy('nope.example.org', '/') },
    { what: 'forward-auth, an unsafe redirect parameter', path: '/_auth/forward-auth', headers: caddy('acme.ml.example.com', '/x?redirect=%2F%2Fevil.com', { cookie, accept: 'application/json' }) },
  ];
  for (const c of cases) {
    const routed = await s.gateway.public.inject({ method: 'GET', url: c.path, headers: c.headers, remoteAddress: '127.0.0.1' });
    const fast = await request(s.publicPort, { path: c.path, headers: c.headers });
    t.equal(fast.status, routed.statusCode, `${c.what}: status ${routed.statusCode}`);
    t.same(answerHeaders(fast.headers), answerHeaders(routed.headers), `${c.what}: the same headers`);
    t.equal(fast.body, routed.body, `${c.what}: the same body`);
    t.ok(fast.headers['content-length'], `${c.what}: Content-Length`);
  }

  const head = await request(s.publicPort, { path: '/_auth/auth-request', method: 'HEAD', headers: nginx('acme.ml.example.com', '/projects', { cookie }) });
  t.equal(head.status, 200, 'HEAD is answered like GET');
  t.equal(head.headers['x-auth-request-user'], 'alice@acme.com');
  t.equal(head.body, '', 'without a body');

  const untrusted = await request(s.publicPort, { path: '/_auth/auth-request', headers: nginx('acme.ml.example.com', '/projects', { cookie }), localAddress: '127.0.0.2' });
  t.equal(untrusted.status, 403, 'a peer outside trustedProxies is refused');
  t.equal(untrusted.headers['x-auth-request-user'], undefined);
  const untrustedFwd = await request(s.publicPort, { path: '/_auth/forward-auth', headers: caddy('acme.ml.example.com', '/projects', { cookie }), localAddress: '127.0.0.2' });
  t.equal(untrustedFwd.status, 403);

  const post = await request(s.publicPort, { path: '/_auth/auth-request', method: 'POST', headers: nginx('acme.ml.example.com', '/projects', { accept: 'application/json' }) });
  t.equal(post.status, 401, 'another method is an ordinary request on the described host: no session, no entry');
  t.equal(post.headers['x-auth-request-user'], undefined);
  const slash = await request(s.publicPort, { path: '/_auth/auth-request/', headers: nginx('acme.ml.example.com', '/projects', { accept: 'application/json' }) });
  t.equal(slash.status, 401, 'so is another path');
  t.equal(s.upstream.seen.length, 0, 'nothing reached the upstream');

  const lines = s.logs.lines.map((l) => JSON.parse(l) as { msg?: string; reqId?: string; req?: { url?: string }; res?: { statusCode?: number }; responseTime?: number; peer?: string });
  const incoming = lines.filter((l) => l.msg === 'incoming request' && l.req?.url === '/_auth/forward-auth?x=1');
  t.equal(incoming.length, 2, 'each answer is logged like any request at info (once injected, once over the connection)');
  for (const line of incoming) {
    const done = lines.find((l) => l.msg === 'request completed' && l.reqId === line.reqId);
    t.equal(done?.res?.statusCode, 200, 'with its status');
    t.type(done?.responseTime, 'number');
  }
  t.equal(new Set(incoming.map((l) => l.reqId)).size, 2, 'under distinct request ids');
  t.ok(lines.some((l) => l.msg === 'forward-auth request from an untrusted address refused' && l.peer === '127.0.0.2'), 'an untrusted peer is logged');
  t.notMatch(s.logs.text(), cookie.split('=')[1]!, 'the session cookie is never logged');

  const metrics = await fetch(`${s.adminUrl}/metrics`).then((r) => r.text());
  const counted = /tenant_gate_request_duration_seconds_count\{class="forward_auth",tenant="none"\} (\d+)/.exec(metrics);
  t.equal(Number(counted?.[1]), 2 * cases.length + 3, 'every answer, injected or not, is counted in the request histogram as forward_auth');
});

t.test('over a real connection the client address is the one the trusted proxy forwards', async (t) => {
  const s = await twoTenants(t, { ...TRUSTED, rateLimit: { loginPerMinute: 2 } });
  const login = (client: string) =>
    request(s.publicPort, { path: '/_auth/auth-request', headers: nginx('acme.ml.example.com', '/login/acme', { ...NAV, 'x-forwarded-for': client }) });
  t.equal((await login('203.0.113.7')).status, 401, 'a login start: sign in at the gateway');
  t.equal((await login('203.0.113.7')).status, 401);
  t.equal((await login('203.0.113.7')).status, 403, 'the third login start of one client within a minute is refused');
  const other = await login('203.0.113.8');
  t.equal(other.status, 401, 'another client forwarded by the same proxy has its own limit');
  t.equal(other.headers['x-auth-request-redirect'], 'http://acme.ml.example.com/login/acme');
});
