/**
 * Entry of a one-shot directory measurement process (started with --expose-gc, so
 * heap figures are taken after a full collection, in a process that did nothing else).
 *
 * Jobs:
 * - `seed`: writes `count` tenants through the store's own `putCompany`; on
 *   PostgreSQL, beyond the first `viaStore`, in one INSERT ... SELECT transaction in
 *   the store's layout, checked by reading one back through the store;
 * - `lookups`: cache-hit and cache-miss lookups per second through CachedDirectory,
 *   over two directories alternately;
 * - `memory`: heap and RSS after looking up every tenant once with a given cache.max.
 */
import { isDeepStrictEqual } from 'node:util';
import { CachedDirectory, directoryKey, type DirectoryCounters } from '../src/directory/cached-directory.js';
import { SqliteTenantStore } from '../src/directory/sqlite-store.js';
import type { Company, TenantStore } from '../src/directory/types.js';
import { runChild } from './child-process.js';

/** Which store a job uses. */
export type StoreSpec = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string; schema: string };

/** What the directory process is asked to do. */
export type DirectoryJob =
  | { op: 'seed'; store: StoreSpec; count: number; viaStore?: number }
  | { op: 'lookups'; stores: { store: StoreSpec; count: number }[]; seconds: number; concurrency: number }
  | { op: 'memory'; store: StoreSpec; count: number; cacheMax: number };

/** The tenant ID of the i-th seeded tenant. */
export const tenantId = (i: number) => `tenant-${String(i).padStart(6, '0')}`;

function company(i: number): Company {
  const id = tenantId(i);
  return {
    company: `company-${String(i).padStart(6, '0')}`,
    sso: {
      tenant: id,
      group_mapping: { 'ml-users': 'Users', 'ml-admins': ['Admins', 'Users'], 'ml-viewers': 'Viewers', 'data-team': 'Data' },
      admin_groups: ['ml-admins'],
      groups: [],
      domains: [`${id}.example.com`],
      hosts: [],
      display_name: `Tenant ${i}`,
    },
  };
}

async function openStore(spec: StoreSpec): Promise<TenantStore> {
  let store: TenantStore;
  if (spec.kind === 'sqlite') {
    store = new SqliteTenantStore({ path: spec.path });
  } else {
    // Loaded by name: the PostgreSQL store is optional for the benchmarks.
    const modulePath = '../src/directory/postgres-store.js';
    const mod = (await import(modulePath)) as { PostgresTenantStore: new (o: { url: string; schema: string; poolMax?: number }) => TenantStore };
    store = new mod.PostgresTenantStore({ url: spec.url, schema: spec.schema, poolMax: 10 });
  }
  await store.init();
  return store;
}

async function bulkPostgres(spec: Extract<StoreSpec, { kind: 'postgres' }>, from: number, to: number): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: spec.url });
  await client.connect();
  try {
    const s = pg.escapeIdentifier(spec.schema);
    const sample = company(0).sso;
    const { tenant: _t, domains: _d, hosts: _h, ...settings } = sample;
    const sso = JSON.stringify(settings).replace('"Tenant 0"', '"Tenant %s"');
    const pad = `lpad(i::text, 6, '0')`;
    await client.query('BEGIN');
    await client.query(
      `INSERT INTO ${s}.companies (company, tenant, tenant_key, sso, updated_at)
       SELECT 'company-' || ${pad}, 'tenant-' || ${pad}, 'tenant-' || ${pad}, format($1, i)::json, $2
       FROM generate_series($3::int, $4::int - 1) AS i`,
      [sso, Date.now(), from, to],
    );
    await client.query(
      `INSERT INTO ${s}.company_domains (domain, company, position)
       SELECT 'tenant-' || ${pad} || '.example.com', 'company-' || ${pad}, 0
       FROM generate_series($1::int, $2::int - 1) AS i`,
      [from, to],
    );
    await client.query('COMMIT');
    await client.query(`ANALYZE ${s}.companies`);
    await client.query(`ANALYZE ${s}.company_domains`);
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    await client.end();
  }
}

async function seed(job: Extract<DirectoryJob, { op: 'seed' }>) {
  const store = await openStore(job.store);
  try {
    const viaStore = Math.min(job.count, job.viaStore ?? job.count);
    const t0 = performance.now();
    for (let i = 0; i < viaStore; i++) await store.putCompany(company(i));
    const storeS = (performance.now() - t0) / 1000;
    let bulkS = 0;
    if (viaStore < job.count) {
      if (job.store.kind !== 'postgres') throw new Error('bulk seeding is for PostgreSQL only');
      const t1 = performance.now();
      await bulkPostgres(job.store, viaStore, job.count);
      bulkS = (performance.now() - t1) / 1000;
      // A bulk row must read back exactly as a row the store wrote itself.
      const last = job.count - 1;
      const [viaPut, viaBulk] = await Promise.all([store.findTenant(tenantId(0)), store.findTenant(tenantId(last))]);
      const same = (r: Awaited<ReturnType<TenantStore['findTenant']>>, i: number) =>
        r !== undefined && r.providers.length === 0 && isDeepStrictEqual({ ...r.company, updatedAt: 0 }, { ...company(i), updatedAt: 0 });
      if (!same(viaPut, 0) || !same(viaBulk, last)) {
        throw new Error(`bulk-inserted tenants do not read back like the store's own: ${JSON.stringify(viaBulk)}`);
      }
    }
    return { viaStore, storeWritesPerS: viaStore / storeS, bulk: job.count - viaStore, bulkS };
  } finally {
    await store.close();
  }
}

function counters() {
  const c = { hit: 0, miss: 0, stale: 0, storeError: 0 };
  const d: DirectoryCounters = { hit: () => c.hit++, miss: () => c.miss++, stale: () => c.stale++, storeError: () => c.storeError++ };
  return { c, d };
}

/** Deterministic pseudo-random tenant indices, never the same twice in a row. */
function* indices(count: number, seed = 12345): Generator<number> {
  let x = seed;
  let prev = -1;
  for (;;) {
    x = (x * 1103515245 + 12345) % 2147483648;
    let i = x % count;
    if (i === prev) i = (i + 1) % count;
    prev = i;
    yield i;
  }
}

const MAX_OPS = 5_000_000;
/** Tenants in the hot set of the cache-hit measurement. */
const HOT = 10;

/** Lookups per second of one kind over one directory, for `ms`. */
async function hitRate(directory: CachedDirectory, c: ReturnType<typeof counters>['c'], hot: string[], ms: number) {
  c.hit = 0;
  c.miss = 0;
  let hits = 0;
  const t = performance.now();
  while (hits < MAX_OPS && performance.now() - t < ms) {
    for (let k = 0; k < 1000; k++) await directory.tenant(hot[(hits + k) % hot.length]!);
    hits += 1000;
  }
  const s = (performance.now() - t) / 1000;
  if (c.miss !== 0 || c.hit !== hits) throw new Error(`expected only hits, counted ${JSON.stringify(c)}`);
  return { ops: hits, s };
}

async function missRate(directory: CachedDirectory, c: ReturnType<typeof counters>['c'], count: number, concurrency: number, ms: number) {
  c.hit = 0;
  c.miss = 0;
  const pick = indices(count);
  let misses = 0;
  let notFound = 0;
  const t = performance.now();
  const worker = async () => {
    while (misses < MAX_OPS && performance.now() - t < ms) {
      misses++;
      const id = tenantId(pick.next().value as number);
      directory.invalidate([directoryKey('tenant', id)]);
      if (!(await directory.tenant(id))) notFound++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const s = (performance.now() - t) / 1000;
  if (notFound > 0) throw new Error(`${notFound} lookups of existing tenants found nothing`);
  if (c.miss !== misses) throw new Error(`expected ${misses} misses, counted ${JSON.stringify(c)}`);
  return { ops: misses, s };
}

/**
 * Hits: the same few cached tenants looked up in a loop. Misses: each lookup's key is
 * dropped just before it, so every lookup queries the store. Both directories are
 * measured alternately (A B B A) so that drift on the machine hits both alike.
 */
async function lookups(job: Extract<DirectoryJob, { op: 'lookups' }>) {
  const opened = await Promise.all(job.stores.map(async (s) => ({ ...s, store: await openStore(s.store) })));
  try {
    const sides = await Promise.all(
      opened.map(async ({ store, count }) => {
        const hotCount = Math.min(HOT, count);
        const hot = Array.from({ length: hotCount }, (_, k) => tenantId(Math.floor((k * count) / hotCount)));
        const h = counters();
        const warm = new CachedDirectory(store, { max: 10_000, ttlMs: 3_600_000, negativeTtlMs: 5000, staleMs: 0, counters: h.d });
        for (const id of hot) if (!(await warm.tenant(id))) throw new Error(`tenant ${id} is missing`);
        const m = counters();
        const cold = new CachedDirectory(store, { max: 1000, ttlMs: 3_600_000, negativeTtlMs: 5000, staleMs: 0, counters: m.d });
        return { count, hot, warm, cold, h, m, hits: { ops: 0, s: 0 }, misses: { ops: 0, s: 0 } };
      }),
    );
    const ms = job.seconds * 1000;
    for (const i of [0, 1, 1, 0]) {
      const side = sides[i % sides.length]!;
      const r = await hitRate(side.warm, side.h.c, side.hot, ms);
      side.hits.ops += r.ops;
      side.hits.s += r.s;
    }
    for (const i of [0, 1, 1, 0]) {
      const side = sides[i % sides.length]!;
      const r = await missRate(side.cold, side.m.c, side.count, job.concurrency, ms);
      side.misses.ops += r.ops;
      side.misses.s += r.s;
    }
    return { results: sides.map((s) => ({ count: s.count, hitsPerS: s.hits.ops / s.hits.s, missesPerS: s.misses.ops / s.misses.s })) };
  } finally {
    for (const o of opened) await o.store.close();
  }
}

function collect(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  gc();
  gc();
}

async function memory(job: Extract<DirectoryJob, { op: 'memory' }>) {
  const store = await openStore(job.store);
  try {
    collect();
    const before = process.memoryUsage();
    const directory = new CachedDirectory(store, { max: job.cacheMax, ttlMs: 3_600_000, negativeTtlMs: 5000, staleMs: 0 });
    for (let i = 0; i < job.count; i++) await directory.tenant(tenantId(i));
    collect();
    const after = process.memoryUsage();
    const size = directory.size;
    return { cacheMax: job.cacheMax, looked: job.count, cached: size, heapDeltaMB: (after.heapUsed - before.heapUsed) / 2 ** 20, rssMB: after.rss / 2 ** 20, rssDeltaMB: (after.rss - before.rss) / 2 ** 20 };
  } finally {
    await store.close();
  }
}

runChild<DirectoryJob & { maxLifetimeMs?: number }>(async (job) => {
  const result = job.op === 'seed' ? await seed(job) : job.op === 'lookups' ? await lookups(job) : await memory(job);
  return { info: result, close: async () => undefined };
});
