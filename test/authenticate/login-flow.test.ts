import t from 'tap';
import { Browser, twoTenants, ACME_SECRET, GLOBEX_SECRET, SESSION_SECRET } from '../helpers/two-tenants.js';

const NAV = { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };
const seenHeaders = (s: { upstream: { seen: Array<{ headers: Record<string, unknown> }> } }) => s.upstream.seen.at(-1)!.headers;

t.test('a full login per tenant: identity headers, groups, admin', async (t) => {
  const s = await twoTenants(t);
  const start = await s.req({ path: '/login/acme', host: 'acme.ml.example.com' });
  t.equal(start.status, 302);
  const auth = new URL(start.headers.location!);
  t.equal(auth.origin, s.acmeIdp.issuer, 'to acme\'s own identity provider');
  t.equal(auth.searchParams.get('code_challenge_method'), 'S256');
  t.ok(auth.searchParams.get('state'));
  t.ok(auth.searchParams.get('nonce'));
  t.equal(auth.searchParams.get('redirect_uri'), 'http://acme.ml.example.com/callback_acme-web');
  t.match(String(start.headers['set-cookie']), /HttpOnly; SameSite=Lax/);

  const alice = await s.login('alice');
  t.equal(alice.callback?.status, 302);
  t.equal(alice.callback?.headers.location, '/');
  const page = await s.req({ path: '/projects', host: 'acme.ml.example.com', headers: NAV }, alice.browser);
  t.equal(page.status, 200);
  const h = seenHeaders(s);
  t.equal(h['x-auth-request-user'], 'alice@acme.com');
  t.equal(h['x-auth-request-email'], 'alice@acme.com');
  t.equal(h['x-auth-request-name'], 'Alice Admin');
  t.equal(h['x-auth-request-tenant'], 'acme');
  t.equal(h['x-auth-request-groups'], 'Admins,Users');
  t.equal(h['x-auth-request-admin'], 'true');
  t.notMatch(JSON.stringify(h.cookie ?? ''), /tg_session/, 'the gateway cookie never reaches the webapp');

  const bob = await s.login('bob');
  await s.req({ path: '/x', host: 'acme.ml.example.com', headers: { accept: 'application/json' } }, bob.browser);
  t.equal(seenHeaders(s)['x-auth-request-groups'], 'Users', 'unmapped IdP groups that are not tenant groups are dropped');
  t.equal(seenHeaders(s)['x-auth-request-admin'], 'false');

  const gina = await s.login('gina', { host: 'globex.ml.example.com', tenant: 'globex' });
  t.equal(gina.callback?.status, 302);
  await s.req({ path: '/x', host: 'globex.ml.example.com' }, gina.browser);
  t.equal(seenHeaders(s)['x-auth-request-tenant'], 'globex');
  t.equal(seenHeaders(s)['x-auth-request-groups'], 'Staff');

  const logs = s.logs.text();
  for (const secret of [ACME_SECRET, GLOBEX_SECRET, SESSION_SECRET, alice.callbackUrl!.searchParams.get('code')!]) {
    t.notMatch(logs, secret, 'no secret or code in the logs');
  }
  t.match(logs, /"audit":"login".*"outcome":"success"/);
});

t.test('return after login, vanity redirect and requests without a session', async (t) => {
  const s = await twoTenants(t);
  const nav = await s.req({ path: '/projects/7?tab=1', host: 'acme.ml.example.com', headers: NAV });
  t.equal(nav.status, 302);
  t.equal(nav.headers.location, '/login/acme?redirect=%2Fprojects%2F7%3Ftab%3D1');
  const api = await s.req({ path: '/api/things', host: 'acme.ml.example.com', headers: { accept: 'application/json' } });
  t.equal(api.status, 401);
  const baseNav = await s.req({ path: '/projects', host: 'ml.example.com', headers: NAV });
  t.equal(baseNav.headers.location, '/login?redirect=%2Fprojects');
  t.equal(s.upstream.seen.length, 0, 'nothing reached the webapp without a session');
  const r = await s.login('bob', { query: '?redirect=%2Fprojects%2F7%3Ftab%3D1' });
  t.equal(r.callback?.headers.location, '/projects/7?tab=1');
  const unsafe = await s.login('bob', { query: '?redirect=%2F%2Fevil.com' });
  t.equal(unsafe.callback?.headers.location, '/', 'an unsafe redirect is not honoured');
  const viaBase = await s.login('bob', { host: 'ml.example.com' });
  t.equal(viaBase.callback?.status, 302, 'login through the base host works');
  t.equal((await s.req({ path: '/p', host: 'ml.example.com' }, viaBase.browser)).status, 200, 'and the session is valid on the base host');
});

t.test('refusals: a page, a reason, a counter, and no session', async (t) => {
  const s = await twoTenants(t);
  const cases: Array<[string, RegExp, string]> = [
    ['mallory', /can.{1,5}t log in to tenant acme: the user isn.{1,5}t part of this tenant/i, 'tenant_mismatch'],
    ['carol', /group/i, 'no_group'],
    ['nogroups', /group/i, 'groups_claim_missing'],
    ['notenant', /tenant/i, 'tenant_claim_missing'],
  ];
  for (const [account, message, reason] of cases) {
    const r = await s.login(account);
    t.equal(r.callback?.status, 403, `${account} refused`);
    t.match(r.callback?.body, message);
    t.notOk([...r.browser.cookies.keys()].some((k) => k === 'tg_session'), `${account} got no session`);
    const after = await s.req({ path: '/x', host: 'acme.ml.example.com' }, r.browser);
    t.equal(after.status, 401);
    t.match(s.logs.text(), new RegExp(`"reason":"${reason}"`), `reason ${reason} logged`);
  }
  t.match(s.logs.text(), /no `tenant_key` claim/, 'the operator is told which claim is missing');
  const metrics = await (await fetch(`${s.adminUrl}/metrics`)).text();
  t.match(metrics, /tenant_gate_logins_total\{tenant="acme",outcome="refused",reason="tenant_mismatch"\} 1/);
  t.equal(s.upstream.seen.length, 0);
});

t.test('forged, replayed and misdirected callbacks are 400 and create no session', async (t) => {
  const s = await twoTenants(t);
  const first = await s.login('bob');
  t.equal(first.callback?.status, 302);
  const u = first.callbackUrl!;

  const replayBrowser = new Browser();
  const start = await s.req({ path: '/login/acme', host: 'acme.ml.example.com' }, replayBrowser);
  t.equal(start.status, 302);
  const replay = await s.req({ path: u.pathname + u.search, host: u.host }, replayBrowser);
  t.equal(replay.status, 400, 'a code from another transaction is refused');

  const b = new Browser();
  const st = await s.req({ path: '/login/acme', host: 'acme.ml.example.com' }, b);
  const { loginAtIdp } = await import('../helpers/idp.js');
  const cb = new URL((await loginAtIdp(st.headers.location!, 'bob')).callbackUrl);
  const saved = new Map(b.cookies);
  const tampered = new URL(cb);
  tampered.searchParams.set('state', 'forged-state');
  t.equal((await s.req({ path: tampered.pathname + tampered.search, host: cb.host }, b)).status, 400, 'tampered state');
  const genuine = new Browser();
  for (const [k, v] of saved) genuine.cookies.set(k, v);
  t.equal((await s.req({ path: cb.pathname + cb.search, host: cb.host }, genuine)).status, 302, 'a forged callback does not use up the transaction of a user mid-login');
  const again = new Browser();
  for (const [k, v] of saved) again.cookies.set(k, v);
  t.equal((await s.req({ path: cb.pathname + cb.search, host: cb.host }, again)).status, 400, 'the transaction was used once already');

  const c = new Browser();
  const st2 = await s.req({ path: '/login/acme', host: 'acme.ml.example.com' }, c);
  const cb2 = new URL((await loginAtIdp(st2.headers.location!, 'bob')).callbackUrl);
  const tx = [...c.cookies.entries()][0]!;
  const broken = new Browser();
  broken.cookies.set(tx[0], tx[1].slice(0, -4) + 'AAAA');
  t.equal((await s.req({ path: cb2.pathname + cb2.search, host: cb2.host }, broken)).status, 400, 'tampered transaction cookie');
  t.equal((await s.req({ path: cb2.pathname + cb2.search, host: cb2.host })).status, 400, 'no transaction cookie');
  const otherClient = `/callback_globex-web${cb2.search}`;
  t.equal((await s.req({ path: otherClient, host: 'globex.ml.example.com' }, c)).status, 400, "a callback at another tenant's client");
  t.equal((await s.req({ path: cb2.pathname + cb2.search, host: 'globex.ml.example.com' }, c)).status, 400, "acme's callback on globex's host");
  for (const br of [b, again, broken, c]) t.notOk(br.cookies.has('tg_session'), 'no session created');
  t.ok(genuine.cookies.has('tg_session'), 'only the genuine callback made a session');
  t.equal(s.upstream.seen.length, 0);
});

t.test('a session is valid only on its own tenant hosts and the base host', async (t) => {
  const s = await twoTenants(t);
  const alice = await s.login('alice');
  const cookie = alice.browser.header()!;
  const onGlobex = await s.req({ path: '/x', host: 'globex.ml.example.com', headers: { cookie, accept: 'application/json' } });
  t.equal(onGlobex.status, 401);
  const navGlobex = await s.req({ path: '/x', host: 'globex.ml.example.com', headers: { cookie, ...NAV } });
  t.equal(navGlobex.headers.location, '/login/globex?redirect=%2Fx');
  t.equal((await s.req({ path: '/x', host: 'ml.example.com', headers: { cookie } })).status, 200);
  t.equal(s.upstream.seen.length, 1);
});

t.test('spoofed identity headers are replaced by the verified identity', async (t) => {
  const s = await twoTenants(t);
  const bob = await s.login('bob');
  await s.req({ path: '/x', host: 'acme.ml.example.com', headers: { 'x-auth-request-admin': 'true', 'x-auth-request-user': 'alice@acme.com', 'X-Auth-Request-Groups': 'Admins' } }, bob.browser);
  const h = seenHeaders(s);
  t.equal(h['x-auth-request-admin'], 'false');
  t.equal(h['x-auth-request-user'], 'bob@acme.com');
  t.equal(h['x-auth-request-groups'], 'Users');
});

t.test('logout ends the session and the provider session', async (t) => {
  const s = await twoTenants(t);
  const alice = await s.login('alice');
  const out = await s.req({ path: '/logout', host: 'acme.ml.example.com' }, alice.browser);
  t.equal(out.status, 302);
  const end = new URL(out.headers.location!);
  t.equal(end.origin, s.acmeIdp.issuer);
  t.equal(end.searchParams.get('client_id'), 'acme-web');
  t.equal(end.searchParams.get('post_logout_redirect_uri'), 'http://acme.ml.example.com/login/acme');
  const hint = end.searchParams.get('id_token_hint');
  t.ok(hint && hint.split('.').length === 3, 'id_token_hint is the ID token');
  t.notMatch(s.logs.text(), hint!, 'the ID token is never logged');
  const after = await s.req({ path: '/x', host: 'acme.ml.example.com' }, alice.browser);
  t.equal(after.status, 401, 'the session is gone');
  const replayed = await s.req({ path: '/x', host: 'acme.ml.example.com', headers: { cookie: `tg_session=${[...alice.browser.cookies.values()][0] ?? 'x'}` } });
  t.equal(replayed.status, 401);

  const gina = await s.login('gina', { host: 'globex.ml.example.com', tenant: 'globex' });
  const out2 = await s.req({ path: '/logout', host: 'globex.ml.example.com' }, gina.browser);
  t.equal(out2.headers.location, '/login/globex', 'without logout_from_provider: back to the tenant login');
  const none = await s.req({ path: '/logout', host: 'ml.example.com' });
  t.equal(none.headers.location, '/login');
});

t.test('a tenant whose provider is down gets a clear error; others are unaffected', async (t) => {
  const s = await twoTenants(t);
  await s.call('system.update_company_sso_config', { company: 'c-dead', sso: { tenant: 'dead' } });
  await s.call('sso.save_provider_configuration', { provider: 'keycloak', company: 'c-dead', configuration: { id: 'd', client_id: 'dead-web', issuer: 'http://127.0.0.1:9/realms/dead' } });
  const started = Date.now();
  const r = await s.req({ path: '/login/dead', host: 'dead.ml.example.com' });
  t.equal(r.status, 503);
  t.ok(r.headers['retry-after']);
  t.ok(Date.now() - started < 6000, 'within the provider timeout');
  const ok = await s.login('bob');
  t.equal(ok.callback?.status, 302, 'acme still logs in');
});

t.test('several providers: a chooser with each display name', async (t) => {
  const s = await twoTenants(t);
  await s.call('sso.save_provider_configuration', { provider: 'keycloak', company: 'c-acme', configuration: { id: 'second', display_name: 'Acme <Partners>', client_id: 'acme-partners', issuer: s.acmeIdp.issuer } });
  const r = await s.req({ path: '/login/acme?redirect=%2Fp', host: 'acme.ml.example.com' });
  t.equal(r.status, 200);
  t.match(r.body, /Acme SSO/);
  t.match(r.body, /Acme &#60;Partners&#62;/, 'display names are escaped');
  t.match(r.body, /provider=second/);
  const pick = await s.req({ path: '/login/acme?provider=c-acme', host: 'acme.ml.example.com' });
  t.equal(pick.status, 302);
  t.match(pick.headers.location!, /client_id=acme-web/);
});

t.test('logout revokes the tokens at the provider', async (t) => {
  const s = await twoTenants(t);
  const alice = await s.login('alice');
  const before = [...s.acmeIdp.hits].filter(([p]) => p.includes('revocation')).reduce((n, [, c]) => n + c, 0);
  await s.req({ path: '/logout', host: 'acme.ml.example.com' }, alice.browser);
  let after = before;
  for (let i = 0; i < 40 && after === before; i++) {
    await new Promise((r) => setTimeout(r, 50));
    after = [...s.acmeIdp.hits].filter(([p]) => p.includes('revocation')).reduce((n, [, c]) => n + c, 0);
  }
  t.ok(after > before, 'the revocation endpoint was called');
});

t.test('on an https public URL the cookies are Secure and __Host- prefixed', async (t) => {
  const s = await twoTenants(t, { public: { host: '127.0.0.1', port: 0, url: 'https://ml.example.com' } });
  const r = await s.req({ path: '/login/acme', host: 'acme.ml.example.com' });
  t.equal(r.status, 302);
  const cookie = String(r.headers['set-cookie']);
  t.match(cookie, /^__Host-tg_session_tx=/);
  t.match(cookie, /; Secure/);
  t.match(cookie, /HttpOnly/);
  t.equal(new URL(r.headers.location!).searchParams.get('redirect_uri'), 'https://acme.ml.example.com/callback_acme-web');
});


t.test('a form_post callback completes the login like a query callback', async (t) => {
  const s = await twoTenants(t);
  const { loginAtIdp } = await import('../helpers/idp.js');
  const b = new Browser();
  const st = await s.req({ path: '/login/acme', host: 'acme.ml.example.com' }, b);
  const cb = new URL((await loginAtIdp(st.headers.location!, 'bob')).callbackUrl);
  const r = await s.req(
    { path: cb.pathname, host: cb.host, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: cb.searchParams.toString() },
    b,
  );
  t.equal(r.status, 302, 'completed');
  t.ok(b.cookies.has('tg_session'), 'with a session');
  t.equal(s.upstream.seen.length, 0, 'the callback never reached the webapp');
  t.equal((await s.req({ path: '/x', host: 'acme.ml.example.com' }, b)).status, 200);
});
