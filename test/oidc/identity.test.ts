import t, { type Test } from 'tap';
import type { CompanySso, ProviderConfiguration } from '../../src/directory/types.js';
import { claimsToIdentity, type IdentityResult } from '../../src/oidc/identity.js';

/** The seed's provider configuration. */
const seedProvider: ProviderConfiguration = {
  id: 'acme',
  client_id: 'acme-web',
  claim_tenant: 'tenant_key',
  claim_name: 'name',
  group_enabled: true,
  claim_groups: 'ad_groups_trusted',
  group_prohibit_user_login_if_not_in_group: true,
};

/** The seed's company settings, with the example's group names. */
const seedCompany: CompanySso = {
  tenant: 'Acme',
  group_mapping: { 'IDP group name1': 'Clearml group name1', 'IDP group name2': 'Clearml group name2' },
  admin_groups: ['IDP admin group name1', 'IDP admin group name2'],
  groups: [],
  domains: [],
  hosts: [],
};

const alice = {
  iss: 'https://idp.acme.com/realms/acme',
  sub: 'f3a1-alice',
  email: 'alice@acme.com',
  email_verified: true,
  name: 'Alice Liddell',
  tenant_key: 'acme',
  ad_groups_trusted: ['IDP group name1'],
};

function ok(t: Test, result: IdentityResult) {
  if (!result.ok) {
    t.fail(`refused: ${result.refusal.reason} (${result.refusal.detail})`);
    throw new Error('refused');
  }
  return result.identity;
}

function refused(t: Test, result: IdentityResult, reason: string) {
  t.equal(result.ok, false, `refused with ${reason}`);
  if (result.ok) throw new Error('accepted');
  t.equal(result.refusal.reason, reason);
  return result.refusal;
}

t.test("the seed's example: mapped group, name, email, external tenant id", async (t) => {
  const identity = ok(t, claimsToIdentity(alice, seedProvider, seedCompany));
  t.strictSame(identity, {
    subject: 'f3a1-alice',
    issuer: 'https://idp.acme.com/realms/acme',
    email: 'alice@acme.com',
    name: 'Alice Liddell',
    tenant: 'Acme',
    groups: ['Clearml group name1'],
    admin: false,
  });
});

t.test('tenant claim is compared case-insensitively; the saved tenant id is reported', async (t) => {
  const identity = ok(t, claimsToIdentity({ ...alice, tenant_key: 'ACME' }, seedProvider, seedCompany));
  t.equal(identity.tenant, 'Acme');
});

t.test('tenant claim of another tenant is refused', async (t) => {
  const refusal = refused(t, claimsToIdentity({ ...alice, tenant_key: 'globex' }, seedProvider, seedCompany), 'tenant_mismatch');
  t.match(refusal.message, /tenant Acme/);
  t.notMatch(refusal.message, /globex/, 'the user does not learn about other tenants');
  t.match(refusal.detail, /tenant_key/);
  t.match(refusal.detail, /globex/, 'the operator sees the value');
  refused(t, claimsToIdentity({ ...alice, tenant_key: 'acme-corp' }, seedProvider, seedCompany), 'tenant_mismatch');
  refused(t, claimsToIdentity({ ...alice, tenant_key: 'acm' }, seedProvider, seedCompany), 'tenant_mismatch');
});

t.test('missing tenant claim is refused with a hint for the operator', async (t) => {
  const { tenant_key: _omit, ...noTenant } = alice;
  const refusal = refused(t, claimsToIdentity(noTenant, seedProvider, seedCompany), 'tenant_claim_missing');
  t.match(refusal.detail, /no `tenant_key` claim/);
  t.notMatch(refusal.detail, /mapper/, 'no Keycloak word for a provider of unknown kind');
  t.match(claimsToIdentity(noTenant, seedProvider, seedCompany, 'keycloak'), { refusal: { detail: /add a mapper/ } });
  t.match(claimsToIdentity(noTenant, seedProvider, seedCompany, 'lemonldap-ng'), { refusal: { detail: /exported claims.*Force claims to be returned in ID Token/ } });
  t.match(claimsToIdentity(noTenant, seedProvider, seedCompany, 'entra'), { refusal: { detail: /optional claim.*Token configuration/ } });
  t.match(claimsToIdentity(noTenant, seedProvider, seedCompany, 'okta'), { refusal: { detail: /authorization server/ } });
  t.match(claimsToIdentity(noTenant, seedProvider, seedCompany, 'google'), { refusal: { detail: /claim_tenant to `hd`/ } });
  for (const kind of ['keycloak', 'okta', undefined]) t.match(claimsToIdentity(noTenant, seedProvider, seedCompany, kind), { refusal: { detail: /claim_tenant/ } });
  refused(t, claimsToIdentity({ ...alice, tenant_key: '' }, seedProvider, seedCompany), 'tenant_claim_missing');
  refused(t, claimsToIdentity({ ...alice, tenant_key: null }, seedProvider, seedCompany), 'tenant_claim_missing');
  refused(t, claimsToIdentity({ ...alice, tenant_key: [] }, seedProvider, seedCompany), 'tenant_claim_missing');
});

t.test('tenant claim as an array: exactly one value is accepted', async (t) => {
  ok(t, claimsToIdentity({ ...alice, tenant_key: ['acme'] }, seedProvider, seedCompany));
  const refusal = refused(t, claimsToIdentity({ ...alice, tenant_key: ['acme', 'globex'] }, seedProvider, seedCompany), 'tenant_mismatch');
  t.match(refusal.detail, /2 values/);
  refused(t, claimsToIdentity({ ...alice, tenant_key: ['globex', 'acme'] }, seedProvider, seedCompany), 'tenant_mismatch');
  refused(t, claimsToIdentity({ ...alice, tenant_key: [42] }, seedProvider, seedCompany), 'tenant_mismatch');
  refused(t, claimsToIdentity({ ...alice, tenant_key: { id: 'acme' } }, seedProvider, seedCompany), 'tenant_mismatch');
});

t.test('without claim_tenant, the tenant is read from tenant_key: the check cannot be skipped', async (t) => {
  const { claim_tenant: _omit, ...provider } = seedProvider;
  ok(t, claimsToIdentity(alice, provider, seedCompany));
  refused(t, claimsToIdentity({ ...alice, tenant_key: 'globex' }, provider, seedCompany), 'tenant_mismatch');
  const { tenant_key: _t, ...noTenant } = alice;
  refused(t, claimsToIdentity(noTenant, provider, seedCompany), 'tenant_claim_missing');
});

t.test('claim names from the configuration, nested paths followed', async (t) => {
  const provider = { ...seedProvider, claim_tenant: 'org.tenant', claim_name: 'display', claim_email: 'mail', claim_groups: 'realm_access.roles' };
  const claims = {
    sub: 'u',
    org: { tenant: 'acme' },
    display: 'Bob',
    mail: 'bob@acme.com',
    email_verified: true,
    name: 'not this one',
    realm_access: { roles: ['IDP group name2'] },
  };
  const identity = ok(t, claimsToIdentity(claims, provider, seedCompany));
  t.equal(identity.name, 'Bob');
  t.equal(identity.email, 'bob@acme.com');
  t.same(identity.groups, ['Clearml group name2']);
  refused(t, claimsToIdentity({ ...claims, org: { tenant: 'globex' } }, provider, seedCompany), 'tenant_mismatch');
  t.equal(ok(t, claimsToIdentity({ ...claims, 'org.tenant': 'acme', org: undefined }, provider, seedCompany)).tenant, 'Acme', 'a top-level claim named with dots wins');
});

t.test('subject is required', async (t) => {
  const { sub: _omit, ...noSub } = alice;
  refused(t, claimsToIdentity(noSub, seedProvider, seedCompany), 'subject_missing');
  refused(t, claimsToIdentity({ ...alice, sub: '' }, seedProvider, seedCompany), 'subject_missing');
  refused(t, claimsToIdentity({ ...alice, sub: 12 }, seedProvider, seedCompany), 'subject_missing');
});

t.test('email and name only when they are non-empty strings; unverified email dropped', async (t) => {
  const identity = ok(t, claimsToIdentity({ ...alice, email: ['a@acme.com'], name: '' }, seedProvider, seedCompany));
  t.equal(identity.email, undefined);
  t.equal(identity.name, undefined);
  t.equal(ok(t, claimsToIdentity({ ...alice, email_verified: false }, seedProvider, seedCompany)).email, undefined);
  t.equal(ok(t, claimsToIdentity({ ...alice, email_verified: true }, seedProvider, seedCompany)).email, 'alice@acme.com');
});

t.test('an email counts only when email_verified is the boolean true, unless the provider is trusted', async (t) => {
  const { email_verified: _v, ...unverified } = alice;
  for (const [what, claims] of [
    ['no email_verified claim', unverified],
    ['email_verified: "true" (a string)', { ...alice, email_verified: 'true' }],
    ['email_verified: 1', { ...alice, email_verified: 1 }],
    ['email_verified: false', { ...alice, email_verified: false }],
  ] as const) {
    const result = claimsToIdentity(claims, seedProvider, seedCompany);
    t.equal(ok(t, result).email, undefined, `${what}: no email`);
    t.equal(ok(t, result).subject, 'f3a1-alice', `${what}: the subject stays`);
    t.match(result.ok && result.emailDropped, /email_verified/, `${what}: the reason is given for the audit log`);
  }
  const trusted = { ...seedProvider, trust_unverified_email: true };
  const taken = claimsToIdentity(unverified, trusted, seedCompany);
  t.equal(ok(t, taken).email, 'alice@acme.com', 'trust_unverified_email: a missing claim is vouched for');
  t.equal(taken.ok && taken.emailDropped, undefined, 'and nothing is reported');
  t.equal(ok(t, claimsToIdentity({ ...alice, email_verified: false }, trusted, seedCompany)).email, undefined, 'an explicit false is never overridden');
  t.equal(ok(t, claimsToIdentity({ ...alice, iss: undefined }, seedProvider, seedCompany)).issuer, '', 'no iss: an empty issuer');
});

t.test('one IdP group may give several ClearML groups; results de-duplicated in order', async (t) => {
  const company: CompanySso = {
    ...seedCompany,
    group_mapping: {
      'ml-team': ['engineers', 'viewers'],
      'data-team': 'viewers',
      '/acme/ops': ['operators', 'engineers'],
    },
  };
  const identity = ok(
    t,
    claimsToIdentity({ ...alice, ad_groups_trusted: ['ml-team', 'data-team', '/acme/ops'] }, seedProvider, company),
  );
  t.same(identity.groups, ['engineers', 'viewers', 'operators']);
});

t.test('unmapped IdP groups count only when they name a group of the tenant', async (t) => {
  const company: CompanySso = { ...seedCompany, groups: ['researchers'] };
  const identity = ok(
    t,
    claimsToIdentity({ ...alice, ad_groups_trusted: ['researchers', 'IDP group name2', 'random-ad-group'] }, seedProvider, company),
  );
  t.same(identity.groups, ['researchers', 'Clearml group name2']);
  const viaValue = ok(t, claimsToIdentity({ ...alice, ad_groups_trusted: ['Clearml group name1'] }, seedProvider, seedCompany));
  t.same(viaValue.groups, ['Clearml group name1'], 'an IdP group already named like a tenant group is kept');
});

t.test('group names are case-sensitive and kept as given', async (t) => {
  const company: CompanySso = { ...seedCompany, group_mapping: { '/Admins': 'admins' }, admin_groups: ['/Admins'] };
  const upper = ok(t, claimsToIdentity({ ...alice, ad_groups_trusted: ['/Admins'] }, { ...seedProvider, group_prohibit_user_login_if_not_in_group: false }, company));
  t.same(upper.groups, ['admins']);
  t.equal(upper.admin, true);
  const lower = ok(t, claimsToIdentity({ ...alice, ad_groups_trusted: ['/admins'] }, { ...seedProvider, group_prohibit_user_login_if_not_in_group: false }, company));
  t.same(lower.groups, []);
  t.equal(lower.admin, false);
});

t.test('admin: any raw IdP group in admin_groups', async (t) => {
  const company: CompanySso = { ...seedCompany, group_mapping: { ...seedCompany.group_mapping, 'IDP admin group name2': 'Clearml group name1' } };
  const admin = ok(t, claimsToIdentity({ ...alice, ad_groups_trusted: ['IDP admin group name2'] }, seedProvider, company));
  t.equal(admin.admin, true);
  t.same(admin.groups, ['Clearml group name1']);
  const notAdmin = ok(t, claimsToIdentity({ ...alice, ad_groups_trusted: ['IDP group name1'] }, seedProvider, company));
  t.equal(notAdmin.admin, false);
  const translatedOnly = { ...company, admin_groups: ['Clearml group name1'] };
  t.equal(
    ok(t, claimsToIdentity({ ...alice, ad_groups_trusted: ['IDP group name1'] }, seedProvider, translatedOnly)).admin,
    false,
    'admin_groups are IdP names, not translated ones',
  );
});

t.test('prohibit flag: a user in no group of the tenant is refused', async (t) => {
  const refusal = refused(t, claimsToIdentity({ ...alice, ad_groups_trusted: ['some-other-group'] }, seedProvider, seedCompany), 'no_group');
  t.match(refusal.message, /isn't in any group/);
  t.match(refusal.detail, /ad_groups_trusted/);
  t.match(refusal.detail, /Clearml group name1/, 'the operator sees the tenant groups');
  refused(t, claimsToIdentity({ ...alice, ad_groups_trusted: [] }, seedProvider, seedCompany), 'no_group');
  const adminOnly = refused(
    t,
    claimsToIdentity({ ...alice, ad_groups_trusted: ['IDP admin group name1'] }, seedProvider, seedCompany),
    'no_group',
  );
  t.match(adminOnly.detail, /admin group/, 'an admin group alone does not admit a login, and the detail says so');
});

t.test('prohibit flag: a missing groups claim is refused', async (t) => {
  const { ad_groups_trusted: _omit, ...noGroups } = alice;
  const refusal = refused(t, claimsToIdentity(noGroups, seedProvider, seedCompany), 'groups_claim_missing');
  t.match(refusal.detail, /no `ad_groups_trusted` claim/);
  refused(t, claimsToIdentity({ ...alice, ad_groups_trusted: { a: 1 } }, seedProvider, seedCompany), 'groups_claim_missing');
});

t.test('without the prohibit flag, users without groups log in with none', async (t) => {
  const provider = { ...seedProvider, group_prohibit_user_login_if_not_in_group: false };
  const { ad_groups_trusted: _omit, ...noGroups } = alice;
  t.same(ok(t, claimsToIdentity(noGroups, provider, seedCompany)).groups, []);
  t.same(ok(t, claimsToIdentity({ ...alice, ad_groups_trusted: ['unknown'] }, provider, seedCompany)).groups, []);
});

t.test('a single string groups claim counts as one group', async (t) => {
  t.same(ok(t, claimsToIdentity({ ...alice, ad_groups_trusted: 'IDP group name2' }, seedProvider, seedCompany)).groups, [
    'Clearml group name2',
  ]);
});

t.test('default groups claim is `groups`', async (t) => {
  const { claim_groups: _omit, ...provider } = seedProvider;
  const identity = ok(t, claimsToIdentity({ ...alice, ad_groups_trusted: [], groups: ['IDP group name1'] }, provider, seedCompany));
  t.same(identity.groups, ['Clearml group name1']);
});

t.test('without group_enabled: no groups read, not admin, never refused for groups', async (t) => {
  const provider = { ...seedProvider, group_enabled: false };
  const identity = ok(t, claimsToIdentity({ ...alice, ad_groups_trusted: ['IDP admin group name1', 'IDP group name1'] }, provider, seedCompany));
  t.same(identity.groups, []);
  t.equal(identity.admin, false);
  const { ad_groups_trusted: _omit, ...noGroups } = alice;
  ok(t, claimsToIdentity(noGroups, provider, seedCompany));
  refused(t, claimsToIdentity({ ...alice, tenant_key: 'globex' }, provider, seedCompany), 'tenant_mismatch');
});

t.test('group names that are Object.prototype keys are plain names', async (t) => {
  const provider = { ...seedProvider, group_prohibit_user_login_if_not_in_group: false };
  const identity = ok(t, claimsToIdentity({ ...alice, ad_groups_trusted: ['constructor', 'toString', '__proto__'] }, provider, seedCompany));
  t.same(identity.groups, []);
  t.equal(identity.admin, false);
});

t.test('the tenant claim is compared with ASCII-only case folding: look-alikes never match', async (t) => {
  const kiwi: CompanySso = { ...seedCompany, tenant: 'kiwi' };
  const claims = (tenant_key: string) => ({ ...alice, tenant_key });
  t.ok(claimsToIdentity(claims('KIWI'), seedProvider, kiwi).ok, 'ASCII case differences are the same tenant');
  const lookAlikes: Array<[string, string]> = [
    ['\u212Aiwi', 'KELVIN SIGN for K'],
    ['k\u0131wi', 'dotless i'],
    ['\uFF4B\uFF49\uFF57\uFF49', 'full-width letters'],
    ['kiwi.', 'a trailing dot'],
    ['kiwi ', 'a trailing space'],
    ['k\u0130wi', 'capital I with a dot'],
  ];
  for (const [claim] of lookAlikes) refused(t, claimsToIdentity(claims(claim), seedProvider, kiwi), 'tenant_mismatch');
  t.equal(lookAlikes.length, 6);
});
