import t from 'tap';
import { adminCall, publicRequest, startGateway, startUpstream } from '../helpers/gateway.js';
import { CookieJar, loginAtIdp, logoutAtIdp, startIdp, type Idp } from '../helpers/idp.js';
import { logoutClaims, signAsIdp, signForged, signHmac, unsigned } from '../helpers/logout-tokens.js';
import { Browser, SESSION_SECRET } from '../helpers/two-tenants.js';

type Test = import('tap').Test;

const ACME_SECRET = 'acme-client-secret-0123456789';
const GLOBEX_SECRET = 'globex-client-secret-0123456789';

/** A gateway with acme (its provider sends back-channel logout) and globex. */
async function setup(t: Test) {
  const upstream = await startUpstream(t);
  let port = 0;
  const acmeIdp: Idp = await startIdp({
    clients: [
      {
        client_id: 'acme-web',
        client_secret: ACME_SECRET,
        redirect_uris: ['http://acme.ml.example.com/callback_acme-web'],
        post_logout_redirect_uris: ['http://acme.ml.example.com/login/acme'],
        backchannel_logout_uri: 'http://acme.ml.example.com/backchannel-logout_acme-web',
        backchannel_logout_session_required: true,
      },
    ],
    users: {
      alice: { email: 'alice@acme.com', email_verified: true, tenant_key: 'acme' },
      bob: { email: 'bob@acme.com', email_verified: true, tenant_key: 'acme' },
    },
    backchannelLogout: { deliverToPort: () => port },
  });
  t.teardown(() => acmeIdp.close());
  const globexIdp: Idp = await startIdp({
    clients: [{ client_id: 'globex-web', client_secret: GLOBEX_SECRET, redirect_uris: ['http://globex.ml.example.com/callback_globex-web'] }],
    users: { alice: { email: 'alice@globex.com', email_verified: true, tenant_key: 'globex' } },
  });
  t.teardown(() => globexIdp.close());
  const gw = await startGateway(t, {
    mode: 'authenticate',
    public: { host: '127.0.0.1', port: 0, url: 'http://ml.example.com' },
    upstreams: { webapp: upstream.url },
    session: { secret: SESSION_SECRET },
    rateLimit: { logoutPerMinute: 1000 },
  });
  port = gw.publicPort;
  const call = (endpoint: string, body: unknown) => adminCall(gw.adminUrl, endpoint, body);
  await call('system.update_company_sso_config', { company: 'c-acme', sso: { tenant: 'acme' } });
  await call('sso.save_provider_configuration', {
    provider: 'keycloak',
    company: 'c-acme',
    configuration: { id: 'acme-kc', client_id: 'acme-web', client_secret: ACME_SECRET, issuer: acmeIdp.issuer, claim_tenant: 'tenant_key', frontchannel_logout: true },
  });
  await call('system.update_company_sso_config', { company: 'c-globex', sso: { tenant: 'globex' } });
  await call('sso.save_provider_configuration', {
    provider: 'keycloak',
    company: 'c-globex',
    configuration: { id: 'globex-kc', client_id: 'globex-web', client_secret: GLOBEX_SECRET, issuer: globexIdp.issuer, claim_tenant: 'tenant_key' },
  });

  const req = (o: Parameters<typeof publicRequest>[1], browser?: Browser, gwPort = gw.publicPort) => {
    const cookie = browser?.header();
    return publicRequest(gwPort, { ...o, headers: { ...(cookie ? { cookie } : {}), ...o.headers } }).then((r) => {
      browser?.take(r.headers);
      return r;
    });
  };
  /** Logs `account` in; the provider's cookies stay in the returned jar. */
  async function login(account: string, opts: { host?: string; tenant?: string; gwPort?: number } = {}) {
    const host = opts.host ?? 'acme.ml.example.com';
    const browser = new Browser();
    const idpJar = new CookieJar();
    const start = await req({ path: `/login/${opts.tenant ?? 'acme'}`, host }, browser, opts.gwPort);
    const { callbackUrl } = await loginAtIdp(start.headers.location!, account, idpJar);
    const u = new URL(callbackUrl);
    const cb = await req({ path: u.pathname + u.search, host: u.host }, browser, opts.gwPort);
    if (cb.status !== 302) throw new Error(`login failed: ${cb.status} ${cb.body.slice(0, 200)}`);
    return { browser, idpJar };
  }
  /** Whether the browser's gateway session still carries an identity to the upstream. */
  async function signedIn(browser: Browser, host = 'acme.ml.example.com', gwPort = gw.publicPort) {
    const r = await req({ path: '/api-check', host, headers: { accept: 'application/json' } }, browser, gwPort);
    return r.status === 200;
  }
  const postToken = (token: string, o: { host?: string; clientId?: string; gwPort?: number } = {}) =>
    publicRequest(o.gwPort ?? gw.publicPort, {
      method: 'POST',
      path: `/backchannel-logout_${o.clientId ?? 'acme-web'}`,
      host: o.host ?? 'acme.ml.example.com',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ logout_token: token }).toString(),
    });
  return { gw, upstream, acmeIdp, globexIdp, req, login, signedIn, postToken, call };
}

t.test('signing out at the provider ends the gateway session through back-channel logout', async (t) => {
  const s = await setup(t);
  const alice = await s.login('alice');
  const bob = await s.login('bob');
  t.ok(await s.signedIn(alice.browser), 'alice is signed in');
  t.ok(await s.signedIn(bob.browser), 'bob is signed in');
  const seen = s.upstream.seen.at(-1);
  t.equal(seen?.headers['x-auth-request-user'], 'bob@acme.com');

  await logoutAtIdp(s.acmeIdp, alice.idpJar);
  t.same(s.acmeIdp.backchannelDeliveries.map((d) => [d.url, d.status]), [['http://acme.ml.example.com/backchannel-logout_acme-web', 200]], 'the provider posted its logout token, the gateway answered 200');
  t.notOk(await s.signedIn(alice.browser), "alice's next request gets no identity");
  const r = await s.req({ path: '/api-check', host: 'acme.ml.example.com', headers: { accept: 'application/json' } }, alice.browser);
  t.equal(r.status, 401);
  t.ok(await s.signedIn(bob.browser), "bob's session is untouched");
  t.match(s.gw.logs.text(), /"audit":"backchannel_logout"[^\n]*"outcome":"ok"[^\n]*"ended":1/, 'audited');
  const metrics = await (await fetch(`${s.gw.adminUrl}/metrics`)).text();
  t.match(metrics, /tenant_gate_channel_logouts_total\{channel="backchannel",tenant="acme",outcome="ok"\} 1/);
  t.match(metrics, /tenant_gate_sessions_ended_total\{cause="backchannel"\} 1/);
});

t.test('bad logout tokens end nothing and get 400', async (t) => {
  const s = await setup(t);
  const alice = await s.login('alice');
  const sub = { sub: 'alice' };
  const claims = (o: Record<string, unknown> = {}) => logoutClaims(s.acmeIdp, 'acme-web', { ...sub, ...o });
  const now = Math.floor(Date.now() / 1000);
  const cases: Array<[string, () => Promise<{ token: string; host?: string; clientId?: string }>]> = [
    ['forged (another key, same kid)', async () => ({ token: await signForged(s.acmeIdp, claims()) })],
    ['HS256 with the client secret', async () => ({ token: await signHmac(ACME_SECRET, claims()) })],
    ['alg none', async () => ({ token: unsigned(claims()) })],
    ['expired', async () => ({ token: await signAsIdp(s.acmeIdp, claims({ iat: now - 3600, exp: now - 3000 })) })],
    ['issued too long ago', async () => ({ token: await signAsIdp(s.acmeIdp, claims({ iat: now - 3600, exp: undefined })) })],
    ['issued in the future', async () => ({ token: await signAsIdp(s.acmeIdp, claims({ iat: now + 3600, exp: now + 7200 })) })],
    ['wrong audience', async () => ({ token: await signAsIdp(s.acmeIdp, claims({ aud: 'other-client' })) })],
    ['wrong issuer', async () => ({ token: await signAsIdp(s.acmeIdp, claims({ iss: 'http://127.0.0.1:1' })) })],
    ['carrying a nonce', async () => ({ token: await signAsIdp(s.acmeIdp, claims({ nonce: 'n-0S6_WzA2Mj' })) })],
    ['without the logout event', async () => ({ token: await signAsIdp(s.acmeIdp, claims({ events: {} })) })],
    ['events not an object', async () => ({ token: await signAsIdp(s.acmeIdp, claims({ events: ['http://schemas.openid.net/event/backchannel-logout'] })) })],
    ['neither sid nor sub', async () => ({ token: await signAsIdp(s.acmeIdp, claims({ sub: undefined })) })],
    ['without jti', async () => ({ token: await signAsIdp(s.acmeIdp, claims({ jti: undefined })) })],
    ['without iat', async () => ({ token: await signAsIdp(s.acmeIdp, claims({ iat: undefined })) })],
    ['an ID token-like JWT', async () => ({ token: await signAsIdp(s.acmeIdp, claims({ events: undefined, nonce: 'x' })) })],
    ['not a JWT', async () => ({ token: 'not-a-token' })],
    ['empty', async () => ({ token: '' })],
    ['another tenant\'s client on this tenant\'s host', async () => ({ token: await signAsIdp(s.globexIdp, logoutClaims(s.globexIdp, 'globex-web', sub)), clientId: 'globex-web' })],
    ['this client\'s token on another tenant\'s host', async () => ({ token: await signAsIdp(s.acmeIdp, claims()), host: 'globex.ml.example.com' })],
    ['a token of another tenant\'s provider for this client', async () => ({ token: await signAsIdp(s.globexIdp, logoutClaims(s.globexIdp, 'acme-web', sub)) })],
    ['an unknown client', async () => ({ token: await signAsIdp(s.acmeIdp, claims()), clientId: 'nobody' })],
  ];
  for (const [name, make] of cases) {
    const { token, ...where } = await make();
    const r = await s.postToken(token, where);
    t.equal(r.status, 400, `${name}: 400`);
    t.equal(r.headers['cache-control'], 'no-store', `${name}: not cached`);
    const body = JSON.parse(r.body || '{}') as { error?: string; error_description?: string };
    t.equal(body.error, 'invalid_request', `${name}: invalid_request`);
    t.type(body.error_description, 'string');
    t.ok(await s.signedIn(alice.browser), `${name}: the session survives`);
  }

  const valid = await signAsIdp(s.acmeIdp, claims());
  const ok = await s.postToken(valid);
  t.equal(ok.status, 200, 'the same token made right is accepted');
  t.equal(ok.headers['cache-control'], 'no-store');
  t.notOk(await s.signedIn(alice.browser), 'and ends the session');

  const again = await s.login('alice');
  const replay = await s.postToken(valid);
  t.equal(replay.status, 400, 'a replayed token gets 400');
  t.match(replay.body, /already used/);
  t.ok(await s.signedIn(again.browser), 'and ends nothing');

  const globex = await s.login('alice', { host: 'globex.ml.example.com', tenant: 'globex' });
  const otherTenant = await s.postToken(await signAsIdp(s.globexIdp, logoutClaims(s.globexIdp, 'globex-web', sub)), { clientId: 'globex-web', host: 'ml.example.com' });
  t.equal(otherTenant.status, 200, "globex's own token on the base host is accepted");
  t.notOk(await s.signedIn(globex.browser, 'globex.ml.example.com'), "it ends globex's alice");
  t.ok(await s.signedIn(again.browser), "but not acme's alice (same subject, other tenant)");
});

t.test('the provider read-back names the logout URIs to register per host', async (t) => {
  const s = await setup(t);
  const r = await s.call('sso.get_provider_configuration', { company: 'c-acme', id: 'acme-kc' });
  t.same(r.data.logout_uris, {
    backchannel: ['http://acme.ml.example.com/backchannel-logout_acme-web', 'http://ml.example.com/backchannel-logout_acme-web'],
    frontchannel: ['http://acme.ml.example.com/frontchannel-logout_acme-web', 'http://ml.example.com/frontchannel-logout_acme-web'],
  });
  const all = await s.call('sso.get_all_provider_configurations', { company: 'c-globex' });
  t.same(all.data.providers[0].logout_uris.backchannel, ['http://globex.ml.example.com/backchannel-logout_globex-web', 'http://ml.example.com/backchannel-logout_globex-web']);
  const openapi = (await (await fetch(`${s.gw.adminUrl}/openapi.json`)).json()) as { paths: Record<string, unknown> };
  t.ok(openapi.paths['/sso.get_sessions_summary'] && openapi.paths['/sso.revoke_sessions'], 'the session endpoints are described');
});

t.test('a logout token naming sid ends that provider session only', async (t) => {
  const s = await setup(t);
  const first = await s.login('alice');
  const second = await s.login('alice');
  await logoutAtIdp(s.acmeIdp, first.idpJar);
  t.notOk(await s.signedIn(first.browser), 'the session of the provider session signed out ends');
  t.ok(await s.signedIn(second.browser), "the same user's other provider session goes on");
});

t.test('front-channel logout, when the provider opts in', async (t) => {
  const s = await setup(t);
  const alice = await s.login('alice');
  await logoutAtIdp(s.acmeIdp, new CookieJar()).catch(() => undefined);
  const bad = await s.req({ path: `/frontchannel-logout_acme-web?iss=${encodeURIComponent('http://evil.example')}&sid=x`, host: 'acme.ml.example.com' });
  t.equal(bad.status, 400, 'another issuer: 400');
  t.ok(await s.signedIn(alice.browser));
  const notEnabled = await s.req({ path: `/frontchannel-logout_globex-web?iss=${encodeURIComponent(s.globexIdp.issuer)}&sid=x`, host: 'globex.ml.example.com' });
  t.equal(notEnabled.status, 404, 'a provider without frontchannel_logout: 404');
  const ok = await s.req({ path: `/frontchannel-logout_acme-web?iss=${encodeURIComponent(s.acmeIdp.issuer)}&sid=unknown-sid`, host: 'acme.ml.example.com' });
  t.equal(ok.status, 200, 'a well-formed request: 200');
  t.match(ok.headers['content-security-policy'], new RegExp(`frame-ancestors ${s.acmeIdp.issuer.replace(/[.]/g, '\\.')}(;|$)`), 'framed by the issuer only');
  t.notOk(ok.headers['x-frame-options'], 'no X-Frame-Options DENY');
  t.ok(await s.signedIn(alice.browser), 'an unknown sid ends nothing');
});

