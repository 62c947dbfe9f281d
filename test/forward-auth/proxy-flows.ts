/**
 * The flows every shipped proxy configuration must pass, run against a real proxy in
 * front of a real upstream with tenant-gate deciding (authenticate mode, two tenants).
 */
import { loginAtIdp } from '../helpers/idp.js';
import { echoWebsockets, rawRequest, websocketRoundTrip } from '../helpers/proxies.js';
import { Browser, twoTenants } from '../helpers/two-tenants.js';

type Test = import('tap').Test;

const NAV = { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };
const JSON_ACCEPT = { accept: 'application/json' };
const ACME = 'acme.ml.example.com';

/** A gateway with two tenants that believes describing headers from 127.0.0.1 only. */
export function forwardAuthTenants(t: Test) {
  return twoTenants(t, { public: { host: '127.0.0.1', port: 0, url: 'http://ml.example.com', trustedProxies: ['127.0.0.1'] }, sso: { tenant_login: true } });
}

/** Runs the flows through the proxy listening on `port`. */
export async function proxyFlows(t: Test, s: Awaited<ReturnType<typeof forwardAuthTenants>>, port: number): Promise<void> {
  const wsSeen = echoWebsockets(s.upstream.server);
  const via = async (o: { path: string; host?: string; headers?: Record<string, string>; method?: string; body?: string }, browser?: Browser) => {
    const cookie = browser?.header();
    const r = await rawRequest(port, { host: o.host ?? ACME, path: o.path, ...(o.method ? { method: o.method } : {}), ...(o.body !== undefined ? { body: o.body } : {}), headers: { ...(cookie ? { cookie } : {}), ...o.headers } });
    browser?.take(r.headers);
    return r;
  };

  const nav = await via({ path: '/projects', headers: NAV });
  t.equal(nav.status, 302, 'a navigation without a session is sent to sign in');
  t.equal(nav.headers.location, `http://${ACME}/login/acme?redirect=%2Fprojects`, 'to the tenant login on the vanity host');
  const xhr = await via({ path: '/api/things', headers: JSON_ACCEPT });
  t.equal(xhr.status, 401, 'a script request without a session gets a plain 401');
  t.equal(xhr.headers.location, undefined);
  t.equal(s.upstream.seen.length, 0, 'nothing reached the upstream without a session');

  const bob = new Browser();
  const start = await via({ path: new URL(nav.headers.location!).pathname + new URL(nav.headers.location!).search, headers: NAV }, bob);
  t.equal(start.status, 302, 'the login starts at the gateway, through the proxy');
  t.equal(new URL(start.headers.location!).origin, s.acmeIdp.issuer, "at acme's identity provider");
  const { callbackUrl } = await loginAtIdp(start.headers.location!, 'bob');
  const cb = new URL(callbackUrl);
  t.equal(cb.host, ACME);
  const done = await via({ path: cb.pathname + cb.search, headers: NAV }, bob);
  t.equal(done.status, 302, 'the callback completes at the gateway');
  t.equal(done.headers.location, '/projects', 'back where the user was going');
  t.ok([...bob.cookies.keys()].some((k) => k.endsWith('tg_session')), 'the session cookie reached the browser through the proxy');

  const spoof = {
    'X-Auth-Request-User': 'mallory@globex.com',
    'x-auth-request-tenant': 'globex',
    'X-AUTH-REQUEST-GROUPS': 'Admins',
    X_Auth_Request_Admin: 'true',
    x_auth_request_user: 'mallory@globex.com',
    'X-Auth-Request-Email': 'mallory@globex.com',
    'X-Remote-User': 'mallory',
    'X-Original-URI': '/admin',
    'X-Forwarded-Uri': '/admin',
  };
  const page = await via({ path: '/projects?tab=1', headers: { ...NAV, ...spoof } }, bob);
  t.equal(page.status, 200, 'with a session the page comes from the upstream');
  const h = s.upstream.seen.at(-1)!.headers;
  t.equal(s.upstream.seen.at(-1)!.url, '/projects?tab=1');
  t.equal(h['x-auth-request-user'], 'bob@acme.com', 'the verified identity reaches the upstream');
  t.equal(h['x-auth-request-email'], 'bob@acme.com');
  t.equal(h['x-auth-request-tenant'], 'acme');
  t.equal(h['x-auth-request-groups'], 'Users');
  t.equal(h['x-auth-request-admin'], 'false', 'a client-sent admin flag is not believed');
  t.match(h['x-auth-request-jwt'], /^eyJ/, 'the signed assertion reaches the upstream');
  t.equal(h['x-remote-user'], undefined);
  t.equal(h['x-original-uri'], undefined);
  t.equal(h['x-forwarded-uri'], undefined);
  t.same(Object.keys(h).filter((k) => k.includes('_')), [], 'no underscore spelling reaches the upstream');
  t.notMatch(String(h.cookie ?? ''), /tg_session/, "the gateway's cookie is not at the upstream");

  const other = new Browser();
  other.cookies.set('theme', 'dark');
  for (const [k, v] of bob.cookies) other.cookies.set(k, v);
  other.cookies.set('lang', 'en');
  await via({ path: '/c', headers: JSON_ACCEPT }, other);
  const kept1 = s.upstream.seen.at(-1)!.headers.cookie;
  t.equal(kept1?.replace(/\s/g, ''), 'theme=dark;lang=en', "the upstream keeps its own cookies, not the gateway's");

  const before = s.upstream.seen.length;
  const cross = await via({ path: '/projects', host: 'globex.ml.example.com', headers: JSON_ACCEPT }, bob);
  t.equal(cross.status, 401, "an acme session is refused on globex's host");
  const crossNav = await via({ path: '/projects', host: 'globex.ml.example.com', headers: NAV }, bob);
  t.equal(crossNav.headers.location, 'http://globex.ml.example.com/login/globex?redirect=%2Fprojects', "and a navigation goes to globex's login");
  t.equal(s.upstream.seen.length, before, 'the upstream saw neither');

  const dots = await via({ path: '/login/../projects/x', headers: NAV });
  t.equal(dots.status, 302, '/login/../projects/x is a protected page, not a login');
  t.equal(dots.headers.location, `http://${ACME}/login/acme?redirect=%2Fprojects%2Fx`);
  const encoded = await via({ path: '/login/%2e%2e/projects/x', headers: JSON_ACCEPT });
  t.equal(encoded.status, 401, 'encoded dot segments too');
  const dotsIn = await via({ path: '/login/../projects/x', headers: JSON_ACCEPT }, bob);
  t.equal(dotsIn.status, 200, 'and with a session it passes');

  const refused = await websocketRoundTrip(port, ACME);
  t.same(refused, { upgraded: false, status: 401 }, 'a websocket without a session is refused');
  const ws = await websocketRoundTrip(port, ACME, { cookie: bob.header()!, X_Auth_Request_User: 'mallory', 'x-auth-request-user': 'mallory' });
  t.same(ws, { upgraded: true, echoed: 'ping-through-proxy' }, 'a websocket with a session goes through');
  t.equal(wsSeen.at(-1)?.['x-auth-request-user'], 'bob@acme.com', 'with the identity');
  t.notMatch(String(wsSeen.at(-1)?.cookie ?? ''), /tg_session/, 'and without the gateway cookie');
  t.same(Object.keys(wsSeen.at(-1) ?? {}).filter((k) => k.includes('_')), []);

  const untrusted = await rawRequest(s.publicPort, {
    path: '/_auth/auth-request',
    host: ACME,
    localAddress: '127.0.0.2',
    headers: { 'x-original-uri': '/projects', 'x-original-method': 'GET', cookie: bob.header()! },
  });
  t.equal(untrusted.status, 403, 'describing headers from an untrusted address are refused');
  const untrustedFwd = await rawRequest(s.publicPort, {
    path: '/_auth/forward-auth',
    host: ACME,
    localAddress: '127.0.0.2',
    headers: { 'x-forwarded-uri': '/projects', 'x-forwarded-method': 'GET', 'x-forwarded-host': ACME, cookie: bob.header()! },
  });
  t.equal(untrustedFwd.status, 403);
  t.equal(untrustedFwd.headers['x-auth-request-user'], undefined);

  const base = 'ml.example.com';
  const alice = new Browser();
  const baseNav = await via({ path: '/projects', host: base, headers: NAV });
  t.equal(baseNav.headers.location, `http://${base}/login?redirect=%2Fprojects`, 'on the base host, to the email discovery');
  const form = await via({ path: '/login?redirect=%2Fprojects', host: base, headers: NAV }, alice);
  t.equal(form.status, 200, 'the email form is served by the gateway through the proxy');
  const found = await via(
    { path: '/login?redirect=%2Fprojects', host: base, method: 'POST', body: 'email=alice%40acme.com&redirect=%2Fprojects', headers: { ...NAV, 'content-type': 'application/x-www-form-urlencoded' } },
    alice,
  );
  t.equal(found.status, 303, 'an email of a known domain goes to its tenant');
  t.match(found.headers.location, /^\/login\/acme\?/);
  const aliceStart = await via({ path: found.headers.location!, host: base, headers: NAV }, alice);
  t.equal(new URL(aliceStart.headers.location!).origin, s.acmeIdp.issuer);
  const aliceCb = new URL((await loginAtIdp(aliceStart.headers.location!, 'alice')).callbackUrl);
  const aliceDone = await via({ path: aliceCb.pathname + aliceCb.search, host: aliceCb.host, headers: NAV }, alice);
  t.equal(aliceDone.headers.location, '/projects', 'logged in through the email discovery');
  t.equal((await via({ path: '/projects', host: base, headers: NAV }, alice)).status, 200);
  t.equal(s.upstream.seen.at(-1)!.headers['x-auth-request-user'], 'alice@acme.com');

  const kept = bob.header()!;
  const out = await via({ path: '/logout', headers: NAV }, bob);
  t.equal(out.status, 302, 'logout is answered by the gateway through the proxy');
  const after = await via({ path: '/projects', headers: { ...JSON_ACCEPT, cookie: kept } });
  t.equal(after.status, 401, 'the old session cookie no longer passes after logout');
}
