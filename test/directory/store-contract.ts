/**
 * The behaviour every `TenantStore` backend must show, as one reusable tap suite.
 *
 * Each subtest gets a fresh, empty store from the factory, so subtests do not depend
 * on each other. Nothing here depends on a particular database.
 */
import { ConflictError, StoreUnavailableError } from '../../src/errors.js';
import type { ConflictField } from '../../src/errors.js';
import type { Company, CompanySso, Provider, ProviderConfiguration, SigningKey, TenantStore } from '../../src/directory/types.js';

type Test = import('tap').Test;

/** What a backend's factory hands to the contract for one subtest. */
export interface StoreUnderTest {
  /** An initialised store over empty storage. */
  store: TenantStore;
  /** Closes every store this factory (and `reopen`) made, tolerating closed ones, and removes the storage. */
  cleanup: () => Promise<void>;
  /**
   * A new, initialised store over the same storage as `store`. The contract closes
   * `store` before calling it. Leave it out when the storage does not outlive a store
   * (an in-memory database); the persistence subtest is then skipped.
   */
  reopen?: () => Promise<TenantStore>;
}

/** The seed's `system.update_company_sso_config` payload, with the gateway's extensions filled in. */
export function seedCompany(company: string, tenant: string, sso: Partial<CompanySso> = {}): Company {
  const name = tenant.toLowerCase();
  return {
    company,
    sso: {
      tenant,
      group_mapping: {
        'IDP group name1': 'Clearml group name1',
        'IDP engineers': ['engineering', 'ml-platform'],
      },
      admin_groups: ['IDP admin group name1', 'IDP admin group name2'],
      groups: ['viewers'],
      domains: [`${name}.com`],
      hosts: [`ml.${name}.com`],
      display_name: `${tenant} Inc.`,
      ...sso,
    },
  };
}

/** The seed's `sso.save_provider_configuration` payload, with `issuer`, `jwks_uri` and every optional field. */
export function seedProvider(
  company: string,
  id: string,
  clientId: string,
  configuration: Partial<ProviderConfiguration> = {},
): Provider {
  const realm = `https://idp.example.com/realms/${company}`;
  return {
    company,
    provider: 'keycloak',
    configuration: {
      id,
      display_name: `Log in to ${company}`,
      client_id: clientId,
      client_secret: `secret-of-${clientId}`,
      authorization_endpoint: `${realm}/protocol/openid-connect/auth`,
      token_endpoint: `${realm}/protocol/openid-connect/token`,
      revocation_endpoint: `${realm}/protocol/openid-connect/revoke`,
      end_session_endpoint: `${realm}/protocol/openid-connect/logout`,
      userinfo_endpoint: `${realm}/protocol/openid-connect/userinfo`,
      issuer: realm,
      jwks_uri: `${realm}/protocol/openid-connect/certs`,
      logout_from_provider: true,
      claim_tenant: 'tenant_key',
      claim_name: 'name',
      claim_email: 'email',
      group_enabled: true,
      claim_groups: 'ad_groups_trusted',
      group_prohibit_user_login_if_not_in_group: true,
      scope: 'openid email profile',
      ...configuration,
    },
  };
}

function withoutTime<T extends { updatedAt?: number }>(record: T | undefined): Omit<T, 'updatedAt'> | undefined {
  if (record === undefined) return undefined;
  const { updatedAt: _ignored, ...rest } = record;
  return rest;
}

async function expectConflict(
  t: Test,
  write: Promise<unknown>,
  field: ConflictField,
  value: string,
  message: string,
): Promise<void> {
  const err = await write.then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof ConflictError, `${message}: rejected with a ConflictError`);
  t.match(err, { field, value, statusCode: 409 }, `${message}: names ${field} "${value}"`);
}

/**
 * Runs the contract as one subtest of `t` called `name`. `makeStore` is called once
 * per subtest and must give an initialised, empty store.
 */
export function runTenantStoreContract(
  t: Test,
  name: string,
  makeStore: () => Promise<StoreUnderTest>,
): Promise<unknown> {
  return t.test(name, async (t) => {
    const open = async (t: Test): Promise<StoreUnderTest> => {
      const made = await makeStore();
      t.teardown(made.cleanup);
      return made;
    };

    t.test('round-trips a company with every field of the seed payload', async (t) => {
      const { store } = await open(t);
      const acme = seedCompany('c-acme', 'Acme', { hosts: ['ml.acme.com', 'acme.ml.example.com'] });
      const before = Date.now();
      await store.putCompany({ ...acme, updatedAt: 1 });
      const after = Date.now();

      const got = await store.getCompany('c-acme');
      t.strictSame(withoutTime(got), acme, 'every field comes back as saved');
      t.ok(got?.updatedAt !== undefined && got.updatedAt >= before && got.updatedAt <= after, 'updatedAt is set by the store');
      t.strictSame(await store.listCompanies(), [got], 'listed as stored');
      t.equal(await store.getCompany('c-nobody'), undefined, 'an unknown company is undefined');
    });

    t.test('updateCompany and updateProvider merge atomically, even when many run at once', async (t) => {
      const { store } = await open(t);
      await store.putCompany(seedCompany('c-acme', 'Acme', { domains: [], hosts: [], admin_groups: [] }));
      const keys = Array.from({ length: 12 }, (_, i) => `admins-${i}`);
      await Promise.all(
        keys.map((k) =>
          store.updateCompany('c-acme', (previous) => {
            const sso = previous!.sso;
            return { company: 'c-acme', sso: { ...sso, admin_groups: [...sso.admin_groups, k] } };
          }),
        ),
      );
      const merged = await store.getCompany('c-acme');
      t.same([...merged!.sso.admin_groups].sort(), [...keys].sort(), 'no concurrent merge was lost');
      const created = await store.updateCompany('c-new', (previous) => {
        t.equal(previous, undefined, 'a new company has no previous record');
        return seedCompany('c-new', 'New', { domains: ['new.com'], hosts: [] });
      });
      t.equal(created.current?.sso.tenant, 'New');
      await t.rejects(
        store.updateCompany('c-new', () => {
          throw new Error('refused by the merge');
        }),
        /refused by the merge/,
      );
      await expectConflict(t, store.updateCompany('c-new', (p) => ({ ...p!, sso: { ...p!.sso, tenant: 'acme' } })), 'tenant', 'acme', 'a merge that takes a tenant');
      t.equal((await store.getCompany('c-new'))?.sso.tenant, 'New', 'a refused merge changed nothing');

      await store.putProvider(seedProvider('c-acme', 'acme-sso', 'acme-web'));
      const updated = await store.updateProvider('c-acme', 'acme-sso', (previous) => ({
        ...previous!,
        configuration: { ...previous!.configuration, display_name: 'Renamed' },
      }));
      t.equal(updated.current?.configuration.display_name, 'Renamed');
      t.equal(updated.previous?.configuration.client_secret, updated.current?.configuration.client_secret, 'the rest of the record kept');
    });

    t.test('round-trips a provider with every configuration field', async (t) => {
      const { store } = await open(t);
      const provider = seedProvider('c-acme', 'acme-sso', 'acme-web');
      const before = Date.now();
      await store.putProvider({ ...provider, updatedAt: 1 });
      const after = Date.now();

      const got = await store.getProvider('c-acme', 'acme-sso');
      t.strictSame(withoutTime(got), provider, 'every configuration field comes back as saved');
      t.ok(got?.updatedAt !== undefined && got.updatedAt >= before && got.updatedAt <= after, 'updatedAt is set by the store');
      t.equal(await store.getProvider('c-acme', 'other'), undefined, 'an unknown id is undefined');
      t.equal(await store.getProvider('c-other', 'acme-sso'), undefined, 'the id is scoped to its company');
    });

    t.test('leaves out optional fields given as undefined', async (t) => {
      const { store } = await open(t);
      await store.putCompany({
        company: 'c-bare',
        sso: { tenant: 'bare', group_mapping: {}, admin_groups: [], groups: [], domains: [], hosts: [], display_name: undefined },
      });
      await store.putProvider({
        company: 'c-bare',
        provider: 'keycloak',
        configuration: { id: 'bare', client_id: 'bare-web', client_secret: undefined, issuer: undefined, scope: undefined },
      });

      t.strictSame(withoutTime(await store.getCompany('c-bare')), {
        company: 'c-bare',
        sso: { tenant: 'bare', group_mapping: {}, admin_groups: [], groups: [], domains: [], hosts: [] },
      });
      t.strictSame(withoutTime(await store.getProvider('c-bare', 'bare')), {
        company: 'c-bare',
        provider: 'keycloak',
        configuration: { id: 'bare', client_id: 'bare-web' },
      });
      const found = await store.findTenant('bare');
      t.strictSame(withoutTime(found?.providers[0])?.configuration, { id: 'bare', client_id: 'bare-web' }, 'the same from findTenant');
    });

    t.test('finds a tenant case-insensitively with all of its providers', async (t) => {
      const { store } = await open(t);
      await store.putCompany(seedCompany('c-acme', 'Acme'));
      await store.putCompany(seedCompany('c-beta', 'beta'));
      await store.putProvider(seedProvider('c-acme', 'zeta', 'acme-zeta'));
      await store.putProvider(seedProvider('c-acme', 'alpha', 'acme-alpha'));
      await store.putProvider(seedProvider('c-beta', 'beta', 'beta-web'));

      const company = await store.getCompany('c-acme');
      const providers = await store.listProviders('c-acme');
      for (const query of ['Acme', 'acme', 'ACME']) {
        const found = await store.findTenant(query);
        t.strictSame(found?.company, company, `${query}: the company, tenant in its saved case`);
        t.strictSame(found?.providers, providers, `${query}: all of its providers and no others`);
      }
      t.strictSame(
        (await store.findTenant('acme'))?.providers.map((p) => p.configuration.id),
        ['alpha', 'zeta'],
        'providers ordered by id',
      );
      t.equal(await store.findTenant('acm'), undefined, 'no prefix match');
      t.equal(await store.findTenant('gamma'), undefined, 'an unknown tenant is undefined');

      await store.putCompany(seedCompany('c-lone', 'lone'));
      t.strictSame((await store.findTenant('LONE'))?.providers, [], 'a company without providers has an empty list');
    });

    t.test('finds tenants by domain and host, and providers by client_id', async (t) => {
      const { store } = await open(t);
      await store.putCompany(seedCompany('c-acme', 'Acme', { domains: ['acme.com', 'acme.co.uk'], hosts: ['ml.acme.com'] }));
      await store.putCompany(seedCompany('c-beta', 'Beta'));
      await store.putProvider(seedProvider('c-acme', 'acme-sso', 'acme-web'));
      await store.putProvider(seedProvider('c-nosso', 'orphan', 'orphan-web'));

      t.equal(await store.findTenantByDomain('acme.com'), 'Acme');
      t.equal(await store.findTenantByDomain('acme.co.uk'), 'Acme');
      t.equal(await store.findTenantByDomain('beta.com'), 'Beta');
      t.equal(await store.findTenantByDomain('sub.acme.com'), undefined, 'no subdomain match');
      t.equal(await store.findTenantByDomain('ml.acme.com'), undefined, 'hosts are not domains');
      t.equal(await store.findTenantByHost('ml.acme.com'), 'Acme');
      t.equal(await store.findTenantByHost('ml.beta.com'), 'Beta');
      t.equal(await store.findTenantByHost('acme.com'), undefined, 'domains are not hosts');

      const client = await store.findClient('acme-web');
      t.strictSame(client?.provider, await store.getProvider('c-acme', 'acme-sso'), 'the whole provider');
      t.equal(client?.tenant, 'Acme', 'with its company tenant');
      t.equal(await store.findClient('ACME-WEB'), undefined, 'client_id is compared exactly');
      t.equal(await store.findClient('nobody'), undefined);
      t.strictSame(
        await store.findClient('orphan-web'),
        { provider: await store.getProvider('c-nosso', 'orphan') },
        'a provider of a company without SSO settings is found, with no tenant',
      );
    });

    t.test('a tenant belongs to one company, in any case', async (t) => {
      const { store } = await open(t);
      await store.putCompany(seedCompany('c-acme', 'Acme'));
      const acme = await store.getCompany('c-acme');

      await expectConflict(t, store.putCompany(seedCompany('c-copy', 'ACME', { domains: [], hosts: [] })), 'tenant', 'ACME', 'same tenant, other case');
      await expectConflict(t, store.putCompany(seedCompany('c-copy', 'Acme', { domains: [], hosts: [] })), 'tenant', 'Acme', 'same tenant');
      t.equal(await store.getCompany('c-copy'), undefined, 'the second company was not created');
      t.strictSame((await store.findTenant('acme'))?.company, acme, 'the first owner is intact');
    });

    t.test('a domain or a host belongs to one company', async (t) => {
      const { store } = await open(t);
      await store.putCompany(seedCompany('c-acme', 'Acme', { domains: ['acme.com'], hosts: ['ml.acme.com'] }));
      const acme = await store.getCompany('c-acme');

      await expectConflict(
        t,
        store.putCompany(seedCompany('c-beta', 'Beta', { domains: ['beta.com', 'acme.com'], hosts: [] })),
        'domain',
        'acme.com',
        'a taken domain',
      );
      await expectConflict(
        t,
        store.putCompany(seedCompany('c-beta', 'Beta', { domains: ['beta.com'], hosts: ['ml.beta.com', 'ml.acme.com'] })),
        'host',
        'ml.acme.com',
        'a taken host',
      );
      t.equal(await store.getCompany('c-beta'), undefined, 'the refused company was not created');
      t.equal(await store.findTenant('beta'), undefined, 'its tenant is not findable');
      t.equal(await store.findTenantByDomain('beta.com'), undefined, 'its free domain was not added');
      t.equal(await store.findTenantByHost('ml.beta.com'), undefined, 'its free host was not added');
      t.equal(await store.findTenantByDomain('acme.com'), 'Acme', 'the domain still belongs to its owner');
      t.equal(await store.findTenantByHost('ml.acme.com'), 'Acme', 'the host still belongs to its owner');
      t.strictSame(await store.getCompany('c-acme'), acme, 'the owner is unchanged');
    });

    t.test('a refused company update changes nothing', async (t) => {
      const { store } = await open(t);
      await store.putCompany(seedCompany('c-acme', 'Acme'));
      await store.putCompany(seedCompany('c-beta', 'Beta'));
      const beta = await store.getCompany('c-beta');

      await expectConflict(
        t,
        store.putCompany(
          seedCompany('c-beta', 'Beta', {
            domains: ['beta.com', 'new-beta.com'],
            hosts: ['ml.beta.com', 'ml.acme.com'],
            display_name: 'Renamed',
          }),
        ),
        'host',
        'ml.acme.com',
        'an update taking a host',
      );
      t.strictSame(await store.getCompany('c-beta'), beta, 'the company is as before, updatedAt included');
      t.equal(await store.findTenantByDomain('new-beta.com'), undefined, 'the free domain of the refused update was not added');
      t.equal(await store.findTenantByHost('ml.acme.com'), 'Acme');

      await expectConflict(
        t,
        store.putCompany(seedCompany('c-beta', 'acme', { domains: ['beta.com', 'new-beta.com'] })),
        'tenant',
        'acme',
        'an update taking a tenant',
      );
      t.strictSame(await store.getCompany('c-beta'), beta, 'the company is as before');
      t.equal(await store.findTenantByDomain('new-beta.com'), undefined);
      t.equal((await store.findTenant('beta'))?.company.company, 'c-beta', 'still found under its own tenant');
    });

    t.test('a client_id belongs to one provider, and a refused provider write changes nothing', async (t) => {
      const { store } = await open(t);
      await store.putProvider(seedProvider('c-acme', 'acme-sso', 'shared-client'));
      await store.putProvider(seedProvider('c-beta', 'beta-sso', 'beta-web'));
      const acmeProvider = await store.getProvider('c-acme', 'acme-sso');
      const betaProvider = await store.getProvider('c-beta', 'beta-sso');

      await expectConflict(t, store.putProvider(seedProvider('c-beta', 'second', 'shared-client')), 'client_id', 'shared-client', 'a new provider of another company');
      t.equal(await store.getProvider('c-beta', 'second'), undefined, 'the refused provider was not created');

      await expectConflict(
        t,
        store.putProvider(seedProvider('c-beta', 'beta-sso', 'shared-client', { display_name: 'Renamed' })),
        'client_id',
        'shared-client',
        'an update of another company provider',
      );
      t.strictSame(await store.getProvider('c-beta', 'beta-sso'), betaProvider, 'the refused update changed nothing');
      t.equal((await store.findClient('beta-web'))?.provider.configuration.id, 'beta-sso', 'its own client_id still finds it');

      await expectConflict(t, store.putProvider(seedProvider('c-acme', 'acme-other', 'shared-client')), 'client_id', 'shared-client', 'a second provider of the same company');
      t.strictSame((await store.findClient('shared-client'))?.provider, acmeProvider, 'the first owner is intact');
      t.strictSame(
        (await store.listProviders()).map((p) => p.configuration.id),
        ['acme-sso', 'beta-sso'],
        'no refused provider was stored',
      );
    });

    t.test('re-saving your own tenant, domains, hosts and client_id is not a conflict', async (t) => {
      const { store } = await open(t);
      await store.putCompany(seedCompany('c-acme', 'Acme', { domains: ['acme.com'], hosts: ['ml.acme.com'] }));
      await store.putProvider(seedProvider('c-acme', 'acme-sso', 'acme-web'));

      await store.putCompany(seedCompany('c-acme', 'Acme', { domains: ['acme.com'], hosts: ['ml.acme.com'] }));
      const recased = seedCompany('c-acme', 'ACME', { domains: ['acme.com'], hosts: ['ml.acme.com'], display_name: 'New name' });
      await store.putCompany(recased);
      t.strictSame(withoutTime(await store.getCompany('c-acme')), recased, 'the tenant case may change');
      t.equal((await store.findTenant('acme'))?.company.sso.tenant, 'ACME');
      t.equal(await store.findTenantByDomain('acme.com'), 'ACME');

      const renamed = seedProvider('c-acme', 'acme-sso', 'acme-web', { display_name: 'Other button' });
      await store.putProvider(renamed);
      t.strictSame(withoutTime(await store.getProvider('c-acme', 'acme-sso')), renamed, 'the provider kept its client_id');

      await store.putProvider(seedProvider('c-acme', 'acme-sso', 'acme-web-2'));
      t.equal(await store.findClient('acme-web'), undefined, 'a replaced client_id is released');
      t.equal((await store.findClient('acme-web-2'))?.provider.configuration.id, 'acme-sso');
      await store.putProvider(seedProvider('c-beta', 'beta-sso', 'acme-web'));
      t.equal((await store.findClient('acme-web'))?.provider.company, 'c-beta', 'another provider may take the released client_id');
    });

    t.test('a domain and a host move to another company once the first drops them', async (t) => {
      const { store } = await open(t);
      await store.putCompany(seedCompany('c-acme', 'Acme', { domains: ['acme.com', 'shared.com'], hosts: ['ml.acme.com', 'ml.shared.com'] }));
      const beta = seedCompany('c-beta', 'Beta', { domains: ['shared.com'], hosts: ['ml.shared.com'] });
      await expectConflict(t, store.putCompany(beta), 'domain', 'shared.com', 'while the first company holds them');

      await store.putCompany(seedCompany('c-acme', 'Acme', { domains: ['acme.com'], hosts: ['ml.acme.com'] }));
      await store.putCompany(beta);
      t.equal(await store.findTenantByDomain('shared.com'), 'Beta');
      t.equal(await store.findTenantByHost('ml.shared.com'), 'Beta');
      t.equal(await store.findTenantByDomain('acme.com'), 'Acme', 'the first company keeps the rest');
    });

    t.test('putCompany replaces the domain and host lists', async (t) => {
      const { store } = await open(t);
      const first = seedCompany('c-acme', 'Acme', { domains: ['acme.com', 'old.acme.com'], hosts: ['ml.acme.com', 'old-ml.acme.com'] });
      const second = seedCompany('c-acme', 'Acme', { domains: ['new.acme.com', 'acme.com'], hosts: ['new-ml.acme.com'] });
      await store.putCompany(first);
      const result = await store.putCompany(second);

      t.strictSame(withoutTime(result.previous), first, 'previous has the old lists');
      t.strictSame(withoutTime(result.current), second, 'current has the new lists, in the order given');
      t.strictSame(withoutTime(await store.getCompany('c-acme')), second);
      t.equal(await store.findTenantByDomain('old.acme.com'), undefined, 'a dropped domain is no longer found');
      t.equal(await store.findTenantByHost('old-ml.acme.com'), undefined, 'a dropped host is no longer found');
      t.equal(await store.findTenantByHost('ml.acme.com'), undefined);
      t.equal(await store.findTenantByDomain('new.acme.com'), 'Acme');
      t.equal(await store.findTenantByDomain('acme.com'), 'Acme');
      t.equal(await store.findTenantByHost('new-ml.acme.com'), 'Acme');

      await store.putCompany(seedCompany('c-acme', 'Acme', { domains: [], hosts: [] }));
      t.equal(await store.findTenantByDomain('acme.com'), undefined, 'an empty list drops every domain');
      t.equal(await store.findTenantByHost('new-ml.acme.com'), undefined, 'an empty list drops every host');
    });

    t.test('deleteCompany releases its tenant, domains and hosts but keeps its providers', async (t) => {
      const { store } = await open(t);
      await store.putCompany(seedCompany('c-acme', 'Acme'));
      await store.putCompany(seedCompany('c-beta', 'Beta'));
      await store.putProvider(seedProvider('c-acme', 'acme-sso', 'acme-web'));
      await store.putProvider(seedProvider('c-acme', 'acme-two', 'acme-two'));
      const acme = await store.getCompany('c-acme');
      const providers = await store.listProviders('c-acme');

      const result = await store.deleteCompany('c-acme');
      t.strictSame(result.previous, acme, 'previous is the deleted company');
      t.equal(result.current, undefined, 'current is undefined');
      t.equal(await store.getCompany('c-acme'), undefined);
      t.strictSame((await store.listCompanies()).map((c) => c.company), ['c-beta']);
      t.equal(await store.findTenant('acme'), undefined);
      t.equal(await store.findTenantByDomain('acme.com'), undefined);
      t.equal(await store.findTenantByHost('ml.acme.com'), undefined);

      t.strictSame(await store.listProviders('c-acme'), providers, 'its providers are kept');
      t.strictSame(await store.findClient('acme-web'), { provider: providers[0] }, 'a kept provider is found by client_id, with no tenant');

      await store.putCompany(seedCompany('c-new', 'Acme', { domains: ['acme.com'], hosts: ['ml.acme.com'] }));
      t.equal((await store.findTenant('ACME'))?.company.company, 'c-new', 'another company may take the released values');

      const again = await store.deleteCompany('c-acme');
      t.equal(again.previous, undefined, 'deleting a missing company reports no previous');
      t.equal(again.current, undefined);
    });

    t.test('deleteProvider removes one provider and releases its client_id', async (t) => {
      const { store } = await open(t);
      await store.putCompany(seedCompany('c-acme', 'Acme'));
      await store.putProvider(seedProvider('c-acme', 'acme-sso', 'acme-web'));
      await store.putProvider(seedProvider('c-acme', 'acme-two', 'acme-two'));
      const deleted = await store.getProvider('c-acme', 'acme-sso');

      const result = await store.deleteProvider('c-acme', 'acme-sso');
      t.strictSame(result.previous, deleted, 'previous is the deleted provider');
      t.equal(result.current, undefined);
      t.equal(await store.getProvider('c-acme', 'acme-sso'), undefined);
      t.equal(await store.findClient('acme-web'), undefined);
      t.strictSame((await store.findTenant('acme'))?.providers.map((p) => p.configuration.id), ['acme-two'], 'the other provider stays');
      t.ok(await store.getCompany('c-acme'), 'the company stays');

      await store.putProvider(seedProvider('c-beta', 'beta-sso', 'acme-web'));
      t.equal((await store.findClient('acme-web'))?.provider.company, 'c-beta', 'the client_id may be taken again');

      const again = await store.deleteProvider('c-acme', 'acme-sso');
      t.equal(again.previous, undefined, 'deleting a missing provider reports no previous');
      t.equal(again.current, undefined);
    });

    t.test('writes report the previous and the current record', async (t) => {
      const { store } = await open(t);
      const created = await store.putCompany(seedCompany('c-acme', 'Acme'));
      t.equal(created.previous, undefined, 'a new company has no previous');
      t.strictSame(created.current, await store.getCompany('c-acme'), 'current is the stored company');

      const updated = await store.putCompany(seedCompany('c-acme', 'Acme', { display_name: 'Acme Corp' }));
      t.strictSame(updated.previous, created.current, 'previous is the record before the write');
      t.strictSame(updated.current, await store.getCompany('c-acme'));
      t.equal(updated.current?.sso.display_name, 'Acme Corp');
      t.ok((updated.current?.updatedAt ?? 0) >= (created.current?.updatedAt ?? Infinity), 'updatedAt does not go back');

      const first = await store.putProvider(seedProvider('c-acme', 'acme-sso', 'acme-web'));
      t.equal(first.previous, undefined, 'a new provider has no previous');
      t.strictSame(first.current, await store.getProvider('c-acme', 'acme-sso'));
      const second = await store.putProvider(seedProvider('c-acme', 'acme-sso', 'acme-web', { scope: 'openid' }));
      t.strictSame(second.previous, first.current);
      t.strictSame(second.current, await store.getProvider('c-acme', 'acme-sso'));
      t.equal(second.current?.configuration.scope, 'openid');
    });

    t.test('lists companies by company and providers by company then id', async (t) => {
      const { store } = await open(t);
      for (const [company, tenant] of [['c-gamma', 'gamma'], ['c-alpha', 'alpha'], ['c-beta', 'beta']] as const) {
        await store.putCompany(seedCompany(company, tenant));
      }
      for (const [company, id] of [['c-beta', 'z'], ['c-alpha', 'm'], ['c-beta', 'a'], ['c-alpha', 'b'], ['c-gamma', 'k']] as const) {
        await store.putProvider(seedProvider(company, id, `${company}-${id}`));
      }

      t.strictSame((await store.listCompanies()).map((c) => c.company), ['c-alpha', 'c-beta', 'c-gamma']);
      t.strictSame(
        (await store.listProviders()).map((p) => `${p.company}/${p.configuration.id}`),
        ['c-alpha/b', 'c-alpha/m', 'c-beta/a', 'c-beta/z', 'c-gamma/k'],
      );
      t.strictSame((await store.listProviders('c-beta')).map((p) => `${p.company}/${p.configuration.id}`), ['c-beta/a', 'c-beta/z'], 'filtered by company');
      t.strictSame(await store.listProviders('c-nobody'), [], 'an unknown company has none');
    });

    t.test('parallel writes claiming one value: exactly one wins', async (t) => {
      const { store } = await open(t);
      const claims = Array.from({ length: 12 }, (_, i) =>
        store.putCompany(seedCompany(`c-${i}`, `tenant-${i}`, { domains: [`own-${i}.com`, 'contested.com'], hosts: [] })),
      );
      const settled = await Promise.allSettled(claims);
      const won = settled.flatMap((s, i) => (s.status === 'fulfilled' ? [i] : []));
      t.equal(won.length, 1, 'one company got the domain');
      const lost = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
      t.ok(
        lost.every((e) => e instanceof ConflictError && e.field === 'domain' && e.value === 'contested.com'),
        'every other write was a domain conflict',
      );
      t.equal(await store.findTenantByDomain('contested.com'), `tenant-${won[0]}`, 'the winner owns it');
      t.strictSame((await store.listCompanies()).map((c) => c.company), [`c-${won[0]}`], 'no losing company was stored');

      const providers = await Promise.allSettled(
        Array.from({ length: 12 }, (_, i) => store.putProvider(seedProvider(`c-${i}`, 'sso', 'contested-client'))),
      );
      t.equal(providers.filter((s) => s.status === 'fulfilled').length, 1, 'one provider got the client_id');
      t.ok(
        providers.every((s) => s.status === 'fulfilled' || (s.reason instanceof ConflictError && s.reason.field === 'client_id')),
        'every other write was a client_id conflict',
      );
      t.equal((await store.listProviders()).length, 1, 'no losing provider was stored');
    });

    t.test('signing keys: one current key, agreed by concurrent starters; rotation retires and prunes', async (t) => {
      const { store } = await open(t);
      const key = (kid: string, createdAt: number): SigningKey => ({
        kid,
        alg: 'ES256',
        privateJwk: { kty: 'EC', crv: 'P-256', x: `x-${kid}`, y: `y-${kid}`, d: `d-${kid}` },
        publicJwk: { kty: 'EC', crv: 'P-256', x: `x-${kid}`, y: `y-${kid}` },
        createdAt,
      });
      t.strictSame(await store.listSigningKeys(), [], 'none at first');
      const starters = await Promise.all(Array.from({ length: 6 }, (_, i) => store.ensureSigningKey(key(`k${i}`, 1000 + i))));
      t.equal(new Set(starters.map((k) => k.kid)).size, 1, 'replicas starting together agree on one key');
      const first = starters[0]!;
      t.strictSame(await store.listSigningKeys(), [first], 'and only it is stored, as returned');
      t.strictSame(await store.ensureSigningKey(key('later', 5000)), first, 'a later start keeps it');

      await store.rotateSigningKey(key('second', 10_000), 0);
      const afterOne = await store.listSigningKeys();
      t.strictSame(afterOne.map((k) => k.kid), ['second', first.kid], 'the new key is current, the old one kept');
      t.equal(afterOne[0]!.retiredAt, undefined);
      t.equal(afterOne[1]!.retiredAt, 10_000, 'retired when the new one took over');
      t.strictSame(afterOne[1]!.privateJwk, first.privateJwk, 'keys round-trip');

      await store.rotateSigningKey(key('third', 20_000), 15_000);
      t.strictSame((await store.listSigningKeys()).map((k) => k.kid), ['third', 'second'], 'keys retired before the grace limit are dropped');
      t.equal((await store.ensureSigningKey(key('x', 30_000))).kid, 'third');
    });

    t.test('ping answers while open; a closed store is unavailable', async (t) => {
      const { store } = await open(t);
      await t.resolves(store.ping(), 'ping resolves');
      t.type(store.kind, 'string');
      t.not(store.kind, '', 'the backend has a name');
      await store.close();
      const err = await store.ping().then(
        () => undefined,
        (e: unknown) => e,
      );
      t.ok(err instanceof StoreUnavailableError, 'ping rejects with StoreUnavailableError');
      const read = await store.getCompany('c-acme').then(
        () => undefined,
        (e: unknown) => e,
      );
      t.ok(read instanceof StoreUnavailableError, 'reads reject with StoreUnavailableError');
    });

    t.test('data survives close and reopen', async (t) => {
      const { store, reopen } = await open(t);
      if (!reopen) {
        t.plan(0, 'skipped: this backend cannot reopen its storage');
        return;
      }
      await store.putCompany(seedCompany('c-acme', 'Acme'));
      await store.putCompany(seedCompany('c-beta', 'Beta'));
      await store.putProvider(seedProvider('c-acme', 'acme-sso', 'acme-web'));
      await store.putProvider(seedProvider('c-orphan', 'orphan', 'orphan-web'));
      const companies = await store.listCompanies();
      const providers = await store.listProviders();
      await store.close();

      const again = await reopen();
      t.strictSame(await again.listCompanies(), companies, 'companies as they were, updatedAt included');
      t.strictSame(await again.listProviders(), providers, 'providers as they were');
      t.equal((await again.findTenant('ACME'))?.providers.length, 1);
      t.equal(await again.findTenantByDomain('beta.com'), 'Beta');
      t.equal(await again.findTenantByHost('ml.acme.com'), 'Acme');
      t.equal((await again.findClient('acme-web'))?.tenant, 'Acme');
      await expectConflict(t, again.putCompany(seedCompany('c-copy', 'acme', { domains: [], hosts: [] })), 'tenant', 'acme', 'after reopen');
    });
  });
}
