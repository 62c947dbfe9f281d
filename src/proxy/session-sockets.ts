/**
 * Websockets opened under a session end with it.
 *
 * Rules:
 * - an upgrade passed on under a session is remembered with that session's id;
 * - when the session store says sessions ended (logout, revocation, back-channel
 *   logout, on any replica sharing the store), their sockets are destroyed at once;
 * - every `sweepMs` each remembered session is checked again (expiry, idle timeout, a
 *   tenant or provider deleted, a group change that leaves the user without access);
 *   sockets of sessions no longer valid are destroyed; a check that fails (store down)
 *   keeps the sockets until the next sweep;
 * - nothing is kept for a socket after it closes.
 */
import type { Duplex } from 'node:stream';

/** Options of the registry. */
export interface SessionSocketsOptions {
  /** Whether a session is still valid; a rejection counts as "unknown, keep". */
  stillValid(sessionId: string): Promise<boolean>;
  /** How often open sessions are checked again (default 1000 ms). */
  sweepMs?: number;
  /** Called with the number of sockets closed and why. */
  onClosed?(count: number, why: 'ended' | 'invalid'): void;
}

/** The websockets of live sessions, closed when their session ends. */
export class SessionSockets {
  readonly #bySession = new Map<string, Set<Duplex>>();
  readonly #opts: SessionSocketsOptions;
  #timer: NodeJS.Timeout | undefined;
  #sweeping = false;

  constructor(opts: SessionSocketsOptions) {
    this.#opts = opts;
  }

  /** Remembers a socket opened under a session until it closes. */
  add(sessionId: string, socket: Duplex): void {
    let set = this.#bySession.get(sessionId);
    if (!set) this.#bySession.set(sessionId, (set = new Set()));
    set.add(socket);
    socket.once('close', () => {
      const current = this.#bySession.get(sessionId);
      current?.delete(socket);
      if (current?.size === 0) this.#bySession.delete(sessionId);
    });
    if (!this.#timer) {
      this.#timer = setInterval(() => void this.sweep(), this.#opts.sweepMs ?? 1000);
      this.#timer.unref();
    }
  }

  /** Number of sockets remembered. */
  get size(): number {
    let n = 0;
    for (const set of this.#bySession.values()) n += set.size;
    return n;
  }

  /** Destroys the sockets of these sessions. */
  end(sessionIds: readonly string[], why: 'ended' | 'invalid' = 'ended'): void {
    let closed = 0;
    for (const id of sessionIds) {
      const set = this.#bySession.get(id);
      if (!set) continue;
      this.#bySession.delete(id);
      for (const socket of set) {
        socket.destroy();
        closed++;
      }
    }
    if (closed > 0) this.#opts.onClosed?.(closed, why);
  }

  /** Checks every remembered session once; closes the sockets of those no longer valid. */
  async sweep(): Promise<void> {
    if (this.#sweeping) return;
    this.#sweeping = true;
    try {
      const ids = [...this.#bySession.keys()];
      const verdicts = await Promise.all(ids.map((id) => this.#opts.stillValid(id).catch(() => true)));
      this.end(ids.filter((_id, i) => !verdicts[i]), 'invalid');
      if (this.#bySession.size === 0 && this.#timer) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
    } finally {
      this.#sweeping = false;
    }
  }

  /** Stops checking; sockets are left to the server's close. */
  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
