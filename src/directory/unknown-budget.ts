/**
 * How many unknown names one client may make the gateway look up in the store.
 *
 * Rules: each client (see `clientKey`) has a bucket of `perMinute` tokens refilled
 * continuously; a store lookup that finds nothing costs one token; a client with an
 * empty bucket gets no store lookup for names the cache does not know; the buckets
 * are bounded (least recently used dropped, which only ever forgives).
 */
import { LRUCache } from 'lru-cache';

/** Per-client token buckets for lookups that find nothing. */
export class UnknownBudget {
  readonly #buckets: LRUCache<string, { tokens: number; at: number }>;
  readonly #perMinute: number;
  readonly #now: () => number;

  constructor(opts: { perMinute: number; max?: number; now?: () => number }) {
    this.#perMinute = opts.perMinute;
    this.#now = opts.now ?? Date.now;
    this.#buckets = new LRUCache({ max: opts.max ?? 10_000 });
  }

  /** Whether this client may make one more store lookup of an unknown name now. */
  allows(client: string): boolean {
    return this.#refill(client).tokens >= 1;
  }

  /** Charges the client for a lookup that found nothing. */
  charge(client: string): void {
    const b = this.#refill(client);
    b.tokens = Math.max(0, b.tokens - 1);
    this.#buckets.set(client, b);
  }

  /** Seconds until this client has a token again (at least 1). */
  retryAfterSeconds(client: string): number {
    const b = this.#refill(client);
    return Math.max(1, Math.ceil(((1 - b.tokens) * 60) / this.#perMinute));
  }

  #refill(client: string): { tokens: number; at: number } {
    const now = this.#now();
    const b = this.#buckets.get(client) ?? { tokens: this.#perMinute, at: now };
    b.tokens = Math.min(this.#perMinute, b.tokens + ((now - b.at) * this.#perMinute) / 60_000);
    b.at = now;
    return b;
  }
}
