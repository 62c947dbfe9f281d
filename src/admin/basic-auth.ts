/**
 * HTTP Basic authentication of admin calls.
 *
 * Rules: credentials compared in constant time over SHA-256 digests (no early exit,
 * every configured pair is checked); a missing or unparseable header is "missing", a
 * well-formed header that matches nothing is "bad"; guessing is bounded per client by
 * {@link AuthThrottle} (one check at a time, doubling waits, lockouts).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';

/** Outcome of checking an Authorization header. */
export type BasicAuthResult = { ok: true; key: string } | { ok: false; reason: 'missing' | 'bad' };

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Builds a checker for a fixed list of key:secret pairs. */
export function basicAuthChecker(credentials: ReadonlyArray<{ key: string; secret: string }>) {
  const expected = credentials.map((c) => ({ key: c.key, hash: digest(`${c.key}:${c.secret}`) }));
  return (header: string | undefined): BasicAuthResult => {
    if (typeof header !== 'string') return { ok: false, reason: 'missing' };
    const m = /^Basic[ ]+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    if (!m) return { ok: false, reason: 'missing' };
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    if (!decoded.includes(':')) return { ok: false, reason: 'missing' };
    const given = digest(decoded);
    let match: string | undefined;
    for (const e of expected) {
      if (timingSafeEqual(given, e.hash) && match === undefined) match = e.key;
    }
    return match === undefined ? { ok: false, reason: 'bad' } : { ok: true, key: match };
  };
}

/** Where the throttle reports lockouts; see src/observability/metrics.ts. */
export interface AdminAuthMetrics {
  lockout(): void;
  /** Registers how to count the addresses locked out right now. */
  watchLocked(count: () => number): void;
}

/** Options of {@link AuthThrottle}; times in milliseconds. */
export interface AuthThrottleOptions {
  /** Failures that cost nothing (default 5). */
  freeFailures?: number;
  /** Failures after which the address is locked out (default 10). */
  lockoutFailures?: number;
  /** How long a lockout lasts (default 15 minutes). */
  lockoutMs?: number;
  /** Longest wait before a check (default 3 s). */
  maxDelayMs?: number;
  /** How long failures are remembered (default 10 minutes, at least the lockout). */
  windowMs?: number;
  /** Checks waiting per address beyond which calls are refused at once (default 16). */
  maxWaiting?: number;
  /** Addresses remembered (default 10,000, least recently used dropped). */
  max?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  metrics?: AdminAuthMetrics;
}

/** What a throttled check came to: the check's result, or a refusal without checking. */
export type Throttled<T> = { checked: true; result: T } | { checked: false; retryAfterMs: number };

interface Failures {
  count: number;
  lockedUntil: number;
}

/**
 * Bounds credential guessing per client (IPv4 address, IPv6 /64; see `clientKey`):
 * - one check at a time per client: parallel calls wait their turn;
 * - after `freeFailures` failures each check waits 100 ms, doubling per further
 *   failure, up to `maxDelayMs`;
 * - after `lockoutFailures` failures the client is locked out for `lockoutMs`: calls are
 *   refused without any check (counted in metrics); after the lockout one check at a
 *   time again, and a further failure locks it out again;
 * - a success clears the client's record; memory is bounded (LRU).
 */
export class AuthThrottle {
  readonly #failures: LRUCache<string, Failures>;
  readonly #turns = new Map<string, { tail: Promise<unknown>; waiting: number }>();
  readonly #free: number;
  readonly #lockoutAt: number;
  readonly #lockoutMs: number;
  readonly #maxDelayMs: number;
  readonly #windowMs: number;
  readonly #maxWaiting: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #metrics: AdminAuthMetrics | undefined;

  constructor(opts: AuthThrottleOptions = {}) {
    this.#free = opts.freeFailures ?? 5;
    this.#lockoutAt = opts.lockoutFailures ?? 10;
    this.#lockoutMs = opts.lockoutMs ?? 15 * 60_000;
    this.#maxDelayMs = opts.maxDelayMs ?? 3000;
    this.#windowMs = Math.max(opts.windowMs ?? 10 * 60_000, this.#lockoutMs);
    this.#maxWaiting = opts.maxWaiting ?? 16;
    this.#now = opts.now ?? Date.now;
    this.#sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.#metrics = opts.metrics;
    this.#failures = new LRUCache({ max: opts.max ?? 10_000, ttl: this.#windowMs, perf: { now: this.#now } });
    this.#metrics?.watchLocked(() => this.lockedCount());
  }

  /** Milliseconds this client must wait before its credentials are checked. */
  delayFor(client: string): number {
    const over = (this.#failures.get(client, { updateAgeOnGet: false })?.count ?? 0) - this.#free;
    return over < 0 ? 0 : Math.min(this.#maxDelayMs, 100 * 2 ** Math.min(over, 10));
  }

  /** Clients locked out right now. */
  lockedCount(): number {
    const now = this.#now();
    let n = 0;
    for (const v of this.#failures.values()) if (v.lockedUntil > now) n++;
    return n;
  }

  /**
   * Runs `check` for this client when its turn comes and its wait is over, unless it is
   * locked out (or too many of its calls are waiting); `ok` tells a success from a failure.
   */
  async run<T>(client: string, check: () => T, ok: (result: T) => boolean | undefined): Promise<Throttled<T>> {
    const turn = this.#turns.get(client) ?? { tail: Promise.resolve(), waiting: 0 };
    if (turn.waiting >= this.#maxWaiting) return { checked: false, retryAfterMs: Math.max(1000, this.delayFor(client)) };
    turn.waiting++;
    this.#turns.set(client, turn);
    const mine = turn.tail.then(async (): Promise<Throttled<T>> => {
      const locked = this.#lockedFor(client);
      if (locked > 0) return { checked: false, retryAfterMs: locked };
      const delay = this.delayFor(client);
      if (delay > 0) await this.#sleep(delay);
      const result = check();
      const outcome = ok(result);
      if (outcome === true) this.#failures.delete(client);
      else if (outcome === false) this.#failed(client);
      return { checked: true, result };
    });
    turn.tail = mine.catch(() => undefined);
    try {
      return await mine;
    } finally {
      if (--turn.waiting === 0 && this.#turns.get(client) === turn) this.#turns.delete(client);
    }
  }

  #lockedFor(client: string): number {
    const entry = this.#failures.get(client, { updateAgeOnGet: false });
    return entry ? Math.max(0, entry.lockedUntil - this.#now()) : 0;
  }

  #failed(client: string): void {
    const entry = this.#failures.get(client, { updateAgeOnGet: false });
    const count = (entry?.count ?? 0) + 1;
    const lock = count >= this.#lockoutAt;
    this.#failures.set(client, { count, lockedUntil: lock ? this.#now() + this.#lockoutMs : 0 });
    if (lock) this.#metrics?.lockout();
  }
}
