/**
 * The tenant directory in PostgreSQL (node-postgres pool), shared by every replica.
 *
 * Rules this backend enforces, the same as the SQLite store's:
 * - every write runs in one transaction that first takes a transaction-level advisory
 *   lock for the schema, so writers are serialised as in SQLite; the uniqueness of
 *   tenant (compared lower-cased), domains, hosts and client_id is checked inside it,
 *   before anything is written, so a conflict names its field and changes nothing;
 * - unique constraints back those checks: a unique violation (23505) from a writer
 *   that bypassed the lock is reported as the `ConflictError` of its field;
 * - every read is a single statement, so a company with its domains, hosts and
 *   providers comes from one snapshot;
 * - records come back in the SQLite store's normal form; JSON settings are stored as
 *   the text `JSON.stringify` makes, so they round-trip alike;
 * - a store that is not open, a server that cannot be reached in `connectTimeoutMs`,
 *   a lost connection, a statement timeout or a server shutting down raise
 *   `StoreUnavailableError`; text PostgreSQL cannot hold (NUL characters) raises
 *   `ValidationError`; other database errors are bugs and propagate as they are.
 */
import pg from 'pg';
import type { Pool, PoolClient } from 'pg';
import { ConfigError, ConflictError, GatewayError, StoreUnavailableError, ValidationError } from '../errors.js';
import type { ConflictField } from '../errors.js';
import { ADVISORY_LOCK_CLASS, applyPostgresMigrations, SCHEMA_NAME_PATTERN } from './postgres-migrations.js';
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

/** Where the store reports problems it recovers from by itself. */
export interface StoreLogger {
  warn(obj: object, msg: string): void;
}

/** Options of {@link PostgresTenantStore}. */
export interface PostgresTenantStoreOptions {
  /** Connection string, `postgres://user@host:port/database`. */
  url: string;
  /** Schema holding the tables; created at `init()` when missing. Default `public`. */
  schema?: string;
  /** Most pooled connections. Default 10. */
  poolMax?: number;
  /** How long to wait for a connection before failing, in milliseconds. Default 3000. */
  connectTimeoutMs?: number;
  /**
   * Server-side limit on each statement, in milliseconds; the client also gives up
   * `connectTimeoutMs` later (a server gone silent). Default: the server's setting, no client limit.
   */
  statementTimeoutMs?: number;
  /** Clock for `updatedAt`, in milliseconds since the epoch. Default `Date.now`. */
  now?: () => number;
  /** Receives errors of idle pooled connections (they are dropped and replaced); a pino logger fits. */
  logger?: StoreLogger;
}

interface CompanyRow {
  company: string;
  tenant: string;
  sso: SsoSettings;
  updated_at: string | number;
  domains: string[];
  hosts: string[];
}

interface ProviderRow {
  company: string;
  provider: string;
  configuration: ProviderConfiguration;
  updated_at: string | number;
}

/** What a write claims, to name the field of a unique violation. */
interface Claims {
  tenant?: string;
  clientId?: string;
}


/**
 * SQLSTATE classes meaning "the database cannot serve us now": connection (08),
 * resources (53), operator intervention incl. statement timeout (57), system (58),
 * authorisation (28), unknown database (3D), read-only standby (25006),
 * serialisation and deadlock (40001, 40P01), lock not available (55P03).
 */
const UNAVAILABLE_SQLSTATE = /^(08|53|57|58|28|3D)|^(25006|40001|40P01|55P03)$/;

const UNIQUE_FIELDS: Record<string, ConflictField> = {
  companies_tenant_key_unique: 'tenant',
  company_domains_pkey: 'domain',
  company_hosts_pkey: 'host',
  providers_client_id_unique: 'client_id',
};

function isProgrammingError(err: unknown): boolean {
  return err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError || err instanceof ReferenceError;
}

/** Translates what node-postgres raised into the gateway's errors. */
function translate(err: unknown, claims?: Claims): unknown {
  if (err instanceof GatewayError) return err;
  if (err instanceof pg.DatabaseError) {
    const code = err.code ?? '';
    if (code === '23505' && claims) {
      const field = err.constraint ? UNIQUE_FIELDS[err.constraint] : undefined;
      if (field) return new ConflictError(field, conflictValue(field, err, claims));
    }
    if (code === '22021' || code === '22P05') {
      return new ValidationError('input', 'a value contains characters the tenant directory cannot store');
    }
    return UNAVAILABLE_SQLSTATE.test(code) ? new StoreUnavailableError(err) : err;
  }
  // node-postgres reports lost connections, timeouts and an ended pool as plain
  // errors; language errors are bugs and stay as they are.
  return isProgrammingError(err) ? err : new StoreUnavailableError(err);
}

function conflictValue(field: ConflictField, err: pg.DatabaseError, claims: Claims): string {
  if (field === 'tenant' && claims.tenant !== undefined) return claims.tenant;
  if (field === 'client_id' && claims.clientId !== undefined) return claims.clientId;
  return /\)=\((.*)\) already exists/.exec(err.detail ?? '')?.[1] ?? '';
}

/** PostgreSQL text cannot hold NUL, so no stored key contains one. */
function unstorable(...values: string[]): boolean {
  return values.some((v) => v.includes('\u0000'));
}

function statements(schema: string) {
  const s = pg.escapeIdentifier(schema);
  const companyColumns = `c.company, c.tenant, c.sso, c.updated_at,
    ARRAY(SELECT d.domain FROM ${s}.company_domains d WHERE d.company = c.company ORDER BY d.position) AS domains,
    ARRAY(SELECT h.host FROM ${s}.company_hosts h WHERE h.company = c.company ORDER BY h.position) AS hosts`;
  const providerColumns = 'p.company, p.provider, p.configuration, p.updated_at';
  const keyColumns = 'kid, alg, private_jwk, public_jwk, created_at, retired_at';
  return {
    ping: 'SELECT 1',
    lock: 'SELECT pg_advisory_xact_lock($1, hashtext($2))',
    getCompany: `SELECT ${companyColumns} FROM ${s}.companies c WHERE c.company = $1`,
    listCompanies: `SELECT ${companyColumns} FROM ${s}.companies c ORDER BY c.company`,
    findTenant: `SELECT ${companyColumns},
      COALESCE((SELECT json_agg(json_build_object(
                  'company', p.company, 'provider', p.provider,
                  'configuration', p.configuration, 'updated_at', p.updated_at) ORDER BY p.id)
                FROM ${s}.providers p WHERE p.company = c.company), '[]'::json) AS providers
      FROM ${s}.companies c WHERE c.tenant_key = $1`,
    tenantOwner: `SELECT company FROM ${s}.companies WHERE tenant_key = $1`,
    domainOwners: `SELECT domain AS name, company FROM ${s}.company_domains WHERE domain = ANY($1::text[])`,
    hostOwners: `SELECT host AS name, company FROM ${s}.company_hosts WHERE host = ANY($1::text[])`,
    upsertCompany: `INSERT INTO ${s}.companies (company, tenant, tenant_key, sso, updated_at) VALUES ($1, $2, $3, $4, $5)
      ON CONFLICT (company) DO UPDATE SET
        tenant = excluded.tenant, tenant_key = excluded.tenant_key,
        sso = excluded.sso, updated_at = excluded.updated_at`,
    deleteDomains: `DELETE FROM ${s}.company_domains WHERE company = $1`,
    deleteHosts: `DELETE FROM ${s}.company_hosts WHERE company = $1`,
    insertDomains: `INSERT INTO ${s}.company_domains (domain, company, position)
      SELECT name, $2, ord - 1 FROM unnest($1::text[]) WITH ORDINALITY AS u (name, ord)`,
    insertHosts: `INSERT INTO ${s}.company_hosts (host, company, position)
      SELECT name, $2, ord - 1 FROM unnest($1::text[]) WITH ORDINALITY AS u (name, ord)`,
    deleteCompany: `DELETE FROM ${s}.companies WHERE company = $1`,
    getProvider: `SELECT ${providerColumns} FROM ${s}.providers p WHERE p.company = $1 AND p.id = $2`,
    listProviders: `SELECT ${providerColumns} FROM ${s}.providers p ORDER BY p.company, p.id`,
    listProvidersOf: `SELECT ${providerColumns} FROM ${s}.providers p WHERE p.company = $1 ORDER BY p.id`,
    clientOwner: `SELECT company, id FROM ${s}.providers WHERE client_id = $1`,
    upsertProvider: `INSERT INTO ${s}.providers (company, id, provider, client_id, configuration, updated_at)
      VALUES ($1, $2, $3, $4, $5, $6)
      ON CONFLICT (company, id) DO UPDATE SET
        provider = excluded.provider, client_id = excluded.client_id,
        configuration = excluded.configuration, updated_at = excluded.updated_at`,
    deleteProvider: `DELETE FROM ${s}.providers WHERE company = $1 AND id = $2`,
    tenantByDomain: `SELECT c.tenant FROM ${s}.company_domains d JOIN ${s}.companies c ON c.company = d.company WHERE d.domain = $1`,
    tenantByHost: `SELECT c.tenant FROM ${s}.company_hosts h JOIN ${s}.companies c ON c.company = h.company WHERE h.host = $1`,
    findClient: `SELECT ${providerColumns}, c.tenant FROM ${s}.providers p
      LEFT JOIN ${s}.companies c ON c.company = p.company WHERE p.client_id = $1`,
    listKeys: `SELECT ${keyColumns} FROM ${s}.signing_keys ORDER BY retired_at IS NOT NULL, created_at DESC, kid`,
    currentKey: `SELECT ${keyColumns} FROM ${s}.signing_keys WHERE retired_at IS NULL`,
    insertKey: `INSERT INTO ${s}.signing_keys (kid, alg, private_jwk, public_jwk, created_at, retired_at) VALUES ($1, $2, $3, $4, $5, NULL)`,
    retireKeys: `UPDATE ${s}.signing_keys SET retired_at = $1 WHERE retired_at IS NULL`,
    dropKeys: `DELETE FROM ${s}.signing_keys WHERE retired_at < $1`,
  } as const;
}

type Queryable = Pick<PoolClient, 'query'>;

/** PostgreSQL implementation of {@link TenantStore}. */
export class PostgresTenantStore implements TenantStore {
  readonly kind = 'postgres';
  /** Schema holding the tables. */
  readonly schema: string;
  readonly #url: string;
  readonly #poolMax: number;
  readonly #connectTimeoutMs: number;
  readonly #statementTimeoutMs: number | undefined;
  readonly #now: () => number;
  readonly #logger: StoreLogger | undefined;
  readonly #sql: ReturnType<typeof statements>;
  #pool: Pool | undefined;
  #opening: Promise<void> | undefined;
  /** Bumped by `close()`, so an `init()` still in flight does not reopen a closed store. */
  #generation = 0;

  /** @throws ConfigError when `schema` is not a plain identifier of at most 63 characters. */
  constructor(options: PostgresTenantStoreOptions) {
    const schema = options.schema ?? 'public';
    if (!SCHEMA_NAME_PATTERN.test(schema)) {
      throw new ConfigError([{ path: '/store/url', message: `schema "${schema}" must match ${SCHEMA_NAME_PATTERN}` }]);
    }
    this.schema = schema;
    this.#url = options.url;
    this.#poolMax = options.poolMax ?? 10;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 3000;
    this.#statementTimeoutMs = options.statementTimeoutMs;
    this.#now = options.now ?? Date.now;
    this.#logger = options.logger;
    this.#sql = statements(schema);
  }

  /** Connects and applies pending migrations. Idempotent; after `close()` it opens the store again. */
  async init(): Promise<void> {
    if (this.#pool) return;
    this.#opening ??= this.#openPool().finally(() => {
      this.#opening = undefined;
    });
    return this.#opening;
  }

  async #openPool(): Promise<void> {
    const generation = this.#generation;
    const pool = new pg.Pool({
      connectionString: this.#url,
      max: this.#poolMax,
      connectionTimeoutMillis: this.#connectTimeoutMs,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      fallback_application_name: 'tenant-gate',
      ...(this.#statementTimeoutMs !== undefined
        ? { statement_timeout: this.#statementTimeoutMs, query_timeout: this.#statementTimeoutMs + this.#connectTimeoutMs }
        : {}),
    });
    pool.on('error', (err) => this.#logger?.warn({ err }, 'tenant directory: an idle PostgreSQL connection failed'));
    try {
      await this.#withClient(pool, (client) => applyPostgresMigrations(client, { schema: this.schema, now: this.#now }));
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err instanceof StoreUnavailableError ? err : new StoreUnavailableError(err);
    }
    if (generation !== this.#generation) {
      await pool.end().catch(() => undefined);
      throw new StoreUnavailableError(new Error('the PostgreSQL store was closed while opening'));
    }
    this.#pool = pool;
  }

  async ping(): Promise<void> {
    await this.#read(this.#sql.ping, []);
  }

  /**
   * Ends the pool once in-flight queries finish, waiting at most `connectTimeoutMs`
   * (a server gone silent never answers the goodbye). Idempotent; `init()` opens it again.
   */
  async close(): Promise<void> {
    this.#generation++;
    const pool = this.#pool;
    this.#pool = undefined;
    if (!pool) return;
    let timer: NodeJS.Timeout | undefined;
    const patience = new Promise((resolve) => (timer = setTimeout(resolve, this.#connectTimeoutMs)));
    await Promise.race([pool.end().catch(() => undefined), patience]);
    clearTimeout(timer);
  }

  async getCompany(company: string): Promise<Company | undefined> {
    if (unstorable(company)) return this.#unlessClosed(undefined);
    const [row] = await this.#read<CompanyRow>(this.#sql.getCompany, [company]);
    return row ? toCompany(row) : undefined;
  }

  async listCompanies(): Promise<Company[]> {
    return (await this.#read<CompanyRow>(this.#sql.listCompanies, [])).map(toCompany);
  }

  async putCompany(input: Company): Promise<WriteResult<Company>> {
    return this.updateCompany(requireText(input?.company, 'company'), () => input, input.sso?.tenant);
  }

  async updateCompany(companyId: string, next: (previous: Company | undefined) => Company, tenantHint?: string): Promise<WriteResult<Company>> {
    const company = requireText(companyId, 'company');
    const sql = this.#sql;
    const claims: { tenant?: string } = tenantHint !== undefined ? { tenant: tenantHint } : {};
    return this.#merge(claims, async (db, merge) => {
      const previous = await readCompany(db, sql.getCompany, company);
      const input = merge(() => next(previous));
      if (input?.company !== company) throw new ValidationError('company', 'an update may not change the company id');
      const { tenant, tenantKey, domains, hosts, settings } = companyRow(input);
      claims.tenant = tenant;
      const tenantOwner = (await db.query<{ company: string }>(sql.tenantOwner, [tenantKey])).rows[0];
      if (tenantOwner && tenantOwner.company !== company) throw new ConflictError('tenant', tenant);
      await checkOwners(db, sql.domainOwners, domains, company, 'domain');
      await checkOwners(db, sql.hostOwners, hosts, company, 'host');

      await db.query(sql.upsertCompany, [company, tenant, tenantKey, JSON.stringify(settings), this.#now()]);
      await db.query(sql.deleteDomains, [company]);
      await db.query(sql.deleteHosts, [company]);
      if (domains.length > 0) await db.query(sql.insertDomains, [domains, company]);
      if (hosts.length > 0) await db.query(sql.insertHosts, [hosts, company]);

      return writeResult(previous, await readCompany(db, sql.getCompany, company));
    });
  }

  async deleteCompany(company: string): Promise<WriteResult<Company>> {
    if (unstorable(company)) return this.#unlessClosed({});
    const sql = this.#sql;
    return this.#write({}, async (db) => {
      const previous = await readCompany(db, sql.getCompany, company);
      if (previous) await db.query(sql.deleteCompany, [company]);
      return writeResult(previous, undefined);
    });
  }

  async getProvider(company: string, id: string): Promise<Provider | undefined> {
    if (unstorable(company, id)) return this.#unlessClosed(undefined);
    const [row] = await this.#read<ProviderRow>(this.#sql.getProvider, [company, id]);
    return row ? toProvider(row) : undefined;
  }

  async listProviders(company?: string): Promise<Provider[]> {
    if (company !== undefined && unstorable(company)) return this.#unlessClosed([]);
    const rows =
      company === undefined
        ? await this.#read<ProviderRow>(this.#sql.listProviders, [])
        : await this.#read<ProviderRow>(this.#sql.listProvidersOf, [company]);
    return rows.map(toProvider);
  }

  async putProvider(input: Provider): Promise<WriteResult<Provider>> {
    return this.updateProvider(requireText(input?.company, 'company'), requireText(input.configuration?.id, 'configuration.id'), () => input);
  }

  async updateProvider(companyId: string, providerId: string, next: (previous: Provider | undefined) => Provider): Promise<WriteResult<Provider>> {
    const company = requireText(companyId, 'company');
    const id = requireText(providerId, 'configuration.id');
    const sql = this.#sql;
    const claims: { clientId?: string } = {};
    return this.#merge(claims, async (db, merge) => {
      const previous = await readProvider(db, sql.getProvider, company, id);
      const input = merge(() => next(previous));
      const { provider, clientId, configuration } = providerRow(input, company, id);
      claims.clientId = clientId;
      const owner = (await db.query<{ company: string; id: string }>(sql.clientOwner, [clientId])).rows[0];
      if (owner && (owner.company !== company || owner.id !== id)) throw new ConflictError('client_id', clientId);
      await db.query(sql.upsertProvider, [company, id, provider, clientId, configuration, this.#now()]);
      return writeResult(previous, await readProvider(db, sql.getProvider, company, id));
    });
  }

  async deleteProvider(company: string, id: string): Promise<WriteResult<Provider>> {
    if (unstorable(company, id)) return this.#unlessClosed({});
    const sql = this.#sql;
    return this.#write({}, async (db) => {
      const previous = await readProvider(db, sql.getProvider, company, id);
      if (previous) await db.query(sql.deleteProvider, [company, id]);
      return writeResult(previous, undefined);
    });
  }

  async findTenant(tenant: string): Promise<TenantRecord | undefined> {
    if (unstorable(tenant)) return this.#unlessClosed(undefined);
    const [row] = await this.#read<CompanyRow & { providers: ProviderRow[] }>(this.#sql.findTenant, [tenantKey(tenant)]);
    if (!row) return undefined;
    return { company: toCompany(row), providers: row.providers.map(toProvider) };
  }

  async findTenantByDomain(domain: string): Promise<string | undefined> {
    if (unstorable(domain)) return this.#unlessClosed(undefined);
    const [row] = await this.#read<{ tenant: string }>(this.#sql.tenantByDomain, [domain.toLowerCase()]);
    return row?.tenant;
  }

  async findTenantByHost(host: string): Promise<string | undefined> {
    if (unstorable(host)) return this.#unlessClosed(undefined);
    const [row] = await this.#read<{ tenant: string }>(this.#sql.tenantByHost, [host.toLowerCase()]);
    return row?.tenant;
  }

  async findClient(clientId: string): Promise<ClientRecord | undefined> {
    if (unstorable(clientId)) return this.#unlessClosed(undefined);
    const [row] = await this.#read<ProviderRow & { tenant: string | null }>(this.#sql.findClient, [clientId]);
    if (!row) return undefined;
    const record: ClientRecord = { provider: toProvider(row) };
    if (row.tenant !== null) record.tenant = row.tenant;
    return record;
  }

  async listSigningKeys(): Promise<SigningKey[]> {
    return (await this.#read<SigningKeyRow>(this.#sql.listKeys, [])).map(toSigningKey);
  }

  async ensureSigningKey(key: SigningKey): Promise<SigningKey> {
    const sql = this.#sql;
    return this.#write({}, async (db) => {
      const current = (await db.query<SigningKeyRow>(sql.currentKey)).rows[0];
      if (current) return toSigningKey(current);
      await db.query(sql.insertKey, keyParams(key));
      return currentKey(key);
    });
  }

  async rotateSigningKey(key: SigningKey, dropRetiredBefore: number): Promise<void> {
    const sql = this.#sql;
    await this.#write({}, async (db) => {
      await db.query(sql.retireKeys, [key.createdAt]);
      await db.query(sql.dropKeys, [dropRetiredBefore]);
      await db.query(sql.insertKey, keyParams(key));
    });
  }

  #livePool(): Pool {
    const pool = this.#pool;
    if (!pool) throw new StoreUnavailableError(new Error('the PostgreSQL store is not open'));
    return pool;
  }

  #unlessClosed<T>(value: T): T {
    this.#livePool();
    return value;
  }

  async #read<R extends object>(sql: string, params: unknown[]): Promise<R[]> {
    const pool = this.#livePool();
    try {
      return (await pool.query<R>(sql, params)).rows;
    } catch (err) {
      throw translate(err);
    }
  }

  /** Runs `fn` in a read-committed transaction holding the schema's write lock. */
  /** `#write` for a read-merge-write: whatever the caller's merge throws reaches the caller as thrown. */
  async #merge<T>(claims: Claims, fn: (db: Queryable, merge: <R>(step: () => R) => R) => Promise<T>): Promise<T> {
    let aborted: { err: unknown } | undefined;
    const merge = <R>(step: () => R): R => {
      try {
        return step();
      } catch (err) {
        aborted = { err };
        throw err;
      }
    };
    try {
      return await this.#write(claims, (db) => fn(db, merge));
    } catch (err) {
      throw aborted ? aborted.err : err;
    }
  }

  async #write<T>(claims: Claims, fn: (db: Queryable) => Promise<T>): Promise<T> {
    const pool = this.#livePool();
    try {
      return await this.#withClient(pool, async (client, discard) => {
        await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
        try {
          await client.query(this.#sql.lock, [ADVISORY_LOCK_CLASS.write, this.schema]);
          const result = await fn(client);
          await client.query('COMMIT');
          return result;
        } catch (err) {
          await client.query('ROLLBACK').catch(discard);
          throw err;
        }
      });
    } catch (err) {
      throw translate(err, claims);
    }
  }

  /**
   * Runs `fn` on a pooled connection. A checked-out connection has no listener of its
   * own, so one is added: a connection lost between two queries must not crash the
   * process. A connection that failed is destroyed, not returned to the pool.
   */
  async #withClient<T>(pool: Pool, fn: (client: PoolClient, discard: (err: Error) => void) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    let broken: Error | undefined;
    const discard = (err: Error): void => {
      broken ??= err;
    };
    client.on('error', discard);
    try {
      return await fn(client, discard);
    } catch (err) {
      if (!(err instanceof GatewayError) && !(err instanceof pg.DatabaseError)) discard(err instanceof Error ? err : new Error(String(err)));
      throw err;
    } finally {
      client.off('error', discard);
      client.release(broken);
    }
  }
}

async function readCompany(db: Queryable, sql: string, company: string): Promise<Company | undefined> {
  const row = (await db.query<CompanyRow>(sql, [company])).rows[0];
  return row ? toCompany(row) : undefined;
}

async function readProvider(db: Queryable, sql: string, company: string, id: string): Promise<Provider | undefined> {
  const row = (await db.query<ProviderRow>(sql, [company, id])).rows[0];
  return row ? toProvider(row) : undefined;
}

/** Throws the conflict of the first name (in the order given) that another company owns. */
async function checkOwners(db: Queryable, sql: string, names: string[], company: string, field: ConflictField): Promise<void> {
  if (names.length === 0) return;
  const owners = new Map((await db.query<{ name: string; company: string }>(sql, [names])).rows.map((r) => [r.name, r.company]));
  for (const name of names) {
    const owner = owners.get(name);
    if (owner !== undefined && owner !== company) throw new ConflictError(field, name);
  }
}

interface SigningKeyRow {
  kid: string;
  alg: string;
  private_jwk: string;
  public_jwk: string;
  created_at: string | number;
  retired_at: string | number | null;
}

function keyParams(key: SigningKey): unknown[] {
  return [requireText(key.kid, 'kid'), requireText(key.alg, 'alg'), JSON.stringify(key.privateJwk), JSON.stringify(key.publicJwk), key.createdAt];
}

function toSigningKey(row: SigningKeyRow): SigningKey {
  return {
    kid: row.kid,
    alg: row.alg,
    privateJwk: JSON.parse(row.private_jwk) as Record<string, unknown>,
    publicJwk: JSON.parse(row.public_jwk) as Record<string, unknown>,
    createdAt: Number(row.created_at),
    ...(row.retired_at !== null ? { retiredAt: Number(row.retired_at) } : {}),
  };
}

function toCompany(row: CompanyRow): Company {
  return {
    company: row.company,
    sso: { tenant: row.tenant, ...row.sso, domains: row.domains, hosts: row.hosts },
    updatedAt: Number(row.updated_at),
  };
}

function toProvider(row: ProviderRow): Provider {
  return {
    company: row.company,
    provider: row.provider,
    configuration: row.configuration,
    updatedAt: Number(row.updated_at),
  };
}

