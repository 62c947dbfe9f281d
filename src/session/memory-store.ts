/**
 * In-process session store: one gateway process only (sessions are lost on restart
 * and not shared between workers).
 *
 * Rules:
 * - bounded: past `max` entries the least recently used session is dropped, which
 *   logs that user out;
 * - the index (company, tenant, (tenant, sub), (tenant, sid)) holds ids only; an
 *   entry leaves it whenever lru-cache lets go of the session (destroy, eviction,
 *   expiry), so it never outgrows the sessions;
 * - `onEnded` listeners hear of sessions ended on purpose (not of expiry or eviction).
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { LRUCache } from 'lru-cache';
import {
  SESSION_ID_PATTERN,
  type EndedListener,
  type SessionData,
  type SessionEntry,
  type SessionQuery,
  type SessionStore,
} from './types.js';
import { indexNameFor, indexNamesOf, matchesQuery } from './index-keys.js';

/** Options of {@link MemorySessionStore}. */
export interface MemorySessionStoreOptions {
  /** Most sessions kept (default 100000); as many single-use keys again. */
  max?: number;
  /** Clock in milliseconds since the epoch (default `Date.now`). */
  now?: () => number;
  /** Told how many sessions were found expired (for the `expired` metric). */
  onExpired?: (count: number) => void;
}

interface Entry<T> {
  value: T;
  /** End of the TTL, by the store's clock. */
  until: number;
}

function ttlMs(ttlSeconds: number): number {
  if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) throw new RangeError('ttlSeconds must be a positive number');
  return Math.ceil(ttlSeconds * 1000);
}

/** A copy of a session that shares nothing mutable with the stored one (cheaper than structuredClone on every request). */
function copySession(v: SessionData): SessionData {
  return { ...v, identity: { ...v.identity, groups: [...v.identity.groups] } };
}

/** {@link SessionStore} kept in memory with lru-cache. */
export class MemorySessionStore implements SessionStore {
  readonly kind = 'memory';
  readonly #now: () => number;
  readonly #sessions: LRUCache<string, Entry<SessionData>>;
  readonly #used: LRUCache<string, Entry<true>>;
  readonly #index = new Map<string, Set<string>>();
  readonly #events = new EventEmitter();
  readonly #onExpired: ((count: number) => void) | undefined;

  constructor(options: MemorySessionStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#onExpired = options.onExpired;
    this.#events.setMaxListeners(0);
    const max = options.max ?? 100_000;
    // lru-cache drops stale entries by the same clock; the explicit `until` checks
    // below are what decide, so a coarse lru-cache clock cannot extend a session.
    const perf = { now: this.#now };
    this.#sessions = new LRUCache({
      max,
      ttl: 1,
      perf,
      ttlResolution: 0,
      dispose: (entry, id, reason) => {
        this.#unindex(id, entry.value);
        if (reason === 'expire') this.#onExpired?.(1);
      },
    });
    this.#used = new LRUCache({ max, ttl: 1, perf, ttlResolution: 0 });
  }

  /** {@inheritDoc SessionStore.create} */
  async create(data: SessionData, ttlSeconds: number): Promise<string> {
    const ttl = ttlMs(ttlSeconds);
    const id = randomBytes(32).toString('base64url');
    const value = structuredClone(data);
    this.#sessions.set(id, { value, until: this.#now() + ttl }, { ttl });
    for (const name of indexNamesOf(value)) {
      let ids = this.#index.get(name);
      if (!ids) this.#index.set(name, (ids = new Set()));
      ids.add(id);
    }
    return id;
  }

  #unindex(id: string, data: SessionData): void {
    for (const name of indexNamesOf(data)) {
      const ids = this.#index.get(name);
      if (!ids) continue;
      ids.delete(id);
      if (ids.size === 0) this.#index.delete(name);
    }
  }

  #live(id: string): Entry<SessionData> | undefined {
    if (typeof id !== 'string' || !SESSION_ID_PATTERN.test(id)) return undefined;
    const entry = this.#sessions.get(id);
    if (!entry) return undefined;
    const now = this.#now();
    if (now >= entry.until || now >= entry.value.expiresAt) {
      this.#sessions.delete(id);
      this.#onExpired?.(1);
      return undefined;
    }
    return entry;
  }

  /** {@inheritDoc SessionStore.get} */
  async get(id: string): Promise<SessionData | undefined> {
    const entry = this.#live(id);
    return entry ? copySession(entry.value) : undefined;
  }

  /** {@inheritDoc SessionStore.peek} */
  peek(id: string): Readonly<SessionData> | undefined {
    return this.#live(id)?.value;
  }

  /** {@inheritDoc SessionStore.touch} */
  async touch(id: string, lastSeenAt: number, ttlSeconds: number): Promise<void> {
    const ttl = ttlMs(ttlSeconds);
    const entry = this.#live(id);
    if (!entry) return;
    entry.value.lastSeenAt = lastSeenAt;
    entry.until = this.#now() + ttl;
    this.#sessions.set(id, entry, { ttl });
  }

  /** {@inheritDoc SessionStore.destroy} */
  async destroy(id: string): Promise<void> {
    await this.destroyMany([id]);
  }

  /** {@inheritDoc SessionStore.destroyMany} */
  async destroyMany(ids: readonly string[]): Promise<number> {
    const ended: string[] = [];
    for (const id of ids) {
      if (typeof id !== 'string') continue;
      const live = this.#live(id) !== undefined;
      if (this.#sessions.delete(id) && live) ended.push(id);
    }
    if (ended.length > 0) this.#events.emit('ended', ended);
    return ended.length;
  }

  /** {@inheritDoc SessionStore.find} */
  async find(query: SessionQuery): Promise<SessionEntry[]> {
    const ids = this.#index.get(indexNameFor(query));
    if (!ids) return [];
    const out: SessionEntry[] = [];
    for (const id of [...ids]) {
      const entry = this.#live(id);
      if (entry && matchesQuery(entry.value, query)) out.push({ id, data: copySession(entry.value) });
    }
    return out;
  }

  /** {@inheritDoc SessionStore.endWhere} */
  async endWhere(query: SessionQuery, filter?: (data: SessionData) => boolean): Promise<string[]> {
    const ids = (await this.find(query)).filter((e) => !filter || filter(e.data)).map((e) => e.id);
    await this.destroyMany(ids);
    return ids;
  }

  /** {@inheritDoc SessionStore.onEnded} */
  onEnded(listener: EndedListener): () => void {
    const safe = (ids: string[]) => {
      try {
        listener(ids);
      } catch {
        // A failing listener must not stop a logout.
      }
    };
    this.#events.on('ended', safe);
    return () => this.#events.off('ended', safe);
  }

  /** {@inheritDoc SessionStore.consumeOnce} */
  async consumeOnce(key: string, ttlSeconds: number): Promise<boolean> {
    const ttl = ttlMs(ttlSeconds);
    const now = this.#now();
    const seen = this.#used.get(key);
    if (seen && now < seen.until) return false;
    this.#used.set(key, { value: true, until: now + ttl }, { ttl });
    return true;
  }

  /** Always reachable. */
  /** {@inheritDoc SessionStore.count} */
  async count(): Promise<number> {
    this.#sessions.purgeStale();
    return this.#sessions.size;
  }

  async ping(): Promise<void> {}

  /** Forgets every session. */
  async close(): Promise<void> {
    this.#sessions.clear();
    this.#used.clear();
    this.#index.clear();
    this.#events.removeAllListeners();
  }
}
