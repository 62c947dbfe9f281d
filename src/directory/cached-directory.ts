/**
 * The tenant directory as the request path sees it: store lookups behind a bounded LRU.
 *
 * Rules:
 * - found entries are fresh for `ttlMs`, "not found" answers for `negativeTtlMs`;
 * - concurrent misses of one key share one store query;
 * - when the store fails, an expired entry keeps being served for `staleMs`, after
 *   which the failure surfaces as `StoreUnavailableError`;
 * - `invalidate` drops keys at once, and a query that was in flight for a dropped key
 *   never writes its (possibly older) answer back.
 */
import { LRUCache } from 'lru-cache';
import { StoreUnavailableError } from '../errors.js';
import { tenantKey } from '../tenancy/tenant-id.js';
import type { ClientRecord, TenantRecord, TenantStore } from './types.js';

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
  readonly #inflight = new Map<string, { promise: Promise<unknown>; token: object }>();
  readonly #opts: Required<Omit<CachedDirectoryOptions, 'counters'>> & { counters?: DirectoryCounters };

  constructor(store: TenantStore, opts: CachedDirectoryOptions) {
    this.store = store;
    const now = opts.now ?? Date.now;
    this.#opts = { ...opts, now };
    this.#cache = new LRUCache<string, Entry>({ max: opts.max, ttlAutopurge: false, perf: { now } });
  }

  /** The tenant with this external ID (case-insensitive) and its providers. */
  tenant(tenantId: string): Promise<TenantRecord | undefined> {
    return this.#lookup('tenant', tenantId, () => this.store.findTenant(tenantId)) as Promise<TenantRecord | undefined>;
  }

  /** External tenant ID owning a normalised email domain. */
  tenantByDomain(domain: string): Promise<string | undefined> {
    return this.#lookup('domain', domain, () => this.store.findTenantByDomain(domain)) as Promise<string | undefined>;
  }

  /** External tenant ID owning a normalised custom host. */
  tenantByHost(host: string): Promise<string | undefined> {
    return this.#lookup('host', host, () => this.store.findTenantByHost(host)) as Promise<string | undefined>;
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
    const entry = this.#cache.get(directoryKey(kind, value), { allowStale: false });
    if (!entry || this.#opts.now() >= entry.freshUntil) return NOT_CACHED;
    this.#opts.counters?.hit(kind);
    return entry.value as LookupValue[K] | undefined;
  }

  /** Drops the given cache keys (see `directoryKey`) at once. */
  invalidate(keys: Iterable<string>): void {
    for (const key of keys) {
      this.#cache.delete(key);
      this.#inflight.delete(key);
    }
  }

  /** Drops everything, e.g. after reconnecting to a shared store. */
  invalidateAll(): void {
    this.#cache.clear();
    this.#inflight.clear();
  }

  /** Number of cached entries (fresh or stale). */
  get size(): number {
    return this.#cache.size;
  }

  async #lookup(kind: LookupKind, value: string, query: () => Promise<unknown>): Promise<unknown> {
    const key = directoryKey(kind, value);
    const now = this.#opts.now();
    const entry = this.#cache.get(key, { allowStale: false });
    if (entry && now < entry.freshUntil) {
      this.#opts.counters?.hit(kind);
      return entry.value;
    }
    const pending = this.#inflight.get(key);
    if (pending) {
      this.#opts.counters?.hit(kind);
      return pending.promise;
    }
    this.#opts.counters?.miss(kind);
    const token = {};
    const promise = this.#fill(kind, key, query, entry, token);
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
      const remaining = stale ? this.#cache.getRemainingTTL(key) : 0;
      if (stale && remaining > 0) {
        this.#opts.counters?.stale(kind);
        const retryAt = this.#opts.now() + Math.min(STALE_RETRY_MS, remaining);
        if (this.#inflight.get(key)?.token === token) {
          this.#cache.set(key, { value: stale.value, freshUntil: retryAt }, { ttl: remaining });
        }
        return stale.value;
      }
      throw err instanceof StoreUnavailableError ? err : new StoreUnavailableError(err);
    }
    this.#opts.counters?.queried?.(kind, value === undefined ? 'not_found' : 'found', (performance.now() - started) / 1000);
    if (this.#inflight.get(key)?.token === token) {
      const ttl = value === undefined ? this.#opts.negativeTtlMs : this.#opts.ttlMs;
      this.#cache.set(key, { value, freshUntil: this.#opts.now() + ttl }, { ttl: ttl + this.#opts.staleMs });
    }
    return value;
  }
}
