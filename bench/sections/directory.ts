/**
 * 3. Directory scale: lookups through CachedDirectory over a store of 10 and of
 * 100,000 tenants (SQLite, and PostgreSQL when it is reachable), and memory bounded
 * by cache.max.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { spawnChild } from '../child-process.js';
import { since, type BenchContext } from '../context.js';
import type { DirectoryJob, StoreSpec } from '../directory-child.js';
import { fmt, ratio3, type Check, type SectionResult, type Table } from '../report.js';

const CHILD = new URL('../directory-child.ts', import.meta.url);
const PG_URL = process.env.TENANT_GATE_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const SMALL = 10;
const SMALL_CACHE = 1000;

interface LookupResult {
  results: { count: number; hitsPerS: number; missesPerS: number }[];
}

interface SeedResult {
  viaStore: number;
  storeWritesPerS: number;
  bulk: number;
  bulkS: number;
}

interface MemoryResult {
  cacheMax: number;
  looked: number;
  cached: number;
  heapDeltaMB: number;
  rssMB: number;
  rssDeltaMB: number;
}

async function job<T>(name: string, j: DirectoryJob): Promise<T> {
  const child = await spawnChild(name, CHILD, j as unknown as Record<string, unknown>, { nodeArgs: ['--expose-gc'], readyTimeoutMs: 240_000 });
  await child.stop();
  return child.info as T;
}

async function postgresReachable(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    return rows[0]?.v ?? 'unknown';
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function dropSchemas(schemas: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(s)} CASCADE`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function directorySection(ctx: BenchContext): Promise<SectionResult> {
  const t0 = performance.now();
  const notes: string[] = [];
  const checks: Check[] = [];
  const large = ctx.tenants;
  // Per phase; each directory gets two phases of hits and two of misses.
  const seconds = ctx.quick ? 0.5 : 1;
  const concurrency = 8;
  const lookupRows: string[][] = [];

  const scale = async (label: string, small: StoreSpec, big: StoreSpec) => {
    const r = await job<LookupResult>(`${label} lookups`, { op: 'lookups', stores: [{ store: small, count: SMALL }, { store: big, count: large }], seconds, concurrency });
    const [a, b] = r.results as [LookupResult['results'][number], LookupResult['results'][number]];
    lookupRows.push(
      [label, fmt(SMALL), fmt(a.hitsPerS), fmt(a.missesPerS)],
      [label, fmt(large), fmt(b.hitsPerS), fmt(b.missesPerS)],
    );
    checks.push(
      { what: `${label}: cache-hit lookups/s at ${fmt(large)} vs ${SMALL} tenants`, measured: ratio3(b.hitsPerS / a.hitsPerS), target: '≥ 0.80 (same cost)', pass: b.hitsPerS / a.hitsPerS >= 0.8 },
      { what: `${label}: cache-miss lookups/s at ${fmt(large)} vs ${SMALL} tenants`, measured: ratio3(b.missesPerS / a.missesPerS), target: '≥ 0.80 (same cost)', pass: b.missesPerS / a.missesPerS >= 0.8 },
    );
  };

  // SQLite: every tenant written by the store itself.
  const sqliteSmall: StoreSpec = { kind: 'sqlite', path: join(ctx.tmp, 'directory-small.db') };
  const sqliteLarge: StoreSpec = { kind: 'sqlite', path: join(ctx.tmp, 'directory-large.db') };
  await job<SeedResult>('sqlite seed small', { op: 'seed', store: sqliteSmall, count: SMALL });
  const seeded = await job<SeedResult>('sqlite seed large', { op: 'seed', store: sqliteLarge, count: large });
  notes.push(`SQLite: ${fmt(large)} tenants written one by one through SqliteTenantStore.putCompany (each its own immediate transaction) at ${fmt(seeded.storeWritesPerS)} writes/s, file on ${ctx.tmp.startsWith('/dev/shm') ? 'tmpfs (/dev/shm)' : 'the temp folder'}.`);
  await scale('SQLite', sqliteSmall, sqliteLarge);

  // Memory: every tenant looked up once, with a small and with a large cache.
  const memRows: string[][] = [];
  const mem: MemoryResult[] = [];
  for (const cacheMax of [SMALL_CACHE, large]) {
    const r = await job<MemoryResult>(`memory, cache.max ${cacheMax}`, { op: 'memory', store: sqliteLarge, count: large, cacheMax });
    mem.push(r);
    memRows.push([fmt(r.cacheMax), fmt(r.looked), fmt(r.cached), fmt(r.heapDeltaMB, 1), fmt((r.heapDeltaMB * 2 ** 20) / Math.max(1, r.cached)), fmt(r.rssMB)]);
  }
  const [smallMem, largeMem] = mem as [MemoryResult, MemoryResult];
  checks.push(
    { what: `entries cached after ${fmt(large)} distinct lookups, cache.max ${fmt(SMALL_CACHE)}`, measured: fmt(smallMem.cached), target: `≤ ${fmt(SMALL_CACHE)}`, pass: smallMem.cached <= SMALL_CACHE },
    {
      what: `heap growth, cache.max ${fmt(SMALL_CACHE)} vs ${fmt(large)}`,
      measured: `${fmt(smallMem.heapDeltaMB, 1)} MB vs ${fmt(largeMem.heapDeltaMB, 1)} MB`,
      target: `small ≤ ${fmt((SMALL_CACHE / large) * 100 * 5, 0)}% of large`,
      pass: smallMem.heapDeltaMB <= largeMem.heapDeltaMB * (SMALL_CACHE / large) * 5,
    },
  );

  // PostgreSQL, when it is there.
  const pgVersion = await postgresReachable();
  const pgModule = fileURLToPath(new URL('../../src/directory/postgres-store.ts', import.meta.url));
  if (!pgVersion) {
    notes.push(`PostgreSQL rows skipped: nothing answers at ${PG_URL.replace(/\/\/[^@]*@/, '//')}.`);
  } else if (!existsSync(pgModule)) {
    notes.push('PostgreSQL rows skipped: src/directory/postgres-store.ts is not there yet.');
  } else {
    const stamp = `${process.pid}_${Date.now().toString(36)}`;
    const schemas = [`tgbench_${stamp}_small`, `tgbench_${stamp}_large`];
    try {
      const pgSmall: StoreSpec = { kind: 'postgres', url: PG_URL, schema: schemas[0]! };
      const pgLarge: StoreSpec = { kind: 'postgres', url: PG_URL, schema: schemas[1]! };
      await job<SeedResult>('postgres seed small', { op: 'seed', store: pgSmall, count: SMALL });
      const s = await job<SeedResult>('postgres seed large', { op: 'seed', store: pgLarge, count: large, viaStore: SMALL });
      notes.push(
        `PostgreSQL ${pgVersion}: schemas ${schemas.join(', ')} (dropped afterwards). ${s.viaStore} tenants through PostgresTenantStore.putCompany (${fmt(s.storeWritesPerS)} writes/s: one durable commit each), the other ${fmt(s.bulk)} in one INSERT ... SELECT transaction in the store's layout (${fmt(s.bulkS, 1)} s), checked by reading them back through the store.`,
      );
      await scale('PostgreSQL', pgSmall, pgLarge);
    } catch (err) {
      notes.push(`PostgreSQL rows skipped: ${(err as Error).message.split('\n')[0]}`);
    } finally {
      await dropSchemas(schemas).catch((err: unknown) => notes.push(`could not drop the PostgreSQL schemas: ${(err as Error).message}`));
    }
  }

  notes.push(
    `Hits: the same 10 cached tenants looked up in a loop. Misses: each lookup's cache key is dropped first, so each is one store query (findTenant: the company with its domains, hosts and providers), ${concurrency} lookups in flight, random tenants. One process measures both directory sizes alternately (A B B A), ${seconds} s per phase, ${4 * seconds} s per size and kind.`,
    'Memory: a fresh process with --expose-gc looks every tenant up once; heap growth is heapUsed after a full GC minus before; RSS also holds SQLite\'s page cache.',
  );
  const tables: Table[] = [
    { title: 'Lookups through CachedDirectory', columns: ['store', 'tenants', 'cache-hit lookups/s', 'cache-miss lookups/s'], rows: lookupRows },
    { title: 'Memory after looking up every tenant once', columns: ['cache.max', 'tenants looked up', 'entries cached', 'heap growth MB', 'bytes per entry', 'RSS MB'], rows: memRows },
  ];
  return {
    id: 'directory',
    title: '3. Directory scale',
    about: `Ratios compare the same lookup at ${fmt(large)} and at ${SMALL} tenants (1.0: the directory's size costs nothing). Memory compares heap growth with a small and a large cache.max after the same ${fmt(large)} distinct lookups.`,
    tables,
    checks,
    notes,
    profiles: [],
    elapsedS: since(t0),
  };
}
