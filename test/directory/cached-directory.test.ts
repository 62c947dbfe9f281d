import t from 'tap';
import { CachedDirectory, type LookupKind } from '../../src/directory/cached-directory.js';
import { keysForCompanyWrite } from '../../src/directory/invalidation.js';
import type { TenantRecord, TenantStore } from '../../src/directory/types.js';
import { StoreUnavailableError } from '../../src/errors.js';

/** A store whose lookups are counted, delayed and can be made to fail. */
function countingStore(tenants: Record<string, TenantRecord>) {
  const calls: Record<string, number> = {};
  const state = { failing: false, delayMs: 5 };
  const lookup = async <T>(name: string, fn: () => T): Promise<T> => {
    calls[name] = (calls[name] ?? 0) + 1;
    await new Promise((r) => setTimeout(r, state.delayMs));
    if (state.failing) throw new Error('connection refused');
    return fn();
  };
  const store = {
    kind: 'counting',
    findTenant: (id: string) => lookup('tenant', () => tenants[id.toLowerCase()]),
    findTenantByDomain: (d: string) => lookup('domain', () => (d === 'acme.com' ? 'acme' : undefined)),
    findTenantByHost: (h: string) => lookup('host', () => (h === 'ml.acme.com' ? 'acme' : undefined)),
    findClient: (c: string) =>
      lookup('client', () => (c === 'acme-client' ? { provider: tenants.acme!.providers[0]!, tenant: 'acme' } : undefined)),
  } as unknown as TenantStore;
  return { store, calls, state };
}

const acme: TenantRecord = {
  company: { company: 'c1', sso: { tenant: 'Acme', group_mapping: {}, admin_groups: [], groups: [], domains: ['acme.com'], hosts: ['ml.acme.com'] } },
  providers: [{ company: 'c1', provider: 'keycloak', configuration: { id: 'p1', client_id: 'acme-client' } }],
};

function setup() {
  const clock = { now: 1_000_000 };
  const counts: Record<string, number> = {};
  const counter = (what: string) => (kind: LookupKind) => {
    counts[`${what}:${kind}`] = (counts[`${what}:${kind}`] ?? 0) + 1;
  };
  const s = countingStore({ acme });
  const dir = new CachedDirectory(s.store, {
    max: 100,
    ttlMs: 60_000,
    negativeTtlMs: 5_000,
    staleMs: 300_000,
    now: () => clock.now,
    counters: { hit: counter('hit'), miss: counter('miss'), stale: counter('stale'), storeError: counter('error') },
  });
  return { ...s, dir, clock, counts };
}

t.test('1,000 concurrent lookups of one key cost one store call', async (t) => {
  const { dir, calls, counts } = setup();
  const results = await Promise.all(Array.from({ length: 1000 }, () => dir.tenant('ACME')));
  t.equal(calls.tenant, 1);
  t.ok(results.every((r) => r?.company.company === 'c1'));
  t.equal(counts['miss:tenant'], 1);
  t.equal(counts['hit:tenant'], 999);
});

t.test('entries are fresh for the TTL, then re-read', async (t) => {
  const { dir, calls, clock } = setup();
  await dir.tenant('acme');
  clock.now += 59_000;
  await dir.tenant('acme');
  t.equal(calls.tenant, 1);
  clock.now += 2_000;
  await dir.tenant('acme');
  t.equal(calls.tenant, 2);
});

t.test('misses are cached with the shorter TTL', async (t) => {
  const { dir, calls, clock } = setup();
  t.equal(await dir.tenant('nobody'), undefined);
  t.equal(await dir.tenant('nobody'), undefined);
  t.equal(calls.tenant, 1);
  clock.now += 5_001;
  await dir.tenant('nobody');
  t.equal(calls.tenant, 2);
});

t.test('every lookup kind resolves and caches', async (t) => {
  const { dir, calls } = setup();
  t.equal(await dir.tenantByDomain('acme.com'), 'acme');
  t.equal(await dir.tenantByDomain('ACME.com'), 'acme');
  t.equal(await dir.tenantByHost('ml.acme.com'), 'acme');
  t.equal((await dir.client('acme-client'))?.tenant, 'acme');
  t.equal(await dir.client('ACME-client'), undefined, 'client ids are case-sensitive');
  t.same(calls, { domain: 1, host: 1, client: 2 });
});

t.test('store failure: stale entries are served within the stale window, then it fails', async (t) => {
  const { dir, calls, clock, state, counts } = setup();
  await dir.tenant('acme');
  state.failing = true;
  clock.now += 61_000;
  t.equal((await dir.tenant('acme'))?.company.company, 'c1', 'stale entry served');
  t.equal(counts['stale:tenant'], 1);
  t.equal(counts['error:tenant'], 1);
  const before = calls.tenant;
  await dir.tenant('acme');
  t.equal(calls.tenant, before, 'a failing store is not asked again within a second');
  clock.now += 300_000;
  await t.rejects(dir.tenant('acme'), StoreUnavailableError, 'past the stale window the failure surfaces');
  await t.rejects(dir.tenant('unknown'), StoreUnavailableError, 'uncached keys fail at once');
  state.failing = false;
  t.equal((await dir.tenant('acme'))?.company.company, 'c1', 'recovers by itself');
});

t.test('invalidation takes effect at once, also over a query in flight', async (t) => {
  const { dir, calls } = setup();
  await dir.tenant('acme');
  dir.invalidate(keysForCompanyWrite({ previous: acme.company }, []));
  await dir.tenant('acme');
  t.equal(calls.tenant, 2, 'invalidated key re-read');
  const inflight = dir.tenant('newco');
  dir.invalidate(['t:newco']);
  await inflight;
  await dir.tenant('newco');
  t.equal(calls.tenant, 4, 'an answer from before the invalidation is not cached');
});

t.test('size is bounded by max', async (t) => {
  const { store } = countingStore({});
  const dir = new CachedDirectory(store, { max: 10, ttlMs: 1000, negativeTtlMs: 1000, staleMs: 0 });
  await Promise.all(Array.from({ length: 50 }, (_, i) => dir.tenant(`t${i}`)));
  t.equal(dir.size, 10);
});

t.test('keysForCompanyWrite covers old and new owners', async (t) => {
  const next = structuredClone(acme.company);
  next.sso.tenant = 'acme2';
  next.sso.domains = ['acme.org'];
  const keys = keysForCompanyWrite({ previous: acme.company, current: next }, acme.providers);
  t.same(new Set(keys), new Set(['t:acme', 't:acme2', 'd:acme.com', 'd:acme.org', 'h:ml.acme.com', 'c:acme-client']));
});
