/**
 * The tenant directory in an embedded SQLite file (better-sqlite3).
 *
 * Rules this backend enforces:
 * - every write runs in one immediate transaction: the uniqueness of tenant (compared
 *   lower-cased), domains, hosts and client_id is checked inside it, before anything is
 *   written, so a conflict names its field and leaves the file untouched;
 * - reads that need several statements (a company with its domains, hosts and
 *   providers) run in one read transaction, so they see a single snapshot;
 * - records come back in a normal form: optional fields that were undefined are
 *   absent, domains and hosts are lower-cased without duplicates, in the order given;
 * - a store that is not open, or a file that cannot be used, raises
 *   `StoreUnavailableError`; other SQLite errors are bugs and propagate as they are.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { ConflictError, GatewayError, StoreUnavailableError, ValidationError } from '../errors.js';
import { applyMigrations } from './sqlite-migrations.js';
import { companyRow, currentKey, providerRow, requireText, writeResult, type SsoSettings } from './record-shape.js';
import type {
  ClientRecord,
  Company,
  Provider,
  ProviderConfiguration,
  SigningKey,
  TenantRecord,
  TenantStore,
  WriteResult,
} from './types.js';
import { tenantKey } from '../tenancy/tenant-id.js';

/** Options of {@link SqliteTenantStore}. */
export interface SqliteTenantStoreOptions {
  /** Database file; its parent folder is created when missing. `:memory:` keeps everything in memory. */
  path: string;
  /** How long a write waits for another process's lock before failing, in milliseconds. Default 5000. */
  busyTimeoutMs?: number;
  /** Clock for `updatedAt`, in milliseconds since the epoch. Default `Date.now`. */
  now?: () => number;
}

interface CompanyRow {
  company: string;
  tenant: string;
  sso: string;
  updated_at: number;
}

interface ProviderRow {
  company: string;
  provider: string;
  configuration: string;
  updated_at: number;
}

interface OwnerRow {
  company: string;
}


const UNAVAILABLE_CODES = /^SQLITE_(BUSY|LOCKED|IOERR|CANTOPEN|CORRUPT|NOTADB|FULL|READONLY|PERM|AUTH)/;

function isUnavailable(err: unknown): boolean {
  if (err instanceof Database.SqliteError) return UNAVAILABLE_CODES.test(err.code);
  return err instanceof TypeError && /database connection is not open/i.test(err.message);
}

/** A JSON round trip drops undefined members, so stored and returned records agree. */
function toJson(value: unknown): string {
  return JSON.stringify(value);
}

/** SQLite implementation of {@link TenantStore}. */
export class SqliteTenantStore implements TenantStore {
  readonly kind = 'sqlite';
  readonly #path: string;
  readonly #busyTimeoutMs: number;
  readonly #now: () => number;
  #db: Database.Database | undefined;
  readonly #statements = new Map<string, Database.Statement>();

  constructor(options: SqliteTenantStoreOptions) {
    this.#path = options.path;
    this.#busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    this.#now = options.now ?? Date.now;
  }

  /** Opens the file (creating it and its folder when missing) and applies pending migrations. Idempotent. */
  async init(): Promise<void> {
    if (this.#db) return;
    let db: Database.Database | undefined;
    try {
      if (this.#path !== ':memory:' && this.#path !== '') mkdirSync(dirname(this.#path), { recursive: true });
      db = new Database(this.#path);
      db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(this.#busyTimeoutMs))}`);
      db.pragma('journal_mode = WAL');
      db.pragma('foreign_keys = ON');
      applyMigrations(db, undefined, this.#now);
    } catch (err) {
      db?.close();
      throw new StoreUnavailableError(err);
    }
    this.#db = db;
  }

  async ping(): Promise<void> {
    this.#use((db) => this.#sql(db, 'SELECT 1').get());
  }

  /** Closes the file. Idempotent; `init()` opens it again. */
  async close(): Promise<void> {
    const db = this.#db;
    this.#db = undefined;
    this.#statements.clear();
    db?.close();
  }

  async getCompany(company: string): Promise<Company | undefined> {
    return this.#use((db) => db.transaction(() => this.#readCompany(db, company))());
  }

  async listCompanies(): Promise<Company[]> {
    return this.#use((db) =>
      db.transaction(() => {
        const rows = this.#sql(db, 'SELECT * FROM companies ORDER BY company').all() as CompanyRow[];
        const domains = this.#namesByCompany(db, 'SELECT company, domain AS name FROM company_domains ORDER BY company, position');
        const hosts = this.#namesByCompany(db, 'SELECT company, host AS name FROM company_hosts ORDER BY company, position');
        return rows.map((row) => toCompany(row, domains.get(row.company) ?? [], hosts.get(row.company) ?? []));
      })(),
    );
  }

  async putCompany(input: Company): Promise<WriteResult<Company>> {
    return this.updateCompany(requireText(input?.company, 'company'), () => input);
  }

  async updateCompany(companyId: string, next: (previous: Company | undefined) => Company): Promise<WriteResult<Company>> {
    const company = requireText(companyId, 'company');
    return this.#use((db) =>
      db
        .transaction(() => {
          const previous = this.#readCompany(db, company);
          const input = next(previous);
          if (input?.company !== company) throw new ValidationError('company', 'an update may not change the company id');
          const { tenant, tenantKey, domains, hosts, settings } = companyRow(input);
          const tenantOwner = this.#sql(db, 'SELECT company FROM companies WHERE tenant_key = ?').get(tenantKey) as
            | OwnerRow
            | undefined;
          if (tenantOwner && tenantOwner.company !== company) throw new ConflictError('tenant', tenant);
          const domainOwner = this.#sql(db, 'SELECT company FROM company_domains WHERE domain = ?');
          for (const domain of domains) {
            const owner = domainOwner.get(domain) as OwnerRow | undefined;
            if (owner && owner.company !== company) throw new ConflictError('domain', domain);
          }
          const hostOwner = this.#sql(db, 'SELECT company FROM company_hosts WHERE host = ?');
          for (const host of hosts) {
            const owner = hostOwner.get(host) as OwnerRow | undefined;
            if (owner && owner.company !== company) throw new ConflictError('host', host);
          }

          this.#sql(
            db,
            `INSERT INTO companies (company, tenant, tenant_key, sso, updated_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (company) DO UPDATE SET
               tenant = excluded.tenant, tenant_key = excluded.tenant_key,
               sso = excluded.sso, updated_at = excluded.updated_at`,
          ).run(company, tenant, tenantKey, toJson(settings), this.#now());
          this.#sql(db, 'DELETE FROM company_domains WHERE company = ?').run(company);
          this.#sql(db, 'DELETE FROM company_hosts WHERE company = ?').run(company);
          const addDomain = this.#sql(db, 'INSERT INTO company_domains (domain, company, position) VALUES (?, ?, ?)');
          domains.forEach((domain, i) => addDomain.run(domain, company, i));
          const addHost = this.#sql(db, 'INSERT INTO company_hosts (host, company, position) VALUES (?, ?, ?)');
          hosts.forEach((host, i) => addHost.run(host, company, i));

          return writeResult(previous, this.#readCompany(db, company));
        })
        .immediate(),
    );
  }

  async deleteCompany(company: string): Promise<WriteResult<Company>> {
    return this.#use((db) =>
      db
        .transaction(() => {
          const previous = this.#readCompany(db, company);
          if (previous) this.#sql(db, 'DELETE FROM companies WHERE company = ?').run(company);
          return writeResult(previous, undefined);
        })
        .immediate(),
    );
  }

  async getProvider(company: string, id: string): Promise<Provider | undefined> {
    return this.#use((db) => this.#readProvider(db, company, id));
  }

  async listProviders(company?: string): Promise<Provider[]> {
    return this.#use((db) => {
      const rows = (
        company === undefined
          ? this.#sql(db, 'SELECT * FROM providers ORDER BY company, id').all()
          : this.#sql(db, 'SELECT * FROM providers WHERE company = ? ORDER BY id').all(company)
      ) as ProviderRow[];
      return rows.map(toProvider);
    });
  }

  async putProvider(input: Provider): Promise<WriteResult<Provider>> {
    return this.updateProvider(requireText(input?.company, 'company'), requireText(input.configuration?.id, 'configuration.id'), () => input);
  }

  async updateProvider(companyId: string, providerId: string, next: (previous: Provider | undefined) => Provider): Promise<WriteResult<Provider>> {
    const company = requireText(companyId, 'company');
    const id = requireText(providerId, 'configuration.id');
    return this.#use((db) =>
      db
        .transaction(() => {
          const previous = this.#readProvider(db, company, id);
          const input = next(previous);
          const { provider, clientId, configuration } = providerRow(input, company, id);
          const owner = this.#sql(db, 'SELECT company, id FROM providers WHERE client_id = ?').get(clientId) as
            | { company: string; id: string }
            | undefined;
          if (owner && (owner.company !== company || owner.id !== id)) throw new ConflictError('client_id', clientId);
          this.#sql(
            db,
            `INSERT INTO providers (company, id, provider, client_id, configuration, updated_at) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (company, id) DO UPDATE SET
               provider = excluded.provider, client_id = excluded.client_id,
               configuration = excluded.configuration, updated_at = excluded.updated_at`,
          ).run(company, id, provider, clientId, configuration, this.#now());
          return writeResult(previous, this.#readProvider(db, company, id));
        })
        .immediate(),
    );
  }

  async deleteProvider(company: string, id: string): Promise<WriteResult<Provider>> {
    return this.#use((db) =>
      db
        .transaction(() => {
          const previous = this.#readProvider(db, company, id);
          if (previous) this.#sql(db, 'DELETE FROM providers WHERE company = ? AND id = ?').run(company, id);
          return writeResult(previous, undefined);
        })
        .immediate(),
    );
  }

  async findTenant(tenant: string): Promise<TenantRecord | undefined> {
    return this.#use((db) =>
      db.transaction((): TenantRecord | undefined => {
        const row = this.#sql(db, 'SELECT * FROM companies WHERE tenant_key = ?').get(tenantKey(tenant)) as
          | CompanyRow
          | undefined;
        if (!row) return undefined;
        const providers = this.#sql(db, 'SELECT * FROM providers WHERE company = ? ORDER BY id').all(row.company) as ProviderRow[];
        return { company: this.#completeCompany(db, row), providers: providers.map(toProvider) };
      })(),
    );
  }

  async findTenantByDomain(domain: string): Promise<string | undefined> {
    return this.#use((db) => {
      const sql = 'SELECT c.tenant FROM company_domains d JOIN companies c ON c.company = d.company WHERE d.domain = ?';
      const row = this.#sql(db, sql).get(domain.toLowerCase()) as { tenant: string } | undefined;
      return row?.tenant;
    });
  }

  async findTenantByHost(host: string): Promise<string | undefined> {
    return this.#use((db) => {
      const sql = 'SELECT c.tenant FROM company_hosts h JOIN companies c ON c.company = h.company WHERE h.host = ?';
      const row = this.#sql(db, sql).get(host.toLowerCase()) as { tenant: string } | undefined;
      return row?.tenant;
    });
  }

  async findClient(clientId: string): Promise<ClientRecord | undefined> {
    return this.#use((db) => {
      const sql = 'SELECT p.*, c.tenant FROM providers p LEFT JOIN companies c ON c.company = p.company WHERE p.client_id = ?';
      const row = this.#sql(db, sql).get(clientId) as (ProviderRow & { tenant: string | null }) | undefined;
      if (!row) return undefined;
      const record: ClientRecord = { provider: toProvider(row) };
      if (row.tenant !== null) record.tenant = row.tenant;
      return record;
    });
  }

  async listSigningKeys(): Promise<SigningKey[]> {
    return this.#use((db) => (this.#sql(db, LIST_KEYS).all() as SigningKeyRow[]).map(toSigningKey));
  }

  async ensureSigningKey(key: SigningKey): Promise<SigningKey> {
    return this.#use((db) =>
      db
        .transaction(() => {
          const current = this.#sql(db, `${SELECT_KEYS} WHERE retired_at IS NULL`).get() as SigningKeyRow | undefined;
          if (current) return toSigningKey(current);
          this.#insertKey(db, currentKey(key));
          return currentKey(key);
        })
        .immediate(),
    );
  }

  async rotateSigningKey(key: SigningKey, dropRetiredBefore: number): Promise<void> {
    this.#use((db) =>
      db
        .transaction(() => {
          this.#sql(db, 'UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL').run(key.createdAt);
          this.#sql(db, 'DELETE FROM signing_keys WHERE retired_at < ?').run(dropRetiredBefore);
          this.#insertKey(db, currentKey(key));
        })
        .immediate(),
    );
  }

  #insertKey(db: Database.Database, key: SigningKey): void {
    this.#sql(db, 'INSERT INTO signing_keys (kid, alg, private_jwk, public_jwk, created_at, retired_at) VALUES (?, ?, ?, ?, ?, ?)').run(
      requireText(key.kid, 'kid'),
      requireText(key.alg, 'alg'),
      toJson(key.privateJwk),
      toJson(key.publicJwk),
      key.createdAt,
      key.retiredAt ?? null,
    );
  }

  #sql(db: Database.Database, sql: string): Database.Statement {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  #use<T>(fn: (db: Database.Database) => T): T {
    const db = this.#db;
    if (!db?.open) throw new StoreUnavailableError(new Error('the SQLite store is not open'));
    try {
      return fn(db);
    } catch (err) {
      if (err instanceof GatewayError || !isUnavailable(err)) throw err;
      throw new StoreUnavailableError(err);
    }
  }

  #readCompany(db: Database.Database, company: string): Company | undefined {
    const row = this.#sql(db, 'SELECT * FROM companies WHERE company = ?').get(company) as CompanyRow | undefined;
    return row ? this.#completeCompany(db, row) : undefined;
  }

  #completeCompany(db: Database.Database, row: CompanyRow): Company {
    const names = (sql: string): string[] =>
      (this.#sql(db, sql).all(row.company) as { name: string }[]).map((r) => r.name);
    return toCompany(
      row,
      names('SELECT domain AS name FROM company_domains WHERE company = ? ORDER BY position'),
      names('SELECT host AS name FROM company_hosts WHERE company = ? ORDER BY position'),
    );
  }

  #namesByCompany(db: Database.Database, sql: string): Map<string, string[]> {
    const byCompany = new Map<string, string[]>();
    for (const { company, name } of this.#sql(db, sql).all() as { company: string; name: string }[]) {
      const names = byCompany.get(company);
      if (names) names.push(name);
      else byCompany.set(company, [name]);
    }
    return byCompany;
  }

  #readProvider(db: Database.Database, company: string, id: string): Provider | undefined {
    const row = this.#sql(db, 'SELECT * FROM providers WHERE company = ? AND id = ?').get(company, id) as ProviderRow | undefined;
    return row ? toProvider(row) : undefined;
  }
}

interface SigningKeyRow {
  kid: string;
  alg: string;
  private_jwk: string;
  public_jwk: string;
  created_at: number;
  retired_at: number | null;
}

const SELECT_KEYS = 'SELECT kid, alg, private_jwk, public_jwk, created_at, retired_at FROM signing_keys';
const LIST_KEYS = `${SELECT_KEYS} ORDER BY retired_at IS NOT NULL, created_at DESC, kid`;

function toSigningKey(row: SigningKeyRow): SigningKey {
  return {
    kid: row.kid,
    alg: row.alg,
    privateJwk: JSON.parse(row.private_jwk) as Record<string, unknown>,
    publicJwk: JSON.parse(row.public_jwk) as Record<string, unknown>,
    createdAt: row.created_at,
    ...(row.retired_at !== null ? { retiredAt: row.retired_at } : {}),
  };
}

function toCompany(row: CompanyRow, domains: string[], hosts: string[]): Company {
  const settings = JSON.parse(row.sso) as SsoSettings;
  return { company: row.company, sso: { tenant: row.tenant, ...settings, domains, hosts }, updatedAt: row.updated_at };
}

function toProvider(row: ProviderRow): Provider {
  return {
    company: row.company,
    provider: row.provider,
    configuration: JSON.parse(row.configuration) as ProviderConfiguration,
    updatedAt: row.updated_at,
  };
}

