/**
 * Authenticate mode with what independent providers do: extra callback parameters,
 * wrong client credentials, claims at userinfo only.
 */
import t from 'tap';
import { loginAtIdp, startIdp } from '../helpers/idp.js';
import { Browser, twoTenants } from '../helpers/two-tenants.js';

t.test("a callback carrying Google's extra parameters logs in; they reach nothing", async (t) => {
  const s = await twoTenants(t);
  const browser = new Browser();
  const start = await s.req({ path: '/login/acme', host: 'acme.ml.example.com' }, browser);
  const { callbackUrl } = await loginAtIdp(start.headers.location!, 'bob');
  const u = new URL(callbackUrl);
  const extra = 'scope=email+profile+openid&authuser=0&hd=acme.com&prompt=consent';
  const callback = await s.req({ path: `${u.pathname}${u.search}&${extra}`, host: u.host }, browser);
  t.equal(callback.status, 302, callback.body);
  t.equal(callback.headers.location, '/');
  await s.req({ path: '/x', host: 'acme.ml.example.com' }, browser);
  t.equal(s.upstream.seen.at(-1)!.headers['x-auth-request-user'], 'bob@acme.com');
  t.notOk(s.upstream.seen.some((r) => r.url.includes('authuser')), 'the callback itself never reaches the webapp');
});

t.test('wrong client credentials: a 502 page saying sign-in is misconfigured, invalid_client in the audit log', async (t) => {
  const s = await twoTenants(t);
  await s.call('sso.save_provider_configuration', {
    provider: 'keycloak',
    company: 'c-globex',
    configuration: { id: 'c-globex', client_id: 'globex-web', client_secret: 'not-the-secret', issuer: s.globexIdp.issuer, claim_groups: 'ad_groups_trusted', group_enabled: true },
  });
  const gina = await s.login('gina', { host: 'globex.ml.example.com', tenant: 'globex' });
  t.equal(gina.callback?.status, 502);
  t.match(gina.callback?.body, /misconfigured/);
  t.notMatch(gina.callback?.body, /try again in a moment/i);
  t.equal(gina.callback?.headers['retry-after'], undefined, 'no Retry-After: waiting will not help');
  t.match(s.logs.text(), /"audit":"login".*"reason":"provider_misconfigured".*"providerError":"invalid_client"/);
  t.notMatch(s.logs.text(), /not-the-secret/);
});

t.test('claims found only at userinfo admit the user (claims_source both, the default)', async (t) => {
  const s = await twoTenants(t);
  const idp = await startIdp({
    clients: [{ client_id: 'initech-web', client_secret: 'initech-secret-0123456789', redirect_uris: ['http://initech.ml.example.com/callback_initech-web'] }],
    users: { peter: { email: 'peter@initech.com', email_verified: true, name: 'Peter', tenant_key: 'initech', ad_groups_trusted: ['staff'] } },
    claimsAtUserinfo: true,
  });
  t.teardown(() => idp.close());
  await s.call('system.update_company_sso_config', { company: 'c-initech', sso: { tenant: 'initech', group_mapping: { staff: 'Staff' } } });
  const save = (extra: Record<string, unknown>) =>
    s.call('sso.save_provider_configuration', {
      provider: 'lemonldap-ng',
      company: 'c-initech',
      configuration: { id: 'i', client_id: 'initech-web', client_secret: 'initech-secret-0123456789', issuer: idp.issuer, group_enabled: true, claim_groups: 'ad_groups_trusted', group_prohibit_user_login_if_not_in_group: true, ...extra },
    });
  t.equal((await save({})).status, 200);
  const peter = await s.login('peter', { host: 'initech.ml.example.com', tenant: 'initech' });
  t.equal(peter.callback?.status, 302, peter.callback?.body ?? 'no callback');
  await s.req({ path: '/x', host: 'initech.ml.example.com' }, peter.browser);
  t.equal(s.upstream.seen.at(-1)!.headers['x-auth-request-groups'], 'Staff');

  await save({ claims_source: 'id_token' });
  const again = await s.login('peter', { host: 'initech.ml.example.com', tenant: 'initech' });
  t.equal(again.callback?.status, 403, 'with id_token only, the tenant claim is missing');
  t.match(s.logs.text(), /tenant_claim_missing.*exported claims/, "the hint speaks LemonLDAP::NG's terms");
});
