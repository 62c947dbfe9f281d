import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import t from 'tap';
import { ADVISORY_LOCK_CLASS, applyPostgresMigrations, POSTGRES_MIGRATIONS } from '../../src/directory/postgres-migrations.js';
import type { PostgresMigration } from '../../src/directory/postgres-migrations.js';
import { createStore } from '../../src/directory/open-store.js';
import { PostgresTenantStore } from '../../src/directory/postgres-store.js';
import type { PostgresTenantStoreOptions } from '../../src/directory/postgres-store.js';
import { SqliteTenantStore } from '../../src/directory/sqlite-store.js';
import type { Company, TenantStore } from '../../src/directory/types.js';
import { ConflictError, StoreUnavailableError, ValidationError } from '../../src/errors.js';
import { runTenantStoreContract, seedCompany, seedProvider } from './store-contract.js';
import type { StoreUnderTest } from './store-contract.js';
import { PG_URL, postgresReachable } from '../helpers/services.js';

type Test = import('tap').Test;


async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (e: unknown) => e,
  );
}

function withoutTime(company: Company | undefined): Omit<Company, 'updatedAt'> | undefined {
  if (!company) return undefined;
  const { updatedAt: _ignored, ...rest } = company;
  return rest;
}

if (!(await postgresReachable())) {
  const { hostname, port } = new URL(PG_URL);
  t.plan(0, `PostgreSQL not reachable at ${hostname}:${port || 5432}: postgres suites skipped`);
} else {
  const run = `tg_test_${randomBytes(5).toString('hex')}`;
  let schemas = 0;
  const admin = new pg.Pool({ connectionString: PG_URL, max: 3 });
  admin.on('error', () => undefined);

  const dropSchema = (schema: string) => admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
  t.teardown(async () => {
    const { rows } = await admin.query<{ nspname: string }>(
      `SELECT nspname FROM pg_namespace WHERE nspname LIKE $1 || '%'`,
      [run],
    );
    for (const { nspname } of rows) await dropSchema(nspname);
    await admin.end();
  });

  /** A schema of this run; every schema of the run is dropped at the end. */
  const newSchema = (): string => `${run}_${++schemas}`;

  async function openStore(t: Test, options: Partial<PostgresTenantStoreOptions> = {}): Promise<PostgresTenantStore> {
    const store = new PostgresTenantStore({ url: PG_URL, schema: newSchema(), ...options });
    t.teardown(() => store.close());
    await store.init();
    return store;
  }

  async function migrationLog(schema: string): Promise<{ version: number; name: string; applied_at: string }[]> {
    const { rows } = await admin.query(
      `SELECT version, name, applied_at FROM ${pg.escapeIdentifier(schema)}.schema_migrations ORDER BY version`,
    );
    return rows;
  }

  runTenantStoreContract(t, 'postgres store', async (): Promise<StoreUnderTest> => {
    const schema = newSchema();
    const stores: PostgresTenantStore[] = [];
    const make = async (): Promise<PostgresTenantStore> => {
      const store = new PostgresTenantStore({ url: PG_URL, schema });
      stores.push(store);
      await store.init();
      return store;
    };
    return {
      store: await make(),
      reopen: make,
      cleanup: async () => {
        for (const store of stores) await store.close();
        await dropSchema(schema);
      },
    };
  });

  t.test('migrations are versioned, applied once, and init is idempotent', async (t) => {
    const store = await openStore(t);
    const log = await migrationLog(store.schema);
    t.strictSame(
      log.map((m) => [m.version, m.name]),
      POSTGRES_MIGRATIONS.map((m) => [m.version, m.name]),
      'every migration is recorded with its version',
    );

    await store.init();
    t.strictSame(await migrationLog(store.schema), log, 'a second init applies nothing');
    await store.close();
    await store.init();
    t.strictSame(await migrationLog(store.schema), log, 'init after close applies nothing');
    const other = await openStore(t, { schema: store.schema });
    await other.ping();
    t.strictSame(await migrationLog(store.schema), log, 'a second store on the schema applies nothing new');

    const client = await admin.connect();
    t.teardown(() => client.release());
    t.strictSame(await applyPostgresMigrations(client, { schema: store.schema }), [], 'nothing is pending on a current schema');
  });

  t.test('stores starting together on a new schema migrate it once', async (t) => {
    const schema = newSchema();
    const stores = Array.from({ length: 6 }, () => new PostgresTenantStore({ url: PG_URL, schema, poolMax: 2 }));
    t.teardown(() => Promise.all(stores.map((s) => s.close())));

    const settled = await Promise.allSettled(stores.map((s) => s.init()));
    t.strictSame(
      settled.map((s) => s.status),
      stores.map(() => 'fulfilled'),
      'every init succeeds',
    );
    t.strictSame(
      (await migrationLog(schema)).map((m) => m.version),
      POSTGRES_MIGRATIONS.map((m) => m.version),
      'each version is recorded once',
    );
    await stores[0]!.putCompany(seedCompany('c-acme', 'Acme'));
    for (const store of stores) t.equal(await store.findTenantByDomain('acme.com'), 'Acme', 'every store uses the one schema');
  });

  t.test('a failing migration leaves the database as it was', async (t) => {
    const schema = newSchema();
    const one: PostgresMigration = { version: 1, name: 'one', up: 'CREATE TABLE one (x integer)' };
    const two: PostgresMigration = { version: 2, name: 'two', up: 'CREATE TABLE two (x no_such_type)' };
    const client = await admin.connect();
    t.teardown(() => client.release());

    await t.rejects(applyPostgresMigrations(client, { schema, migrations: [one, two] }), /no_such_type/);
    const { rowCount } = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    t.equal(rowCount, 0, 'not even the schema was created');

    t.strictSame(await applyPostgresMigrations(client, { schema, migrations: [one] }), [1]);
    t.strictSame(await applyPostgresMigrations(client, { schema, migrations: [one, { ...two, up: 'CREATE TABLE two (x integer)' }] }), [2], 'only the pending step runs');
    await t.rejects(applyPostgresMigrations(client, { schema, migrations: [two] }), /version 2, expected 1/, 'an out-of-order list is refused');
    await t.rejects(applyPostgresMigrations(client, { schema, migrations: [one] }), /newer/, 'a schema ahead of the list is refused');
  });

  t.test('a schema written by a newer gateway is refused and left as it is', async (t) => {
    const store = await openStore(t);
    await store.putCompany(seedCompany('c-acme', 'Acme'));
    await store.close();
    const future = POSTGRES_MIGRATIONS.length + 1;
    await admin.query(
      `INSERT INTO ${pg.escapeIdentifier(store.schema)}.schema_migrations (version, name, applied_at) VALUES ($1, 'future', 1)`,
      [future],
    );

    const err = await rejection(new PostgresTenantStore({ url: PG_URL, schema: store.schema }).init());
    t.ok(err instanceof StoreUnavailableError, 'init rejects with StoreUnavailableError');
    t.match((err as Error).cause, { message: /newer/ });
    t.equal((await migrationLog(store.schema)).at(-1)?.version, future, 'the log was not modified');
  });

  t.test('an unreachable server fails fast with StoreUnavailableError', async (t) => {
    const silent = net.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const sockets = new Set<net.Socket>();
    silent.on('connection', (s) => sockets.add(s));
    t.teardown(() => {
      for (const s of sockets) s.destroy();
      silent.close();
    });
    const { port } = silent.address() as net.AddressInfo;

    const started = Date.now();
    const hung = new PostgresTenantStore({ url: `postgres://postgres@127.0.0.1:${port}/test`, connectTimeoutMs: 300 });
    t.ok((await rejection(hung.init())) instanceof StoreUnavailableError, 'a server that never answers');
    t.ok(Date.now() - started < 2000, `gave up after connectTimeoutMs (${Date.now() - started} ms)`);

    const refused = new PostgresTenantStore({ url: 'postgres://postgres@127.0.0.1:1/test', connectTimeoutMs: 300 });
    t.ok((await rejection(refused.init())) instanceof StoreUnavailableError, 'a port nobody listens on');
    const never = new PostgresTenantStore({ url: PG_URL });
    t.ok((await rejection(never.findTenant('acme'))) instanceof StoreUnavailableError, 'used before init');
    t.throws(() => new PostgresTenantStore({ url: PG_URL, schema: 'bad"; DROP' }), /schema/, 'an unsafe schema name is refused');
  });

  t.test('losing the server mid-life: calls reject with StoreUnavailableError, then recover', async (t) => {
    const target = new URL(PG_URL);
    const sockets = new Set<net.Socket>();
    const proxy = net.createServer((inbound) => {
      const outbound = net.connect(Number(target.port || 5432), target.hostname);
      sockets.add(inbound).add(outbound);
      inbound.pipe(outbound).pipe(inbound);
      inbound.on('error', () => outbound.destroy());
      outbound.on('error', () => inbound.destroy());
    });
    const listen = (port: number) => new Promise<void>((resolve) => proxy.listen(port, '127.0.0.1', resolve));
    await listen(0);
    const { port } = proxy.address() as net.AddressInfo;
    const cut = async (): Promise<void> => {
      await new Promise<void>((resolve) => {
        proxy.close(() => resolve());
        for (const s of sockets) s.destroy();
        sockets.clear();
      });
    };
    t.teardown(cut);

    const viaProxy = new URL(PG_URL);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(port);
    const warnings: unknown[] = [];
    const store = await openStore(t, {
      url: viaProxy.toString(),
      connectTimeoutMs: 500,
      logger: { warn: (obj) => void warnings.push(obj) },
    });
    await store.putCompany(seedCompany('c-acme', 'Acme'));
    await Promise.all([store.ping(), store.ping(), store.ping()]);

    await cut();
    await sleep(50);
    const started = Date.now();
    t.ok((await rejection(store.findTenant('acme'))) instanceof StoreUnavailableError, 'a read rejects');
    t.ok((await rejection(store.putCompany(seedCompany('c-beta', 'Beta')))) instanceof StoreUnavailableError, 'a write rejects');
    t.ok((await rejection(store.ping())) instanceof StoreUnavailableError, 'ping rejects');
    t.ok(Date.now() - started < 3000, 'without hanging');

    await listen(port);
    t.equal((await store.findTenant('ACME'))?.company.company, 'c-acme', 'the store works again once the server is back');
    t.pass(`the process survived the dropped connections (${warnings.length} logged)`);
  });

  t.test('a terminated backend does not crash the process', async (t) => {
    const appName = `tg-test-${randomBytes(4).toString('hex')}`;
    const warnings: unknown[] = [];
    const store = await openStore(t, {
      url: `${PG_URL}?application_name=${appName}`,
      logger: { warn: (obj) => void warnings.push(obj) },
    });
    await Promise.all([store.ping(), store.ping(), store.ping()]);
    const { rows } = await admin.query('SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE application_name = $1', [appName]);
    t.ok(rows.length > 0, 'its idle connections were terminated');
    await sleep(100);
    t.ok(warnings.length > 0, 'the pool error was logged');
    await store.putCompany(seedCompany('c-acme', 'Acme'));
    t.equal(await store.findTenantByHost('ml.acme.com'), 'Acme', 'the store carries on with new connections');
  });

  t.test('two stores on one schema: writes are seen at once and exactly one claim wins', async (t) => {
    const first = await openStore(t);
    const second = await openStore(t, { schema: first.schema });
    await first.putCompany(seedCompany('c-acme', 'Acme'));
    await first.putProvider(seedProvider('c-acme', 'acme-sso', 'acme-web'));
    t.equal((await second.findTenant('acme'))?.providers.length, 1, 'a write of one is read by the other');

    const claims = Array.from({ length: 10 }, (_, i) =>
      (i % 2 === 0 ? first : second).putCompany(seedCompany(`c-${i}`, `t-${i}`, { domains: ['contested.com'], hosts: [`h${i}.example`] })),
    );
    const settled = await Promise.allSettled(claims);
    const won = settled.flatMap((s, i) => (s.status === 'fulfilled' ? [i] : []));
    t.equal(won.length, 1, 'one company got the domain');
    t.ok(
      settled.every((s) => s.status === 'fulfilled' || (s.reason instanceof ConflictError && s.reason.field === 'domain')),
      'every other claim was a domain conflict',
    );
    t.equal(await second.findTenantByDomain('contested.com'), `t-${won[0]}`);
    t.equal((await first.listCompanies()).length, 2, 'no losing company was stored');
  });

  t.test('a unique violation from a writer outside the store names its field', async (t) => {
    const store = await openStore(t);
    const s = pg.escapeIdentifier(store.schema);
    const raw = await admin.connect();
    t.teardown(() => raw.release());

    const blockedOn = async (table: string): Promise<void> => {
      for (let i = 0; i < 100; i++) {
        const { rowCount } = await admin.query(
          `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`,
          [`INSERT INTO ${s}.${table}%`],
        );
        if (rowCount) return;
        await sleep(20);
      }
      throw new Error(`no insert into ${table} waited`);
    };

    await raw.query('BEGIN');
    await raw.query(`INSERT INTO ${s}.companies VALUES ('c-raw', 'Raw', 'raw', '{}', 1)`);
    await raw.query(`INSERT INTO ${s}.company_domains VALUES ('raced.com', 'c-raw', 0)`);
    const domainClaim = rejection(store.putCompany(seedCompany('c-beta', 'Beta', { domains: ['beta.com', 'raced.com'] })));
    await blockedOn('company_domains');
    await raw.query('COMMIT');
    const domainErr = await domainClaim;
    t.ok(domainErr instanceof ConflictError, 'a ConflictError');
    t.match(domainErr, { field: 'domain', value: 'raced.com' });
    t.equal(await store.getCompany('c-beta'), undefined, 'the losing write changed nothing');

    await raw.query('BEGIN');
    await raw.query(`INSERT INTO ${s}.companies VALUES ('c-raw2', 'Other', 'other', '{}', 1)`);
    const tenantClaim = rejection(store.putCompany(seedCompany('c-gamma', 'OTHER', { domains: [], hosts: [] })));
    await blockedOn('companies');
    await raw.query('COMMIT');
    t.match(await tenantClaim, { field: 'tenant', value: 'OTHER' }, 'the tenant as the losing write gave it');
  });

  t.test('a write stuck behind another writer fails after statementTimeoutMs instead of hanging', async (t) => {
    const store = await openStore(t, { statementTimeoutMs: 200 });
    const other = await openStore(t, { schema: store.schema });
    const raw = await admin.connect();
    t.teardown(() => raw.release());
    await raw.query('BEGIN');
    await raw.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [ADVISORY_LOCK_CLASS.write, store.schema]);

    const started = Date.now();
    const err = await rejection(store.putCompany(seedCompany('c-acme', 'Acme')));
    t.ok(err instanceof StoreUnavailableError, 'StoreUnavailableError');
    t.ok(Date.now() - started < 1500, `after ${Date.now() - started} ms`);
    t.equal(await store.findTenant('acme'), undefined, 'reads do not wait for writers');

    const waiting = other.putCompany(seedCompany('c-beta', 'Beta'));
    await sleep(100);
    await raw.query('COMMIT');
    t.equal((await waiting).current?.company, 'c-beta', 'a writer without a timeout proceeds once the lock is free');
  });

  t.test('JSON settings, names and ordering round-trip as in the SQLite store', async (t) => {
    const pgStore = await openStore(t);
    const sqlite = new SqliteTenantStore({ path: ':memory:' });
    await sqlite.init();
    t.teardown(() => sqlite.close());

    const awkward = seedCompany('c-émile', 'Émile', {
      group_mapping: {
        ['__proto__']: 'proto',
        'a.b': ['x', 'y'],
        'quotes " and \\ backslash': 'emoji 🚀',
        'line\u2028separator': 'nul \u0000 inside',
        zz: 'last',
        '10': 'numeric key',
      },
      admin_groups: ['Ünïcødé', ''],
      groups: [],
      display_name: 'tab\tand\nnewline',
    });
    const companies = [awkward, seedCompany('c-Zed', 'zed'), seedCompany('c_beta', 'b1'), seedCompany('c-beta', 'b2'), seedCompany('c-alpha', 'a')];
    const provider = seedProvider('c-émile', 'sso', 'web', { display_name: '日本語', scope: 'openid\u0000' });
    const both = async (fn: (s: TenantStore) => Promise<unknown>) => [await fn(pgStore), await fn(sqlite)] as const;
    for (const c of companies) await both((s) => s.putCompany(c));
    await both((s) => s.putProvider(provider));

    const [pgList, sqliteList] = await both((s) => s.listCompanies());
    t.strictSame(
      (pgList as Company[]).map(withoutTime),
      (sqliteList as Company[]).map(withoutTime),
      'the same companies in the same order',
    );
    const [pgFound, sqliteFound] = await both((s) => s.findTenant('Émile'));
    t.same(JSON.stringify((pgFound as { company: Company }).company.sso), JSON.stringify((sqliteFound as { company: Company }).company.sso), 'settings serialise identically');
    t.strictSame(
      (await pgStore.getProvider('c-émile', 'sso'))?.configuration,
      (await sqlite.getProvider('c-émile', 'sso'))?.configuration,
    );
  });

  t.test('text PostgreSQL cannot hold is refused on write and never found', async (t) => {
    const store = await openStore(t);
    const err = await rejection(store.putCompany(seedCompany('c-\u0000', 'nul')));
    t.ok(err instanceof ValidationError, 'a NUL in a key is a ValidationError');
    t.strictSame(await store.listCompanies(), [], 'nothing was written');
    t.equal(await store.findTenant('a\u0000b'), undefined);
    t.equal(await store.findTenantByDomain('a\u0000.com'), undefined);
    t.equal(await store.findTenantByHost('a\u0000.com'), undefined);
    t.equal(await store.findClient('\u0000'), undefined);
    t.strictSame(await store.listProviders('\u0000'), []);
    await store.close();
    t.ok((await rejection(store.findTenant('a\u0000b'))) instanceof StoreUnavailableError, 'still unavailable when closed');
  });

  t.test('a closed store opens again with init()', async (t) => {
    const store = await openStore(t);
    await store.putCompany(seedCompany('c-acme', 'Acme'));
    const before = await store.findTenant('acme');
    await store.close();
    await store.close();
    t.ok((await rejection(store.findTenant('acme'))) instanceof StoreUnavailableError, 'unavailable while closed');
    t.ok((await rejection(store.putCompany(seedCompany('c-beta', 'Beta')))) instanceof StoreUnavailableError, 'writes too');
    await store.init();
    t.strictSame(await store.findTenant('acme'), before, 'reads work again after init');
  });

  t.test('updatedAt comes from the injected clock', async (t) => {
    let now = 1_700_000_000_000;
    const store = await openStore(t, { now: () => now });
    t.equal((await store.putCompany(seedCompany('c-acme', 'Acme'))).current?.updatedAt, now);
    now += 5000;
    t.equal((await store.putProvider(seedProvider('c-acme', 'acme-sso', 'acme-web'))).current?.updatedAt, now);
    t.equal((await store.getCompany('c-acme'))?.updatedAt, now - 5000, 'a provider write does not touch its company');
  });

  t.test('createStore opens postgres:// and postgresql:// URLs, with the schema from the URL', async (t) => {
    const schema = newSchema();
    const url = new URL(PG_URL);
    url.searchParams.set('schema', schema);
    url.searchParams.set('application_name', 'tenant-gate-test');
    const store = await createStore(url.toString());
    t.teardown(() => store.close());
    t.ok(store instanceof PostgresTenantStore, 'a PostgresTenantStore');
    t.equal(store.kind, 'postgres');
    await store.init();
    await store.putCompany(seedCompany('c-acme', 'Acme'));
    const { rows } = await admin.query(`SELECT company FROM ${pg.escapeIdentifier(schema)}.companies`);
    t.strictSame(rows, [{ company: 'c-acme' }], 'the tables are in the schema the URL names');

    const plain = await createStore(PG_URL.replace(/^postgres:/, 'postgresql:'));
    t.equal((plain as PostgresTenantStore).schema, 'public', 'public by default');
    await t.rejects(createStore(`${PG_URL}?schema=bad-name`), { code: 'TG_CONFIG_INVALID' }, 'a bad schema is a configuration error');
  });
}
