/**
 * End-to-end logins against an OpenID Connect provider that is not oidc-provider:
 * LemonLDAP::NG from Debian's packages, its portal started by the test under plackup.
 * Skipped, with the reason, where the packages are not installed (.ci/run installs them).
 */
import t from 'tap';
import { adminCall, publicRequest, startGateway, startUpstream } from '../helpers/gateway.js';
import { llngUnavailable, loginAtLlng, startLlng } from '../helpers/lemonldap.js';
import { Browser } from '../helpers/two-tenants.js';

const missing = llngUnavailable();
if (missing) {
  t.plan(0, `LemonLDAP::NG is not available: ${missing}`);
} else {
  const HOST = 'acme.ml.example.com';
  const SECRET = 'llng-client-secret-0123456789';
  const BASIC = 'umbrella-client';
  const POST = 'umbrella-client_x.y~z';
  const llng = await startLlng({
    tenant: 'acme',
    clients: [BASIC, POST].map((clientId) => ({
      clientId,
      secret: SECRET,
      redirectUris: [`http://${HOST}/callback_${clientId}`],
      postLogoutUris: [`http://${HOST}/login/acme`],
    })),
  });
  t.teardown(() => llng.close());

  const upstream = await startUpstream(t);
  const gw = await startGateway(t, {
    mode: 'authenticate',
    public: { host: '127.0.0.1', port: 0, url: 'http://ml.example.com' },
    upstreams: { webapp: upstream.url },
    session: { secret: 'a-session-secret-of-at-least-32-characters' },
  });
  await adminCall(gw.adminUrl, 'system.update_company_sso_config', { company: 'c-acme', sso: { tenant: 'acme', group_mapping: { staff: 'Staff' } } });
  const saveProvider = (clientId: string, extra: Record<string, unknown> = {}) =>
    adminCall(gw.adminUrl, 'sso.save_provider_configuration', {
      provider: 'lemonldap-ng',
      company: 'c-acme',
      configuration: { id: 'llng', client_id: clientId, client_secret: SECRET, issuer: llng.issuer, group_enabled: true, ...extra },
    });

  const req = (path: string, browser: Browser, host = HOST) =>
    publicRequest(gw.publicPort, { path, host, headers: { ...(browser.header() ? { cookie: browser.header()! } : {}) } }).then((r) => {
      browser.take(r.headers);
      return r;
    });

  async function login(user: string) {
    const browser = new Browser();
    const start = await req('/login/acme', browser);
    if (start.status !== 302) throw new Error(`login start answered ${start.status}: ${start.body.slice(0, 300)}`);
    const { callbackUrl } = await loginAtLlng(start.headers.location!, user);
    const u = new URL(callbackUrl);
    const callback = await req(u.pathname + u.search, browser, u.host);
    return { browser, callback };
  }

  t.test(`client_id ${BASIC} logs in with client_secret_basic; claims come from userinfo`, async (t) => {
    t.equal((await saveProvider(BASIC)).status, 200);
    const { browser, callback } = await login('dwho');
    t.equal(callback.status, 302, `${callback.body.slice(0, 300)}\n${gw.logs.text().slice(-1500)}`);
    await req('/projects', browser);
    const h = upstream.seen.at(-1)!.headers;
    t.equal(h['x-auth-request-tenant'], 'acme');
    t.equal(h['x-auth-request-subject'] ?? 'dwho', 'dwho');
    t.match(String(h['x-auth-request-user']), /dwho/);
    t.equal(h['x-auth-request-groups'], 'Staff');
  });

  t.test(`client_id ${POST} logs in with client_secret_basic and client_secret_post`, async (t) => {
    for (const method of ['client_secret_basic', 'client_secret_post']) {
      t.equal((await saveProvider(POST, { token_endpoint_auth_method: method })).status, 200);
      const { callback } = await login('rtyler');
      t.equal(callback.status, 302, `${method}: ${callback.body.slice(0, 300)}\n${gw.logs.text().slice(-1500)}`);
    }
  });

  t.test('with claims_source id_token the tenant claim is missing, and the hint speaks LemonLDAP::NG', async (t) => {
    t.equal((await saveProvider(BASIC, { claims_source: 'id_token' })).status, 200);
    const { callback } = await login('msmith');
    t.equal(callback.status, 403);
    t.match(gw.logs.text(), /tenant_claim_missing.*exported claims/);
  });

  t.test('wrong client credentials: 502 misconfigured, invalid_client audited', async (t) => {
    t.equal((await saveProvider(BASIC, { client_secret: 'not-the-secret' })).status, 200);
    const { callback } = await login('dwho');
    t.equal(callback.status, 502);
    t.match(callback.body, /misconfigured/);
    t.match(gw.logs.text(), /"providerError":"invalid_client"/);
  });
}
