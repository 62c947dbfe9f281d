/**
 * Schema of the PostgreSQL tenant directory, as an ordered list of migrations.
 *
 * Rules:
 * - versions start at 1 and increase by one; a released migration is never edited,
 *   a change is a new migration appended to the list;
 * - every pending migration is applied in one transaction that first takes a
 *   transaction-level advisory lock for the schema, so replicas starting together
 *   wait for each other and apply each version once; a failing migration leaves
 *   the database as it was (DDL is transactional in PostgreSQL);
 * - the schema itself is created when missing; each applied version is recorded in
 *   its `schema_migrations` table; a database recording a version this code does not
 *   know is refused rather than used;
 * - text keys use the "C" collation, so uniqueness and ordering are by code point,
 *   as in the SQLite store, whatever the database's locale.
 */
import type { ClientBase } from 'pg';
import { escapeIdentifier } from 'pg';

/** One step of the schema. */
export interface PostgresMigration {
  /** Position in the list, starting at 1. */
  readonly version: number;
  /** Short description, recorded with the version. */
  readonly name: string;
  /** SQL run once inside the migration transaction, with `search_path` set to the store's schema. */
  readonly up: string;
}

/** The migrations of the tenant directory, oldest first. */
export const POSTGRES_MIGRATIONS: readonly PostgresMigration[] = [
  {
    version: 1,
    name: 'companies, domains, hosts and providers',
    up: `
      CREATE TABLE companies (
        company    text COLLATE "C" NOT NULL CONSTRAINT companies_pkey PRIMARY KEY,
        tenant     text NOT NULL,
        tenant_key text COLLATE "C" NOT NULL CONSTRAINT companies_tenant_key_unique UNIQUE,
        sso        json NOT NULL,
        updated_at bigint NOT NULL
      );

      CREATE TABLE company_domains (
        domain   text COLLATE "C" NOT NULL CONSTRAINT company_domains_pkey PRIMARY KEY,
        company  text COLLATE "C" NOT NULL REFERENCES companies (company) ON DELETE CASCADE,
        position integer NOT NULL
      );
      CREATE INDEX company_domains_by_company ON company_domains (company, position);

      CREATE TABLE company_hosts (
        host     text COLLATE "C" NOT NULL CONSTRAINT company_hosts_pkey PRIMARY KEY,
        company  text COLLATE "C" NOT NULL REFERENCES companies (company) ON DELETE CASCADE,
        position integer NOT NULL
      );
      CREATE INDEX company_hosts_by_company ON company_hosts (company, position);

      -- No foreign key to companies: deleting a company keeps its providers.
      CREATE TABLE providers (
        company       text COLLATE "C" NOT NULL,
        id            text COLLATE "C" NOT NULL,
        provider      text NOT NULL,
        client_id     text COLLATE "C" NOT NULL CONSTRAINT providers_client_id_unique UNIQUE,
        configuration json NOT NULL,
        updated_at    bigint NOT NULL,
        CONSTRAINT providers_pkey PRIMARY KEY (company, id)
      );
    `,
  },
  {
    version: 2,
    name: 'identity assertion signing keys',
    up: `
      CREATE TABLE signing_keys (
        kid         text COLLATE "C" NOT NULL CONSTRAINT signing_keys_pkey PRIMARY KEY,
        alg         text NOT NULL,
        private_jwk text NOT NULL,
        public_jwk  text NOT NULL,
        created_at  bigint NOT NULL,
        retired_at  bigint
      );
      -- At most one current key.
      CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys ((retired_at IS NULL)) WHERE retired_at IS NULL;
    `,
  },
];

/** First key of the advisory locks the directory takes; the second is a hash of the schema name. */
export const ADVISORY_LOCK_CLASS = { migrate: 0x74670001, write: 0x74670002 } as const;

/** A schema name the directory accepts: an unquoted-style identifier, at most 63 bytes. */
export const SCHEMA_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

const CREATE_LOG = `
  CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer NOT NULL PRIMARY KEY,
    name       text NOT NULL,
    applied_at bigint NOT NULL
  )
`;

function checkOrder(migrations: readonly PostgresMigration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(`migration "${m.name}" has version ${m.version}, expected ${i + 1}`);
    }
  });
}

/** Options of {@link applyPostgresMigrations}. */
export interface ApplyPostgresMigrationsOptions {
  /** Schema holding the directory's tables; created when missing. */
  schema: string;
  migrations?: readonly PostgresMigration[];
  /** Clock for `applied_at`, in milliseconds since the epoch. Default `Date.now`. */
  now?: () => number;
}

/**
 * Brings the schema up to the last of `migrations` and returns the versions it
 * applied (empty when the schema was already current). `client` must not be inside a
 * transaction; this function runs its own.
 *
 * @throws when the list is out of order, the schema name is not acceptable, or the
 *   database records a version newer than the list knows (a newer gateway wrote it).
 */
export async function applyPostgresMigrations(client: ClientBase, options: ApplyPostgresMigrationsOptions): Promise<number[]> {
  const { schema, migrations = POSTGRES_MIGRATIONS, now = Date.now } = options;
  if (!SCHEMA_NAME_PATTERN.test(schema)) throw new Error(`schema name "${schema}" is not acceptable`);
  checkOrder(migrations);
  const quoted = escapeIdentifier(schema);

  await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [ADVISORY_LOCK_CLASS.migrate, schema]);
    const exists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    if (exists.rowCount === 0) await client.query(`CREATE SCHEMA ${quoted}`);
    await client.query(`SET LOCAL search_path TO ${quoted}`);
    await client.query(CREATE_LOG);
    const { rows } = await client.query<{ version: number | null }>('SELECT max(version) AS version FROM schema_migrations');
    const current = rows[0]?.version ?? 0;
    if (current > migrations.length) {
      throw new Error(
        `database schema version ${current} is newer than the latest this gateway knows (${migrations.length})`,
      );
    }
    const applied: number[] = [];
    for (const m of migrations.slice(current)) {
      await client.query(m.up);
      await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
        m.version,
        m.name,
        now(),
      ]);
      applied.push(m.version);
    }
    await client.query('COMMIT');
    return applied;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
