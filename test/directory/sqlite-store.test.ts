import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { SqliteTenantStore } from '../../src/directory/sqlite-store.js';
import { applyMigrations, SQLITE_MIGRATIONS } from '../../src/directory/sqlite-migrations.js';
import type { SqliteMigration } from '../../src/directory/sqlite-migrations.js';
import { ConflictError, StoreUnavailableError, ValidationError } from '../../src/errors.js';
import { runTenantStoreContract, seedCompany, seedProvider } from './store-contract.js';
import type { StoreUnderTest } from './store-contract.js';

type Test = import('tap').Test;

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'tenant-gate-sqlite-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function openStore(t: Test, path: string, options: { now?: () => number } = {}): Promise<SqliteTenantStore> {
  const store = new SqliteTenantStore({ path, ...options });
  await store.init();
  t.teardown(() => store.close());
  return store;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (e: unknown) => e,
  );
}

function migrationLog(path: string): { version: number; name: string; applied_at: number }[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare('SELECT version, name, applied_at FROM schema_migrations ORDER BY version').all() as {
      version: number;
      name: string;
      applied_at: number;
    }[];
  } finally {
    db.close();
  }
}

runTenantStoreContract(t, 'sqlite file store', async (): Promise<StoreUnderTest> => {
  const dir = mkdtempSync(join(tmpdir(), 'tenant-gate-sqlite-'));
  const path = join(dir, 'directory.db');
  const stores: SqliteTenantStore[] = [];
  const make = async (): Promise<SqliteTenantStore> => {
    const store = new SqliteTenantStore({ path });
    stores.push(store);
    await store.init();
    return store;
  };
  return {
    store: await make(),
    reopen: make,
    cleanup: async () => {
      for (const store of stores) await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

runTenantStoreContract(t, 'sqlite in-memory store', async (): Promise<StoreUnderTest> => {
  const store = new SqliteTenantStore({ path: ':memory:' });
  await store.init();
  return { store, cleanup: () => store.close() };
});

t.test('creates the database file and its parent folders on first init, in WAL mode', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'data', 'nested', 'tenant-gate.db');
  const store = new SqliteTenantStore({ path });
  t.notOk(existsSync(join(dir, 'data')), 'nothing is created before init');
  await store.init();
  t.teardown(() => store.close());
  t.ok(existsSync(path), 'the file exists after init');

  const db = new Database(path, { readonly: true });
  t.teardown(() => db.close());
  t.equal(db.pragma('journal_mode', { simple: true }), 'wal');
});

t.test('migrations are versioned and applied once', async (t) => {
  const path = join(tempDir(t), 'tenant-gate.db');
  const store = await openStore(t, path);
  const log = migrationLog(path);
  t.strictSame(
    log.map((m) => [m.version, m.name]),
    SQLITE_MIGRATIONS.map((m) => [m.version, m.name]),
    'every migration is recorded with its version',
  );

  await store.init();
  t.strictSame(migrationLog(path), log, 'a second init applies nothing');
  await store.close();
  await store.init();
  t.strictSame(migrationLog(path), log, 'init after close applies nothing');
  const other = await openStore(t, path);
  await other.ping();
  t.strictSame(migrationLog(path), log, 'reopening the file applies nothing new');

  const db = new Database(path);
  t.teardown(() => db.close());
  t.strictSame(applyMigrations(db), [], 'applyMigrations reports nothing pending on a current file');
});

t.test('a closed store opens again with init()', async (t) => {
  const path = join(tempDir(t), 'tenant-gate.db');
  const store = await openStore(t, path);
  await store.putCompany(seedCompany('c-acme', 'Acme'));
  const before = await store.findTenant('acme');
  await store.close();
  await store.close();
  t.ok((await rejection(store.findTenant('acme'))) instanceof StoreUnavailableError, 'unavailable while closed');
  await store.init();
  t.strictSame(await store.findTenant('acme'), before, 'reads work again after init');
  await store.putCompany(seedCompany('c-beta', 'Beta'));
  t.equal(await store.findTenantByDomain('beta.com'), 'Beta', 'writes work again after init');
});

t.test('applyMigrations applies only the pending steps, all or none', async (t) => {
  const db = new Database(':memory:');
  t.teardown(() => db.close());
  const one: SqliteMigration = { version: 1, name: 'one', up: 'CREATE TABLE one (x INTEGER)' };
  const two: SqliteMigration = { version: 2, name: 'two', up: 'CREATE TABLE two (x INTEGER)' };
  const broken: SqliteMigration = {
    version: 3,
    name: 'broken',
    up: 'CREATE TABLE three (x INTEGER); INSERT INTO no_such_table VALUES (1)',
  };
  const tables = (): string[] =>
    (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map(
      (r) => r.name,
    );

  t.strictSame(applyMigrations(db, [one]), [1]);
  t.strictSame(applyMigrations(db, [one, two]), [2], 'only the new step runs');
  t.strictSame(tables(), ['one', 'schema_migrations', 'two']);

  t.throws(() => applyMigrations(db, [one, two, broken]), /no_such_table/);
  t.strictSame(tables(), ['one', 'schema_migrations', 'two'], 'a failing step leaves no partial change');
  t.equal(db.prepare('SELECT max(version) FROM schema_migrations').pluck().get(), 2, 'the failing step is not recorded');

  t.throws(() => applyMigrations(db, [two]), /version 2, expected 1/, 'an out-of-order list is refused');
  t.throws(() => applyMigrations(db, [one]), /newer/, 'a file ahead of the list is refused');
});

t.test('a database written by a newer schema is refused and left as it is', async (t) => {
  const path = join(tempDir(t), 'tenant-gate.db');
  const store = await openStore(t, path);
  await store.putCompany(seedCompany('c-acme', 'Acme'));
  await store.close();

  const future = SQLITE_MIGRATIONS.length + 1;
  const db = new Database(path);
  db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(future, 'future', 1);
  db.close();

  const err = await rejection(new SqliteTenantStore({ path }).init());
  t.ok(err instanceof StoreUnavailableError, 'init rejects with StoreUnavailableError');
  t.match((err as Error).cause, { message: /newer/ });
  t.equal(migrationLog(path).at(-1)?.version, future, 'the file was not modified');
});

t.test('a file that cannot be used is reported unavailable', async (t) => {
  const dir = tempDir(t);
  const garbage = join(dir, 'garbage.db');
  writeFileSync(garbage, 'this is not a database, but it is long enough to have a header'.repeat(10));
  t.ok((await rejection(new SqliteTenantStore({ path: garbage }).init())) instanceof StoreUnavailableError, 'not a database');

  const blocker = join(dir, 'file');
  writeFileSync(blocker, '');
  const underFile = join(blocker, 'tenant-gate.db');
  t.ok((await rejection(new SqliteTenantStore({ path: underFile }).init())) instanceof StoreUnavailableError, 'parent is a file');

  const never = new SqliteTenantStore({ path: ':memory:' });
  t.ok((await rejection(never.listCompanies())) instanceof StoreUnavailableError, 'used before init');
});

t.test('two stores on one file share data and uniqueness', async (t) => {
  const path = join(tempDir(t), 'tenant-gate.db');
  const first = await openStore(t, path);
  const second = await openStore(t, path);

  await first.putCompany(seedCompany('c-acme', 'Acme'));
  await first.putProvider(seedProvider('c-acme', 'acme-sso', 'acme-web'));
  t.equal((await second.findTenant('acme'))?.providers.length, 1, 'a write of one is read by the other at once');

  const err = await rejection(second.putCompany(seedCompany('c-beta', 'Beta', { domains: ['acme.com'] })));
  t.match(err, { field: 'domain', value: 'acme.com' });
  t.ok(err instanceof ConflictError, 'uniqueness holds across connections');
  t.equal(await first.getCompany('c-beta'), undefined);
});

t.test('domains and hosts are lower-cased and de-duplicated', async (t) => {
  const store = await openStore(t, ':memory:');
  const result = await store.putCompany(
    seedCompany('c-acme', 'Acme', { domains: ['Acme.COM', 'acme.com', 'Other.org'], hosts: ['ML.Acme.com'] }),
  );
  t.strictSame(result.current?.sso.domains, ['acme.com', 'other.org']);
  t.strictSame(result.current?.sso.hosts, ['ml.acme.com']);
  t.equal(await store.findTenantByDomain('ACME.com'), 'Acme');
  t.equal(await store.findTenantByHost('ml.ACME.com'), 'Acme');
  const err = await rejection(store.putCompany(seedCompany('c-beta', 'Beta', { domains: ['OTHER.org'] })));
  t.match(err, { field: 'domain', value: 'other.org' }, 'a conflict names the stored form');
});

t.test('records without their keys are refused before anything is written', async (t) => {
  const store = await openStore(t, ':memory:');
  const company = seedCompany('c-acme', '');
  t.match(await rejection(store.putCompany(company)), { field: 'sso.tenant' });
  t.ok((await rejection(store.putCompany(company))) instanceof ValidationError);
  const provider = seedProvider('c-acme', 'acme-sso', '');
  t.match(await rejection(store.putProvider(provider)), { field: 'configuration.client_id' });
  t.strictSame(await store.listCompanies(), []);
  t.strictSame(await store.listProviders(), []);
});

t.test('updatedAt comes from the injected clock', async (t) => {
  let now = 1_700_000_000_000;
  const store = await openStore(t, ':memory:', { now: () => now });
  t.equal((await store.putCompany(seedCompany('c-acme', 'Acme'))).current?.updatedAt, now);
  now += 5000;
  t.equal((await store.putProvider(seedProvider('c-acme', 'acme-sso', 'acme-web'))).current?.updatedAt, now);
  t.equal((await store.getCompany('c-acme'))?.updatedAt, now - 5000, 'a provider write does not touch its company');
});
