import t from 'tap';
import { adminCall, ADMIN_KEY, seedPayloads, startGateway, tempDir } from '../helpers/gateway.js';

const KC = 'https://keycloak.acme.com';
const acme = seedPayloads({ company: 'c-acme', tenant: 'acme', clientId: 'acme-webapp', secret: 'acme-client-secret-XYZ', kc: KC });
const globex = seedPayloads({ company: 'c-globex', tenant: 'globex', clientId: 'globex-webapp', secret: 'globex-client-secret-QQQ', kc: KC });

t.test('the seed payloads are accepted verbatim and read back without the secret', async (t) => {
  const { adminUrl, logs } = await startGateway(t);
  const r1 = await adminCall(adminUrl, 'system.update_company_sso_config', acme.company);
  t.equal(r1.status, 200);
  t.equal(r1.meta.result_code, 200);
  t.equal(r1.meta.result_subcode, 0);
  t.match(r1.meta, { endpoint: { name: 'system.update_company_sso_config' }, error_stack: null });
  const r2 = await adminCall(adminUrl, 'sso.save_provider_configuration', acme.provider);
  t.equal(r2.status, 200);

  const company = await adminCall(adminUrl, 'system.get_company_sso_config', { company: 'c-acme' });
  t.equal(company.data.sso.tenant, 'acme');
  t.same(company.data.sso.group_mapping, { 'IDP group name1': 'Clearml group name1', 'IDP group name2': 'Clearml group name2' });
  t.same(company.data.sso.admin_groups, ['IDP admin group name1', 'IDP admin group name2']);

  const provider = await adminCall(adminUrl, 'sso.get_provider_configuration', { company: 'c-acme', id: 'c-acme' });
  t.equal(provider.status, 200);
  const cfg = provider.data.configuration;
  t.equal(cfg.client_id, 'acme-webapp');
  t.equal(cfg.claim_groups, 'ad_groups_trusted');
  t.equal(cfg.group_prohibit_user_login_if_not_in_group, true);
  t.equal(cfg.has_client_secret, true);
  t.notOk('client_secret' in cfg);

  const all = await adminCall(adminUrl, 'sso.get_all_provider_configurations', {});
  t.equal(all.data.providers.length, 1);
  const everything = JSON.stringify([r1, r2, company, provider, all]);
  t.notMatch(everything, 'acme-client-secret-XYZ', 'no response carries the secret');
  t.notMatch(logs.text(), 'acme-client-secret-XYZ', 'no log line carries the secret');
  t.notMatch(logs.text(), 'admin-secret-value', 'no log line carries the admin secret');
});

t.test('version prefix, debug.ping without auth, unknown endpoints', async (t) => {
  const { adminUrl } = await startGateway(t);
  const ping = await adminCall(adminUrl, 'debug.ping', {}, null);
  t.equal(ping.status, 200);
  const versioned = await adminCall(adminUrl, 'v2.31/system.update_company_sso_config', acme.company);
  t.equal(versioned.status, 200);
  t.match(versioned.meta, { endpoint: { requested_version: '2.31' } });
  const unknown = await adminCall(adminUrl, 'system.no_such_call', {});
  t.equal(unknown.status, 404);
  t.equal(unknown.meta.result_code, 404);
  t.equal(unknown.meta.result_subcode, 0);
  const badVersion = await adminCall(adminUrl, 'vX/debug.ping', {});
  t.equal(badVersion.status, 404);
  const deep = await adminCall(adminUrl, 'a/b/c', {});
  t.equal(deep.status, 404);
});

t.test('credentials: missing 401/20, wrong 401/21, and nothing changes', async (t) => {
  const { adminUrl } = await startGateway(t);
  const missing = await adminCall(adminUrl, 'system.update_company_sso_config', acme.company, null);
  t.equal(missing.status, 401);
  t.equal(missing.meta.result_subcode, 20);
  const wrong = await adminCall(adminUrl, 'system.update_company_sso_config', acme.company, `${ADMIN_KEY}:nope-nope`);
  t.equal(wrong.status, 401);
  t.equal(wrong.meta.result_subcode, 21);
  const wrongKey = await adminCall(adminUrl, 'system.get_company_sso_config', { company: 'c-acme' }, 'other:admin-secret-value');
  t.equal(wrongKey.meta.result_subcode, 21);
  const read = await adminCall(adminUrl, 'system.get_company_sso_config', { company: 'c-acme' });
  t.equal(read.status, 404, 'the refused write created nothing');
});

t.test('bad payloads: 400/11 for missing fields, 400/12 with the field, malformed JSON; nothing changed', async (t) => {
  const { adminUrl } = await startGateway(t, { oidc: { insecureAllowPrivateProviders: false } });
  await adminCall(adminUrl, 'system.update_company_sso_config', acme.company);
  const cases: Array<[string, unknown, number, string?]> = [
    ['system.update_company_sso_config', { sso: { tenant: 'x' } }, 11, 'company'],
    ['system.update_company_sso_config', { company: 'new', sso: {} }, 11, 'sso.tenant'],
    ['system.update_company_sso_config', { company: 'c-acme', sso: { tenant: 'bad tenant!' } }, 12, 'sso.tenant'],
    ['system.update_company_sso_config', { company: 'c-acme', sso: { tenant: 'acme', bogus: 1 } }, 12, 'sso.bogus'],
    ['system.update_company_sso_config', { company: 'c-acme', sso: { domains: ['not a domain'] } }, 12, 'sso.domains.0'],
    ['system.update_company_sso_config', { company: 'c-acme', sso: { hosts: ['x.ml.example.com'] } }, 12, 'sso.hosts.0'],
    ['system.update_company_sso_config', { company: 'c-acme', sso: { group_mapping: { a: 5 } } }, 12],
    ['system.update_company_sso_config', '{"company": "c-acme", "sso": {', 12],
    ['system.update_company_sso_config', '[1,2]', 12],
    ['sso.save_provider_configuration', { provider: 'keycloak', company: 'c-acme', configuration: { id: 'p' } }, 11, 'configuration.client_id'],
    ['sso.save_provider_configuration', { provider: 'keycloak', company: 'c-acme', configuration: { id: 'p', client_id: 'c', issuer: 'http://idp.example.com/realms/x' } }, 12, 'configuration.issuer'],
    ['sso.save_provider_configuration', { provider: 'keycloak', company: 'c-acme', configuration: { id: 'p', client_id: 'c', issuer: 'https://u:p@idp.example.com/' } }, 12, 'configuration.issuer'],
    ['sso.save_provider_configuration', { provider: 'keycloak', company: 'c-acme', configuration: { id: 'p', client_id: 'a/b', issuer: 'https://idp.example.com' } }, 12, 'configuration.client_id'],
    ['sso.save_provider_configuration', { provider: 'keycloak', company: 'c-acme', configuration: { id: 'p', client_id: 'c' } }, 11],
    ['sso.save_provider_configuration', { provider: 'keycloak', company: 'c-acme', configuration: { id: 'p', client_id: 'c', issuer: 'https://i.example.com', logout_from_provider: 'yes' } }, 12, 'configuration.logout_from_provider'],
  ];
  for (const [endpoint, body, subcode, field] of cases) {
    const r = await adminCall(adminUrl, endpoint, body);
    t.equal(r.status, 400, `${JSON.stringify(body)} -> 400`);
    t.equal(r.meta.result_subcode, subcode, `${JSON.stringify(body)} -> subcode ${subcode}`);
    if (field) t.match(r.meta.result_msg, field, `names ${field}`);
  }
  const read = await adminCall(adminUrl, 'system.get_company_sso_config', { company: 'c-acme' });
  t.equal(read.data.sso.tenant, 'acme');
  t.same(read.data.sso.domains, []);
  const providers = await adminCall(adminUrl, 'sso.get_all_provider_configurations', {});
  t.same(providers.data.providers, []);
});

t.test('http and private identity provider URLs only with oidc.insecureAllowPrivateProviders', async (t) => {
  const insecure = await startGateway(t, { oidc: { insecureAllowPrivateProviders: true } });
  const strict = await startGateway(t, { oidc: { insecureAllowPrivateProviders: false } });
  const urls = ['http://127.0.0.1:8080/realms/a', 'http://localhost:9000', 'http://[::1]:9000/x', 'http://kc.example.com/', 'https://10.0.0.5/realms/a', 'https://169.254.169.254/x', 'https://localhost/x'];
  for (const [i, issuer] of urls.entries()) {
    const body = { provider: 'oidc', company: 'c', configuration: { id: `p${i}`, client_id: `c${i}`, issuer } };
    t.equal((await adminCall(insecure.adminUrl, 'sso.save_provider_configuration', body)).status, 200, `insecure: ${issuer}`);
    const r = await adminCall(strict.adminUrl, 'sso.save_provider_configuration', body);
    t.equal(r.status, 400, `strict: ${issuer}`);
    t.equal(r.meta.result_subcode, 12);
    t.match(r.meta.result_msg, /configuration\.issuer/);
  }
  const token = { provider: 'oidc', company: 'c', configuration: { id: 't', client_id: 't', issuer: 'https://idp.example.com', token_endpoint: 'https://192.168.1.1/token' } };
  const r = await adminCall(strict.adminUrl, 'sso.save_provider_configuration', token);
  t.equal(r.status, 400);
  t.match(r.meta.result_msg, /configuration\.token_endpoint .*private/);
});

t.test('provider fields of the gateway: client authentication, claims source, ID token algorithm', async (t) => {
  const { adminUrl } = await startGateway(t);
  const save = (configuration: Record<string, unknown>) =>
    adminCall(adminUrl, 'sso.save_provider_configuration', { provider: 'okta', company: 'c', configuration: { id: 'p', client_id: 'umbrella-client', issuer: 'https://acme.okta.com', ...configuration } });
  for (const method of ['client_secret_basic', 'client_secret_post']) {
    t.equal((await save({ client_secret: 's3cret', token_endpoint_auth_method: method })).status, 200, method);
  }
  t.equal((await save({ token_endpoint_auth_method: 'none' })).status, 200, 'none');
  t.equal((await save({ token_endpoint_auth_method: 'client_secret_post' })).status, 200, 'the stored secret is kept and counts');
  let r = await save({ token_endpoint_auth_method: 'private_key_jwt' });
  t.equal(r.status, 400, 'private_key_jwt without a key the gateway holds');
  t.match(r.meta.result_msg, /configuration\.token_endpoint_auth_method .*oidc\.clientAssertionKeyFile/);
  r = await save({ token_endpoint_auth_method: 'client_secret_jwt' });
  t.equal(r.status, 400);
  t.match(r.meta.result_msg, /configuration\.token_endpoint_auth_method/);
  for (const source of ['id_token', 'userinfo', 'both']) t.equal((await save({ claims_source: source })).status, 200, source);
  t.match((await save({ claims_source: 'session' })).meta.result_msg, /configuration\.claims_source/);
  t.equal((await save({ id_token_signed_response_alg: 'ES256' })).status, 200);
  t.match((await save({ id_token_signed_response_alg: 'none' })).meta.result_msg, /configuration\.id_token_signed_response_alg/);
  t.match((await save({ id_token_signed_response_alg: 'HS512' })).meta.result_msg, /configuration\.id_token_signed_response_alg/);

  const fresh = await adminCall(adminUrl, 'sso.save_provider_configuration', {
    provider: 'oidc', company: 'c', configuration: { id: 'q', client_id: 'q', issuer: 'https://idp.example.com', token_endpoint_auth_method: 'client_secret_basic' },
  });
  t.equal(fresh.status, 400, 'basic without any secret');
  t.match(fresh.meta.result_msg, /needs configuration\.client_secret/);
});

t.test('authenticate mode: a provider whose issuer can neither be read nor derived is refused at save', async (t) => {
  const { adminUrl } = await startGateway(t, { mode: 'authenticate', session: { secret: 'a-session-secret-of-at-least-32-characters' } });
  const r = await adminCall(adminUrl, 'sso.save_provider_configuration', {
    provider: 'okta', company: 'c', configuration: { id: 'p', client_id: 'p', client_secret: 's', authorization_endpoint: 'https://acme.okta.com/oauth2/v1/authorize' },
  });
  t.equal(r.status, 400);
  t.equal(r.meta.result_subcode, 12);
  t.match(r.meta.result_msg, /configuration\.issuer is required/);
  const keycloak = await adminCall(adminUrl, 'sso.save_provider_configuration', {
    provider: 'keycloak', company: 'c', configuration: { id: 'k', client_id: 'k', client_secret: 's', authorization_endpoint: 'https://kc.acme.com/realms/acme/protocol/openid-connect/auth' },
  });
  t.equal(keycloak.status, 200, 'a Keycloak endpoint gives the issuer');
});

t.test('uniqueness: tenant, domain, host and client_id each belong to one company', async (t) => {
  const { adminUrl } = await startGateway(t);
  t.equal((await adminCall(adminUrl, 'system.update_company_sso_config', { company: 'c-acme', sso: { tenant: 'acme', domains: ['acme.com'], hosts: ['ml.acme.com'] } })).status, 200);
  await adminCall(adminUrl, 'sso.save_provider_configuration', acme.provider);
  const conflicts: Array<[unknown, number, string]> = [
    [{ company: 'c-globex', sso: { tenant: 'ACME' } }, 1, 'tenant'],
    [{ company: 'c-globex', sso: { tenant: 'globex', domains: ['globex.com', 'ACME.com.'] } }, 2, 'domain'],
    [{ company: 'c-globex', sso: { tenant: 'globex', hosts: ['ML.acme.com'] } }, 3, 'host'],
  ];
  for (const [body, subcode, field] of conflicts) {
    const r = await adminCall(adminUrl, 'system.update_company_sso_config', body);
    t.equal(r.status, 409, `${field} conflict is 409`);
    t.equal(r.meta.result_subcode, subcode);
    t.equal(r.meta.error_data.field, field);
  }
  t.equal((await adminCall(adminUrl, 'system.get_company_sso_config', { company: 'c-globex' })).status, 404, 'no partial company created');
  const steal = globex.provider.replace('"client_id": "globex-webapp"', '"client_id": "acme-webapp"');
  const r = await adminCall(adminUrl, 'sso.save_provider_configuration', steal);
  t.equal(r.status, 409);
  t.equal(r.meta.result_subcode, 4);
  const owner = await adminCall(adminUrl, 'system.get_company_sso_config', { company: 'c-acme' });
  t.same(owner.data.sso.domains, ['acme.com']);
  t.same(owner.data.sso.hosts, ['ml.acme.com']);
  t.equal((await adminCall(adminUrl, 'sso.get_provider_configuration', { company: 'c-globex', id: 'c-globex' })).status, 404);
});

t.test('updates merge; a provider saved without a secret keeps its secret; deletes', async (t) => {
  const { adminUrl, gateway } = await startGateway(t);
  await adminCall(adminUrl, 'system.update_company_sso_config', acme.company);
  await adminCall(adminUrl, 'system.update_company_sso_config', { company: 'c-acme', sso: { domains: ['Acme.COM'] } });
  const c = await adminCall(adminUrl, 'system.get_company_sso_config', { company: 'c-acme' });
  t.equal(c.data.sso.tenant, 'acme', 'tenant kept');
  t.same(c.data.sso.domains, ['acme.com'], 'domain normalised');
  t.same(c.data.sso.admin_groups, ['IDP admin group name1', 'IDP admin group name2'], 'admin groups kept');

  await adminCall(adminUrl, 'sso.save_provider_configuration', acme.provider);
  const noSecret = JSON.parse(acme.provider) as { configuration: Record<string, unknown> };
  delete noSecret.configuration.client_secret;
  noSecret.configuration.display_name = 'Acme SSO';
  t.equal((await adminCall(adminUrl, 'sso.save_provider_configuration', noSecret)).status, 200);
  const stored = await gateway.store.getProvider('c-acme', 'c-acme');
  t.equal(stored?.configuration.client_secret, 'acme-client-secret-XYZ');
  t.equal(stored?.configuration.display_name, 'Acme SSO');

  t.equal((await adminCall(adminUrl, 'sso.delete_provider_configuration', { company: 'c-acme', id: 'c-acme' })).status, 200);
  t.equal((await adminCall(adminUrl, 'sso.delete_provider_configuration', { company: 'c-acme', id: 'c-acme' })).status, 404);
  t.equal((await adminCall(adminUrl, 'system.delete_company_sso_config', { company: 'c-acme' })).status, 200);
  t.equal((await adminCall(adminUrl, 'system.get_company_sso_config', { company: 'c-acme' })).status, 404);
});

t.test('writes invalidate the directory cache at once', async (t) => {
  const { adminUrl, gateway } = await startGateway(t);
  t.equal(await gateway.directory.tenant('acme'), undefined);
  await adminCall(adminUrl, 'system.update_company_sso_config', { company: 'c-acme', sso: { tenant: 'acme', domains: ['acme.com'] } });
  t.equal((await gateway.directory.tenant('ACME'))?.company.company, 'c-acme', 'cached miss dropped');
  t.equal(await gateway.directory.tenantByDomain('acme.com'), 'acme');
  await adminCall(adminUrl, 'system.update_company_sso_config', { company: 'c-acme', sso: { tenant: 'acme-corp', domains: [] } });
  t.equal(await gateway.directory.tenant('acme'), undefined, 'old tenant gone');
  t.equal(await gateway.directory.tenantByDomain('acme.com'), undefined, 'dropped domain gone');
  await adminCall(adminUrl, 'sso.save_provider_configuration', acme.provider);
  t.equal((await gateway.directory.client('acme-webapp'))?.tenant, 'acme-corp');
  t.equal((await gateway.directory.tenant('acme-corp'))?.providers.length, 1, 'tenant sees its new provider');
});

t.test('data persists across a restart on the same SQLite file', async (t) => {
  const dir = tempDir(t);
  const first = await startGateway(t, {}, { dir });
  await adminCall(first.adminUrl, 'system.update_company_sso_config', acme.company);
  await adminCall(first.adminUrl, 'sso.save_provider_configuration', acme.provider);
  await first.gateway.close();
  const second = await startGateway(t, {}, { dir });
  const c = await adminCall(second.adminUrl, 'system.get_company_sso_config', { company: 'c-acme' });
  t.equal(c.data.sso.tenant, 'acme');
  const p = await adminCall(second.adminUrl, 'sso.get_provider_configuration', { company: 'c-acme', id: 'c-acme' });
  t.equal(p.data.configuration.client_id, 'acme-webapp');
});

t.test('health, readiness and metrics on the admin listener', async (t) => {
  const { adminUrl, gateway } = await startGateway(t);
  t.equal((await fetch(`${adminUrl}/healthz`)).status, 200);
  t.equal((await fetch(`${adminUrl}/readyz`)).status, 200);
  await gateway.directory.tenant('acme');
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  t.match(text, /tenant_gate_directory_lookups_total\{kind="tenant",result="miss"\} 1/);
  t.match(text, /process_cpu_user_seconds_total/);
});

t.test('repeated authentication failures are slowed down; valid credentials still work after', async (t) => {
  const { adminUrl } = await startGateway(t);
  const timed = async (auth: string) => {
    const started = Date.now();
    const r = await adminCall(adminUrl, 'system.get_company_sso_config', { company: 'x' }, auth);
    return { status: r.status, ms: Date.now() - started };
  };
  for (let i = 0; i < 5; i++) t.equal((await timed(`${ADMIN_KEY}:wrong-${i}`)).status, 401);
  const fast = await timed(`${ADMIN_KEY}:wrong-again`);
  const slower = await timed(`${ADMIN_KEY}:wrong-again-2`);
  t.ok(fast.ms >= 90, `the 6th failure waits (${fast.ms} ms)`);
  t.ok(slower.ms >= 190, `and the wait doubles (${slower.ms} ms)`);
  const ok = await timed(`${ADMIN_KEY}:admin-secret-value`);
  t.equal(ok.status, 404, 'the right credentials are still accepted');
  t.ok((await timed(`${ADMIN_KEY}:admin-secret-value`)).ms < 90, 'a success clears the slowdown');
});

t.test('an OpenAPI description of every endpoint is served', async (t) => {
  const { adminUrl } = await startGateway(t);
  const doc = (await (await fetch(`${adminUrl}/openapi.json`)).json()) as { openapi: string; paths: Record<string, { post: { requestBody?: { content: Record<string, { schema: { properties: Record<string, unknown> } }> } } }> };
  t.equal(doc.openapi, '3.1.0');
  for (const ep of ['system.update_company_sso_config', 'sso.save_provider_configuration', 'sso.get_all_provider_configurations', 'debug.ping']) t.ok(doc.paths[`/${ep}`], ep);
  const save = doc.paths['/sso.save_provider_configuration']!.post.requestBody!.content['application/json']!.schema;
  t.ok(save.properties.configuration, 'request schemas are the validating ones');
});
