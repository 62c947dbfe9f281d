/**
 * The tenant directory as the request path sees it: store lookups behind a bounded LRU.
 *
 * Rules:
 * - found entries are fresh for `ttlMs`, "not found" answers for `negativeTtlMs`;
 * - "not found" answers live in their own LRU (`negativeMax`), so any number of
 *   unknown names never evicts a found entry;
 * - a lookup made for a client (`client` option) of a name the cache does not know is
 *   refused with `TooManyLookupsError` once that client's lookups that found nothing
 *   exceed `unknownPerMinute` (see `UnknownBudget`);
 * - concurrent misses of one key share one store query;
 * - when the store fails, an expired entry keeps being served for `staleMs`, after
 *   which the failure surfaces as `StoreUnavailableError`;
 * - `invalidate` drops keys at once, and a query that was in flight for a dropped key
 *   never writes its (possibly older) answer back.
 */
import { LRUCache } from 'lru-cache';
import { StoreUnavailableError, TooManyLookupsError } from '../errors.js';
import { tenantKey } from '../tenancy/tenant-id.js';
import type { ClientRecord, TenantRecord, TenantStore } from './types.js';
import { UnknownBudget } from './unknown-budget.js';

/** The kinds of lookups, used as cache key prefixes and metric labels. */
export type LookupKind = 'tenant' | 'domain' | 'host' | 'client';

/** What each kind of lookup answers with when the entry exists. */
export interface LookupValue {
  tenant: TenantRecord;
  domain: string;
  host: string;
  client: ClientRecord;
}

/** What {@link CachedDirectory.peek} answers when only the store can tell. */
export const NOT_CACHED: unique symbol = Symbol('not cached');

/** Counters the directory reports to; see src/observability/metrics.ts. */
export interface DirectoryCounters {
  hit(kind: LookupKind): void;
  miss(kind: LookupKind): void;
  stale(kind: LookupKind): void;
  storeError(kind: LookupKind): void;
  /** Duration of each store query, in seconds, and how it ended. */
  queried?(kind: LookupKind, outcome: 'found' | 'not_found' | 'error', seconds: number): void;
}

/** Cache tuning; times in milliseconds. */
export interface CachedDirectoryOptions {
  max: number;
  /** Most "not found" answers kept (default: `max`). */
  negativeMax?: number;
  /** Store lookups that find nothing allowed per client per minute (default: no limit). */
  unknownPerMinute?: number;
  ttlMs: number;
  negativeTtlMs: number;
  staleMs: number;
  now?: () => number;
  counters?: DirectoryCounters;
}

interface Entry {
  value: unknown;
  freshUntil: number;
}

/** While the store fails, a stale entry is re-tried at most this often. */
const STALE_RETRY_MS = 1000;

const PREFIX: Record<LookupKind, string> = { tenant: 't:', domain: 'd:', host: 'h:', client: 'c:' };

/** Builds the cache key of a lookup; keys are what invalidation messages carry. */
export function directoryKey(kind: LookupKind, value: string): string {
  return PREFIX[kind] + (kind === 'client' ? value : kind === 'tenant' ? tenantKey(value) : value.toLowerCase());
}

/** Cached, coalescing, stale-tolerant lookups over a `TenantStore`. */
export class CachedDirectory {
  readonly store: TenantStore;
  readonly #cache: LRUCache<string, Entry>;
  readonly #negative: LRUCache<string, Entry>;
  readonly #budget: UnknownBudget | undefined;
  readonly #inflight = new Map<string, { promise: Promise<unknown>; token: object }>();
  readonly #opts: Required<Omit<CachedDirectoryOptions, 'counters' | 'negativeMax' | 'unknownPerMinute'>> & { counters?: DirectoryCounters };

  constructor(store: TenantStore, opts: CachedDirectoryOptions) {
    this.store = store;
    const now = opts.now ?? Date.now;
    this.#opts = { ...opts, now };
    this.#cache = new LRUCache<string, Entry>({ max: opts.max, ttlAutopurge: false, perf: { now } });
    this.#negative = new LRUCache<string, Entry>({ max: opts.negativeMax ?? opts.max, ttlAutopurge: false, perf: { now } });
    this.#budget = opts.unknownPerMinute ? new UnknownBudget({ perMinute: opts.unknownPerMinute, now }) : undefined;
  }

  /** The tenant with this external ID (case-insensitive) and its providers; `client` is charged for unknown IDs. */
  tenant(tenantId: string, lookupOpts: { client?: string } = {}): Promise<TenantRecord | undefined> {
    return this.#lookup('tenant', tenantId, () => this.store.findTenant(tenantId), lookupOpts.client) as Promise<TenantRecord | undefined>;
  }

  /** External tenant ID owning a normalised email domain. */
  tenantByDomain(domain: string): Promise<string | undefined> {
    return this.#lookup('domain', domain, () => this.store.findTenantByDomain(domain)) as Promise<string | undefined>;
  }

  /** External tenant ID owning a normalised custom host; `client` is charged for unknown hosts. */
  tenantByHost(host: string, lookupOpts: { client?: string } = {}): Promise<string | undefined> {
    return this.#lookup('host', host, () => this.store.findTenantByHost(host), lookupOpts.client) as Promise<string | undefined>;
  }

  /** The provider with this client_id and its tenant. */
  client(clientId: string): Promise<ClientRecord | undefined> {
    return this.#lookup('client', clientId, () => this.store.findClient(clientId)) as Promise<ClientRecord | undefined>;
  }

  /**
   * The fresh cached answer of a lookup without touching the store, or `NOT_CACHED`
   * (a miss, an expired entry, a query in flight): the request path's synchronous
   * fast lane; on `NOT_CACHED` use the asynchronous lookup.
   */
  peek<K extends LookupKind>(kind: K, value: string): LookupValue[K] | undefined | typeof NOT_CACHED {
    const entry = this.#entry(directoryKey(kind, value));
    if (!entry || this.#opts.now() >= entry.freshUntil) return NOT_CACHED;
    this.#opts.counters?.hit(kind);
    return entry.value as LookupValue[K] | undefined;
  }

  /** Drops the given cache keys (see `directoryKey`) at once. */
  invalidate(keys: Iterable<string>): void {
    for (const key of keys) {
      this.#cache.delete(key);
      this.#negative.delete(key);
      this.#inflight.delete(key);
    }
  }

  /** Drops everything, e.g. after reconnecting to a shared store. */
  invalidateAll(): void {
    this.#cache.clear();
    this.#negative.clear();
    this.#inflight.clear();
  }

  /** Number of cached entries (fresh or stale), found and not found. */
  get size(): number {
    return this.#cache.size + this.#negative.size;
  }

  /** Number of cached "not found" answers. */
  get negativeSize(): number {
    return this.#negative.size;
  }

  #entry(key: string): Entry | undefined {
    return this.#cache.get(key, { allowStale: false }) ?? this.#negative.get(key, { allowStale: false });
  }

  #remainingTtl(key: string): number {
    return this.#cache.has(key) ? this.#cache.getRemainingTTL(key) : this.#negative.getRemainingTTL(key);
  }

  async #lookup(kind: LookupKind, value: string, query: () => Promise<unknown>, client?: string): Promise<unknown> {
    const key = directoryKey(kind, value);
    const now = this.#opts.now();
    const entry = this.#entry(key);
    if (entry && now < entry.freshUntil) {
      this.#opts.counters?.hit(kind);
      return entry.value;
    }
    const pending = this.#inflight.get(key);
    if (pending) {
      this.#opts.counters?.hit(kind);
      return pending.promise;
    }
    if (client !== undefined && this.#budget && !this.#budget.allows(client)) throw new TooManyLookupsError(this.#budget.retryAfterSeconds(client));
    this.#opts.counters?.miss(kind);
    const token = {};
    const promise = this.#fill(kind, key, query, entry, token);
    if (client !== undefined && this.#budget) {
      const budget = this.#budget;
      promise.then((v) => v === undefined && budget.charge(client), () => undefined);
    }
    this.#inflight.set(key, { promise, token });
    try {
      return await promise;
    } finally {
      if (this.#inflight.get(key)?.token === token) this.#inflight.delete(key);
    }
  }

  async #fill(kind: LookupKind, key: string, query: () => Promise<unknown>, stale: Entry | undefined, token: object): Promise<unknown> {
    let value: unknown;
    const started = performance.now();
    try {
      value = await query();
    } catch (err) {
      this.#opts.counters?.queried?.(kind, 'error', (performance.now() - started) / 1000);
      this.#opts.counters?.storeError(kind);
      const remaining = stale ? this.#remainingTtl(key) : 0;
      if (stale && remaining > 0) {
        this.#opts.counters?.stale(kind);
        const retryAt = this.#opts.now() + Math.min(STALE_RETRY_MS, remaining);
        if (this.#inflight.get(key)?.token === token) {
          (stale.value === undefined ? this.#negative : this.#cache).set(key, { value: stale.value, freshUntil: retryAt }, { ttl: remaining });
        }
        return stale.value;
      }
      throw err instanceof StoreUnavailableError ? err : new StoreUnavailableError(err);
    }
    this.#opts.counters?.queried?.(kind, value === undefined ? 'not_found' : 'found', (performance.now() - started) / 1000);
    if (this.#inflight.get(key)?.token === token) {
      const found = value !== undefined;
      const ttl = found ? this.#opts.ttlMs : this.#opts.negativeTtlMs;
      (found ? this.#negative : this.#cache).delete(key);
      (found ? this.#cache : this.#negative).set(key, { value, freshUntil: this.#opts.now() + ttl }, { ttl: ttl + this.#opts.staleMs });
    }
    return value;
  }
}
