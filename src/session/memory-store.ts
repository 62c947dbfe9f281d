/**
 * In-process session store: one gateway process only (sessions are lost on restart
 * and not shared between workers). Bounded: past `max` entries the least recently
 * used session is dropped, which logs that user out.
 */
import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { SESSION_ID_PATTERN, type SessionData, type SessionStore } from './types.js';

/** Options of {@link MemorySessionStore}. */
export interface MemorySessionStoreOptions {
  /** Most sessions kept (default 100000); as many single-use keys again. */
  max?: number;
  /** Clock in milliseconds since the epoch (default `Date.now`). */
  now?: () => number;
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

  constructor(options: MemorySessionStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
    const max = options.max ?? 100_000;
    // lru-cache drops stale entries by the same clock; the explicit `until` checks
    // below are what decide, so a coarse lru-cache clock cannot extend a session.
    const perf = { now: this.#now };
    this.#sessions = new LRUCache({ max, ttl: 1, perf, ttlResolution: 0 });
    this.#used = new LRUCache({ max, ttl: 1, perf, ttlResolution: 0 });
  }

  /** {@inheritDoc SessionStore.create} */
  async create(data: SessionData, ttlSeconds: number): Promise<string> {
    const ttl = ttlMs(ttlSeconds);
    const id = randomBytes(32).toString('base64url');
    this.#sessions.set(id, { value: structuredClone(data), until: this.#now() + ttl }, { ttl });
    return id;
  }

  #live(id: string): Entry<SessionData> | undefined {
    if (typeof id !== 'string' || !SESSION_ID_PATTERN.test(id)) return undefined;
    const entry = this.#sessions.get(id);
    if (!entry) return undefined;
    const now = this.#now();
    if (now >= entry.until || now >= entry.value.expiresAt) {
      this.#sessions.delete(id);
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
    if (typeof id === 'string') this.#sessions.delete(id);
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
  }
}
