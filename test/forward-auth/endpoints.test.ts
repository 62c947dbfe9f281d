import t from 'tap';
import { publicRequest, seedRouteTenants, startGateway, startUpstream } from '../helpers/gateway.js';
import { twoTenants } from '../helpers/two-tenants.js';
import { FORWARD_IDENTITY_HEADERS } from '../../src/forward-auth/translate.js';

const NAV = { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };
const TRUSTED = { public: { host: '127.0.0.1', port: 0, url: 'http://ml.example.com', trustedProxies: ['127.0.0.1'] } };

type Inject = { url: string; method?: string; headers?: Record<string, string>; remoteAddress?: string };

/** What nginx's auth_request sends for a request it proxies. */
function nginx(host: string, uri: string, extra: Record<string, string> = {}, method = 'GET'): Record<string, string> {
  return { host, 'x-original-uri': uri, 'x-original-method': method, 'x-forwarded-proto': 'http', ...extra };
}
/** What Caddy's forward_auth and Traefik send. */
function caddy(host: string, uri: string, extra: Record<string, string> = {}, method = 'GET'): Record<string, string> {
  return { host: '127.0.0.1', 'x-forwarded-host': host, 'x-forwarded-uri': uri, 'x-forwarded-method': method, 'x-forwarded-proto': 'http', ...extra };
}

t.test('authenticate mode: every family, with and without a session', async (t) => {
  const s = await twoTenants(t, TRUSTED);
  const inject = (o: Inject) => s.gateway.public.inject({ method: (o.method ?? 'GET') as 'GET', url: o.url, headers: o.headers ?? {}, remoteAddress: o.remoteAddress ?? '127.0.0.1' });

  const nav = await inject({ url: '/_auth/auth-request', headers: nginx('acme.ml.example.com', '/projects/7?tab=1', NAV) });
  t.equal(nav.statusCode, 401, 'nginx: a navigation without a session is 401');
  t.equal(nav.headers['x-auth-request-redirect'], 'http://acme.ml.example.com/login/acme?redirect=%2Fprojects%2F7%3Ftab%3D1', 'with the tenant login on the described host');
  t.equal(nav.headers['cache-control'], 'no-store');
  t.ok(nav.headers['content-length'], 'Content-Length on every answer');
  const xhr = await inject({ url: '/_auth/auth-request', headers: nginx('acme.ml.example.com', '/api/x', { accept: 'application/json' }) });
  t.equal(xhr.statusCode, 401);
  t.equal(xhr.headers['x-auth-request-redirect'], undefined, 'no redirect target for a script request');

  const fwd = await inject({ url: '/_auth/forward-auth?x=1', headers: caddy('acme.ml.example.com:8443', '/projects', NAV) });
  t.equal(fwd.statusCode, 302, 'forward-auth: 302 for a navigation (the endpoint\'s own query ignored)');
  t.equal(fwd.headers.location, 'http://acme.ml.example.com:8443/login/acme?redirect=%2Fprojects', 'port kept as given');
  const fwdXhr = await inject({ url: '/_auth/forward-auth', headers: caddy('acme.ml.example.com', '/x', { accept: 'application/json' }) });
  t.equal(fwdXhr.statusCode, 401);
  t.ok(fwdXhr.headers['content-length']);

  const dots = await inject({ url: '/_auth/forward-auth', headers: caddy('acme.ml.example.com', '/login/../projects/x', NAV) });
  t.equal(dots.headers.location, 'http://acme.ml.example.com/login/acme?redirect=%2Fprojects%2Fx', '/login/../projects/x is /projects/x, not a login');
  const encodedDots = await inject({ url: '/_auth/auth-request', headers: nginx('acme.ml.example.com', '/login/%2e%2E/projects/x', NAV) });
  t.equal(encodedDots.headers['x-auth-request-redirect'], 'http://acme.ml.example.com/login/acme?redirect=%2Fprojects%2Fx');

  const alice = await s.login('alice');
  const cookie = alice.browser.header()!;
  const ok = await inject({ url: '/_auth/auth-request', headers: nginx('acme.ml.example.com', '/projects', { cookie }) });
  t.equal(ok.statusCode, 200, 'a session passes');
  for (const name of FORWARD_IDENTITY_HEADERS) t.type(ok.headers[name], 'string', `${name} present`);
  t.equal(ok.headers['x-auth-request-user'], 'alice@acme.com');
  t.equal(ok.headers['x-auth-request-tenant'], 'acme');
  t.equal(ok.headers['x-auth-request-groups'], 'Admins,Users');
  t.equal(ok.headers['x-auth-request-admin'], 'true');
  t.match(ok.headers['x-auth-request-jwt'], /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/, 'the signed assertion, as the built-in proxy sends it');
  t.equal(ok.headers['x-auth-request-subject'], 'alice');
  t.equal(ok.headers['content-length'], '0');
  t.equal(ok.headers['cache-control'], 'no-store', 'not cacheable with cacheSeconds 0');
  t.equal(ok.headers['set-cookie'], undefined);

  const envoy = await inject({ url: '/_auth/ext-authz/projects/7?tab=1', method: 'POST', headers: { host: 'acme.ml.example.com', cookie, 'content-type': 'application/json', 'x-forwarded-proto': 'http' } });
  t.equal(envoy.statusCode, 200, 'Envoy: the original method and path follow the prefix');
  t.equal(envoy.headers['x-auth-request-user'], 'alice@acme.com');
  const envoyNav = await inject({ url: '/_auth/ext-authz/projects', headers: { host: 'acme.ml.example.com', 'x-forwarded-proto': 'http', ...NAV } });
  t.equal(envoyNav.statusCode, 302);
  t.equal(envoyNav.headers.location, 'http://acme.ml.example.com/login/acme?redirect=%2Fprojects');

  const cross = await inject({ url: '/_auth/forward-auth', headers: caddy('globex.ml.example.com', '/projects', { cookie, ...NAV }) });
  t.equal(cross.statusCode, 302, 'an acme session is refused on a globex host');
  t.equal(cross.headers.location, 'http://globex.ml.example.com/login/globex?redirect=%2Fprojects');

  const untrusted = await inject({ url: '/_auth/auth-request', headers: nginx('acme.ml.example.com', '/projects', { cookie }), remoteAddress: '10.1.2.3' });
  t.equal(untrusted.statusCode, 403, 'describing headers from an untrusted address are refused');
  t.equal(untrusted.headers['x-auth-request-user'], undefined);
  const untrustedFwd = await inject({ url: '/_auth/forward-auth', headers: caddy('acme.ml.example.com', '/projects', { cookie }), remoteAddress: '10.1.2.3' });
  t.equal(untrustedFwd.statusCode, 403);

  const unknown = await inject({ url: '/_auth/auth-request', headers: nginx('nope.example.org', '/') });
  t.equal(unknown.statusCode, 403, 'nginx: an unknown host is a 403');
  const unknownFwd = await inject({ url: '/_auth/forward-auth', headers: caddy('nope.example.org', '/') });
  t.equal(unknownFwd.statusCode, 421, 'forward-auth: the built-in proxy\'s 421 page');
  const missing = await inject({ url: '/_auth/auth-request', headers: { host: 'acme.ml.example.com' } });
  t.equal(missing.statusCode, 403, 'no describing headers: 403');
  const otherFamily = await inject({ url: '/_auth/auth-request', headers: { host: 'acme.ml.example.com', 'x-forwarded-uri': '/', 'x-forwarded-method': 'GET', cookie } });
  t.equal(otherFamily.statusCode, 403, 'another family\'s headers are not read');

  const login = await inject({ url: '/_auth/auth-request', headers: nginx('acme.ml.example.com', '/login/acme', NAV) });
  t.equal(login.statusCode, 401);
  t.equal(login.headers['x-auth-request-redirect'], 'http://acme.ml.example.com/login/acme', 'a login start goes to the gateway path itself');
  const logout = await inject({ url: '/_auth/forward-auth', headers: caddy('acme.ml.example.com', '/logout', { cookie, ...NAV }) });
  t.equal(logout.statusCode, 302);
  t.equal(logout.headers.location, 'http://acme.ml.example.com/logout');
  const badCallback = await inject({ url: '/_auth/auth-request', headers: nginx('acme.ml.example.com', '/callback_acme-web?nothing=1', NAV) });
  t.equal(badCallback.statusCode, 403, 'a malformed callback is refused');
  const unsafe = await inject({ url: '/_auth/forward-auth', headers: caddy('acme.ml.example.com', '/x?redirect=%2F%2Fevil.com', { cookie, accept: 'application/json' }) });
  t.equal(unsafe.statusCode, 400, 'an unsafe redirect parameter the proxy cannot drop is refused');

  const direct = await s.req({ path: '/_auth/forward-auth', host: 'unknown.example.org' });
  t.equal(direct.status, 403, 'the endpoint is answered before the auth request\'s own Host is resolved');
  t.equal(s.upstream.seen.length, 0, 'nothing reached the upstream');
});

t.test('authenticate mode with cacheSeconds: only a session\'s 200 is cacheable', async (t) => {
  const s = await twoTenants(t, { ...TRUSTED, forwardAuth: { cacheSeconds: 5 } });
  const inject = (headers: Record<string, string>) => s.gateway.public.inject({ method: 'GET', url: '/_auth/auth-request', headers, remoteAddress: '127.0.0.1' });
  const alice = await s.login('alice');
  const ok = await inject(nginx('acme.ml.example.com', '/p', { cookie: alice.browser.header()! }));
  t.equal(ok.statusCode, 200);
  t.equal(ok.headers['cache-control'], 'max-age=5');
  const no = await inject(nginx('acme.ml.example.com', '/p', NAV));
  t.equal(no.headers['cache-control'], 'no-store');
});

t.test('route mode: 200 without identity headers, vanity login, callback validation', async (t) => {
  const upstream = await startUpstream(t);
  const gw = await startGateway(t, { ...TRUSTED, public: { ...TRUSTED.public, url: 'https://ml.example.com' }, upstreams: { webapp: upstream.url }, sso: { tenant_login: true }, forwardAuth: { path: '/_gate' } });
  await seedRouteTenants(gw.adminUrl);
  const inject = (url: string, headers: Record<string, string>) => gw.gateway.public.inject({ method: 'GET', url, headers, remoteAddress: '127.0.0.1' });
  const caddyHttps = (host: string, uri: string, extra: Record<string, string> = {}) => ({ ...caddy(host, uri, extra), 'x-forwarded-proto': 'https' });
  const withCookie = await inject('/_gate/forward-auth', caddyHttps('acme.ml.example.com', '/projects', { cookie: 'clearml_token_basic=abc', ...NAV }));
  t.equal(withCookie.statusCode, 200);
  t.equal(withCookie.headers['x-auth-request-user'], undefined, 'no identity headers in route mode');
  const vanity = await inject('/_gate/forward-auth', caddyHttps('acme.ml.example.com', '/projects', NAV));
  t.equal(vanity.statusCode, 302);
  t.equal(vanity.headers.location, 'https://acme.ml.example.com/login/acme?redirect=%2Fprojects');
  const login = await inject('/_gate/forward-auth', caddyHttps('ml.example.com', '/login'));
  t.equal(login.statusCode, 200, 'the email discovery is open');
  const cb = await inject('/_gate/forward-auth', caddyHttps('acme.ml.example.com', '/callback_globex-webapp?code=a&state=b'));
  t.equal(cb.statusCode, 400, 'another tenant\'s callback is refused');
  const old = await publicRequest(gw.publicPort, { path: '/_auth/forward-auth', host: 'acme.ml.example.com', headers: { ...caddyHttps('acme.ml.example.com', '/projects'), host: 'acme.ml.example.com' } });
  t.match(old.body, /"upstream":true/, 'the default prefix is an ordinary path when another is configured');
});

t.test('the directory down: 503 for nginx and forward-auth, never a pass', async (t) => {
  const { StoreUnavailableError } = await import('../../src/errors.js');
  const upstream = await startUpstream(t);
  const gw = await startGateway(t, { ...TRUSTED, upstreams: { webapp: upstream.url } });
  await seedRouteTenants(gw.adminUrl);
  const inner = gw.gateway.directory as unknown as { tenantByHost: (h: string) => Promise<string | undefined> };
  inner.tenantByHost = async () => {
    throw new StoreUnavailableError(new Error('connection refused'));
  };
  const inject = (url: string, headers: Record<string, string>) => gw.gateway.public.inject({ method: 'GET', url, headers, remoteAddress: '127.0.0.1' });
  const n = await inject('/_auth/auth-request', nginx('ml.acme.com', '/projects'));
  t.equal(n.statusCode, 503, 'nginx: 503 when the directory is unreachable');
  t.ok(n.headers['retry-after']);
  const f = await inject('/_auth/forward-auth', caddy('ml.acme.com', '/projects'));
  t.equal(f.statusCode, 503);
});
