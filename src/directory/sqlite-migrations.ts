/**
 * Schema of the SQLite tenant directory, as an ordered list of migrations.
 *
 * Rules:
 * - versions start at 1 and increase by one; a released migration is never edited,
 *   a change is a new migration appended to the list;
 * - every pending migration is applied in one immediate transaction, so two
 *   processes starting on the same file cannot apply one twice, and a failing
 *   migration leaves the file as it was;
 * - each applied version is recorded in `schema_migrations`; a file recording a
 *   version this code does not know is refused rather than used.
 */
import type Database from 'better-sqlite3';

/** One step of the schema. */
export interface SqliteMigration {
  /** Position in the list, starting at 1. */
  readonly version: number;
  /** Short description, recorded with the version. */
  readonly name: string;
  /** SQL run once, inside the migration transaction. */
  readonly up: string;
}

/** The migrations of the tenant directory, oldest first. */
export const SQLITE_MIGRATIONS: readonly SqliteMigration[] = [
  {
    version: 1,
    name: 'companies, domains, hosts and providers',
    up: `
      CREATE TABLE companies (
        company    TEXT PRIMARY KEY,
        tenant     TEXT NOT NULL,
        tenant_key TEXT NOT NULL UNIQUE,
        sso        TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE company_domains (
        domain   TEXT PRIMARY KEY,
        company  TEXT NOT NULL REFERENCES companies (company) ON DELETE CASCADE,
        position INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX company_domains_by_company ON company_domains (company, position);

      CREATE TABLE company_hosts (
        host     TEXT PRIMARY KEY,
        company  TEXT NOT NULL REFERENCES companies (company) ON DELETE CASCADE,
        position INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX company_hosts_by_company ON company_hosts (company, position);

      -- No foreign key to companies: deleting a company keeps its providers.
      CREATE TABLE providers (
        company       TEXT NOT NULL,
        id            TEXT NOT NULL,
        provider      TEXT NOT NULL,
        client_id     TEXT NOT NULL UNIQUE,
        configuration TEXT NOT NULL,
        updated_at    INTEGER NOT NULL,
        PRIMARY KEY (company, id)
      ) STRICT;
    `,
  },
  {
    version: 2,
    name: 'identity assertion signing keys',
    up: `
      CREATE TABLE signing_keys (
        kid         TEXT PRIMARY KEY,
        alg         TEXT NOT NULL,
        private_jwk TEXT NOT NULL,
        public_jwk  TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        retired_at  INTEGER
      ) STRICT;
      -- At most one current key.
      CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys ((retired_at IS NULL)) WHERE retired_at IS NULL;
    `,
  },
];

const CREATE_LOG = `
  CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  ) STRICT
`;

function checkOrder(migrations: readonly SqliteMigration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(`migration "${m.name}" has version ${m.version}, expected ${i + 1}`);
    }
  });
}

/**
 * Brings `db` up to the last of `migrations` and returns the versions it applied
 * (empty when the schema was already current).
 *
 * @throws when the list is out of order, or the file records a version newer than
 *   the list knows (a newer gateway wrote it).
 */
export function applyMigrations(
  db: Database.Database,
  migrations: readonly SqliteMigration[] = SQLITE_MIGRATIONS,
  now: () => number = Date.now,
): number[] {
  checkOrder(migrations);
  const apply = db.transaction((): number[] => {
    db.exec(CREATE_LOG);
    const row = db.prepare('SELECT max(version) AS version FROM schema_migrations').get() as {
      version: number | null;
    };
    const current = row.version ?? 0;
    if (current > migrations.length) {
      throw new Error(
        `database schema version ${current} is newer than the latest this gateway knows (${migrations.length})`,
      );
    }
    const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
    const applied: number[] = [];
    for (const m of migrations.slice(current)) {
      db.exec(m.up);
      record.run(m.version, m.name, now());
      applied.push(m.version);
    }
    return applied;
  });
  return apply.immediate();
}
