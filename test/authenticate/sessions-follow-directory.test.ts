import t from 'tap';
import { GLOBEX_SECRET, twoTenants } from '../helpers/two-tenants.js';

const API = { accept: 'application/json' };
const seen = (s: { upstream: { seen: Array<{ headers: Record<string, unknown> }> } }) => s.upstream.seen.at(-1)!.headers;

t.test('a session ends when its company and provider are deleted, and never passes to a new owner of the tenant', async (t) => {
  const s = await twoTenants(t);
  const gina = await s.login('gina', { host: 'globex.ml.example.com', tenant: 'globex' });
  t.equal(gina.callback?.status, 302);
  t.equal((await s.req({ path: '/x', host: 'ml.example.com', headers: API }, gina.browser)).status, 200, 'valid on the base host');

  await s.call('sso.delete_provider_configuration', { company: 'c-globex', id: 'c-globex' });
  await s.call('system.delete_company_sso_config', { company: 'c-globex' });
  const base = await s.req({ path: '/x', host: 'ml.example.com', headers: API }, gina.browser);
  t.equal(base.status, 401, 'the base host no longer accepts a session of a deleted tenant');

  await s.call('system.update_company_sso_config', { company: 'c-newcorp', sso: { tenant: 'GLOBEX', group_mapping: { staff: 'Staff' }, admin_groups: ['staff'] } });
  await s.call('sso.save_provider_configuration', {
    provider: 'keycloak',
    company: 'c-newcorp',
    configuration: { id: 'c-newcorp', client_id: 'globex-web', client_secret: GLOBEX_SECRET, issuer: s.globexIdp.issuer, group_enabled: true, claim_groups: 'ad_groups_trusted' },
  });
  const before = s.upstream.seen.length;
  const vanity = await s.req({ path: '/x', host: 'globex.ml.example.com', headers: API }, gina.browser);
  t.equal(vanity.status, 401, "the old session is refused on the new owner's vanity host");
  const again = await s.req({ path: '/x', host: 'ml.example.com', headers: API }, gina.browser);
  t.equal(again.status, 401, 'and stays ended');
  t.equal(s.upstream.seen.length, before, 'no identity reached the upstream');
});

t.test('deleting only the provider ends its sessions', async (t) => {
  const s = await twoTenants(t);
  const bob = await s.login('bob');
  t.equal((await s.req({ path: '/x', host: 'acme.ml.example.com', headers: API }, bob.browser)).status, 200);
  await s.call('sso.delete_provider_configuration', { company: 'c-acme', id: 'c-acme' });
  t.equal((await s.req({ path: '/x', host: 'acme.ml.example.com', headers: API }, bob.browser)).status, 401);
});

t.test('group mapping and admin changes reach live sessions; a user left without a group loses the session', async (t) => {
  const s = await twoTenants(t);
  const bob = await s.login('bob');
  await s.req({ path: '/x', host: 'acme.ml.example.com', headers: API }, bob.browser);
  t.equal(seen(s)['x-auth-request-groups'], 'Users');
  t.equal(seen(s)['x-auth-request-admin'], 'false');

  await s.call('system.update_company_sso_config', {
    company: 'c-acme',
    sso: { group_mapping: { 'ml-users': ['Users', 'Editors'], 'ml-admins': ['Admins', 'Users'] }, admin_groups: ['ml-users'] },
  });
  await s.req({ path: '/x', host: 'acme.ml.example.com', headers: API }, bob.browser);
  t.equal(seen(s)['x-auth-request-groups'], 'Users,Editors', 'new mapping applied to the live session');
  t.equal(seen(s)['x-auth-request-admin'], 'true', 'admin_groups change applied');

  await s.call('system.update_company_sso_config', { company: 'c-acme', sso: { group_mapping: { 'ml-admins': ['Admins'] }, admin_groups: ['ml-admins'] } });
  const gone = await s.req({ path: '/x', host: 'acme.ml.example.com', headers: API }, bob.browser);
  t.equal(gone.status, 401, 'no group left under group_prohibit_user_login_if_not_in_group: the session ends');
  t.match(s.logs.text(), /"reason":"no_group".*session ended/);
});
