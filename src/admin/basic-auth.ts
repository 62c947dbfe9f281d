/**
 * HTTP Basic authentication of admin calls.
 *
 * Rules: credentials compared in constant time over SHA-256 digests (no early exit,
 * every configured pair is checked); a missing or unparseable header is "missing", a
 * well-formed header that matches nothing is "bad".
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

/**
 * Slows down clients that keep failing admin authentication: after `freeFailures`
 * failures within `windowMs`, every authenticated call from that address waits
 * 100 ms doubling per further failure, up to `maxDelayMs`. Bounded memory (LRU).
 */
export class AuthThrottle {
  readonly #failures: LRUCache<string, { count: number }>;
  readonly #free: number;
  readonly #maxDelayMs: number;

  constructor(opts: { freeFailures?: number; windowMs?: number; maxDelayMs?: number; max?: number } = {}) {
    this.#free = opts.freeFailures ?? 5;
    this.#maxDelayMs = opts.maxDelayMs ?? 3000;
    this.#failures = new LRUCache({ max: opts.max ?? 10_000, ttl: opts.windowMs ?? 10 * 60_000 });
  }

  /** Milliseconds this client must wait before its credentials are checked. */
  delayFor(client: string): number {
    const over = (this.#failures.get(client)?.count ?? 0) - this.#free;
    return over < 0 ? 0 : Math.min(this.#maxDelayMs, 100 * 2 ** Math.min(over, 10));
  }

  failed(client: string): void {
    const entry = this.#failures.get(client, { updateAgeOnGet: false });
    this.#failures.set(client, { count: (entry?.count ?? 0) + 1 });
  }

  succeeded(client: string): void {
    this.#failures.delete(client);
  }
}
