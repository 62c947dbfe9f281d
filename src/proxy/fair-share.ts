/**
 * A fair share of an upstream: how many requests one client may have in flight, and
 * how long a request may wait for a connection.
 *
 * Rules:
 * - a client (IPv4 address, IPv6 /64) holds at most `perClient` upstream requests at a
 *   time, a session at most `perSession`; waiting for a connection counts;
 * - beyond either cap the answer is a quick 429 page with Retry-After, before any body
 *   is read (and then the connection is closed, since the body is left unread);
 * - at most `connections` requests are in flight per upstream (the size of its pool);
 *   the rest wait in arrival order for at most `queueTimeoutMs`, then get a 503 page
 *   with Retry-After; a request whose client leaves stops waiting and frees its place;
 * - websocket upgrades are not counted (they hold no pool connection).
 */
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import type { Config } from '../config/schema.js';
import { clientKey } from '../net/client-key.js';
import { sendPage } from '../pages/render.js';

/** Limits of one upstream's fair share. */
export interface FairShareLimits {
  perClient: number;
  perSession: number;
  connections: number;
  queueTimeoutMs: number;
}

/** A request's place: release it once, when the request is over. */
export interface Ticket {
  /** Resolves true once a connection is free, false after `queueTimeoutMs` or a release. */
  slot(): boolean | Promise<boolean>;
  release(): void;
}

interface Waiter {
  resolve: (ok: boolean) => void;
  timer: NodeJS.Timeout;
}

/** In-flight counts per client and session, and the wait for a free connection. */
export class FairShare {
  readonly limits: FairShareLimits;
  readonly #held = new Map<string, number>();
  readonly #waiters: Waiter[] = [];
  #active = 0;

  constructor(limits: FairShareLimits) {
    this.limits = limits;
  }

  /** Requests holding a connection. */
  get active(): number {
    return this.#active;
  }

  /** Takes a place for this client and session, or names the cap that is full. */
  enter(client: string, session: string | undefined): Ticket | 'client' | 'session' {
    const c = `c:${client}`;
    const s = session === undefined ? undefined : `s:${session}`;
    if ((this.#held.get(c) ?? 0) >= this.limits.perClient) return 'client';
    if (s !== undefined && (this.#held.get(s) ?? 0) >= this.limits.perSession) return 'session';
    this.#add(c, 1);
    if (s !== undefined) this.#add(s, 1);
    let state: 'new' | 'waiting' | 'running' | 'done' = 'new';
    let waiter: Waiter | undefined;
    let released = false;
    return {
      slot: () => {
        if (state !== 'new') return state === 'running';
        if (this.#active < this.limits.connections) {
          this.#active++;
          state = 'running';
          return true;
        }
        state = 'waiting';
        return new Promise<boolean>((resolve) => {
          const w: Waiter = {
            resolve: (ok) => {
              clearTimeout(w.timer);
              if (state === 'waiting') state = ok ? 'running' : 'done';
              resolve(ok);
            },
            timer: setTimeout(() => {
              this.#dropWaiter(w);
              w.resolve(false);
            }, this.limits.queueTimeoutMs),
          };
          waiter = w;
          this.#waiters.push(w);
        });
      },
      release: () => {
        if (released) return;
        released = true;
        if (state === 'waiting' && waiter) {
          this.#dropWaiter(waiter);
          waiter.resolve(false);
        } else if (state === 'running') this.#handOver();
        state = 'done';
        this.#add(c, -1);
        if (s !== undefined) this.#add(s, -1);
      },
    };
  }

  #add(key: string, delta: number): void {
    const n = (this.#held.get(key) ?? 0) + delta;
    if (n > 0) this.#held.set(key, n);
    else this.#held.delete(key);
  }

  #dropWaiter(w: Waiter): void {
    const i = this.#waiters.indexOf(w);
    if (i >= 0) this.#waiters.splice(i, 1);
  }

  /** A finished request's connection goes to the longest waiter, or back to the pool. */
  #handOver(): void {
    const next = this.#waiters.shift();
    if (next) next.resolve(true);
    else this.#active--;
  }
}

/** The proxy's edge options from the configuration: fair share, idle timeout, route-mode session cookie. */
export function edgeLimits(config: Config): { share: FairShareLimits; bodyIdleTimeoutMs: number; sessionCookie?: string } {
  const u = config.upstreams;
  return {
    share: { perClient: u.maxConcurrentPerClient, perSession: u.maxConcurrentPerSession, connections: u.connections, queueTimeoutMs: u.queueTimeoutMs },
    bodyIdleTimeoutMs: config.public.bodyIdleTimeoutMs,
    ...(config.mode === 'route' ? { sessionCookie: config.session.webappCookie } : {}),
  };
}

function refuse(req: FastifyRequest, reply: FastifyReply, status: 429 | 503, why: string): void {
  if (!req.raw.complete) reply.header('connection', 'close');
  reply.header('retry-after', status === 429 ? '1' : '2');
  req.log.info({ status, why }, 'upstream share refused');
  sendPage(reply, status, {
    title: status === 429 ? 'Too many requests' : 'Temporarily unavailable',
    paragraphs: [status === 429 ? 'Too many of your requests are in progress. Please wait a moment and try again.' : 'The application is busy. Please try again in a moment.'],
  });
}

/**
 * A route `preHandler` that admits a proxied request to its upstream's fair share, and
 * frees its place when the response closes (finished or abandoned).
 */
export function fairShareHook(share: FairShare, sessionKey: (req: FastifyRequest) => string | undefined) {
  return (req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    if (req.headers.upgrade !== undefined) return done();
    const ticket = share.enter(clientKey(req.gate?.clientAddress ?? req.ip), sessionKey(req));
    if (typeof ticket === 'string') {
      refuse(req, reply, 429, `${ticket} cap`);
      return;
    }
    reply.raw.on('close', () => ticket.release());
    const slot = ticket.slot();
    if (slot === true) return done();
    if (slot === false) return refuse(req, reply, 503, 'no upstream connection in time');
    void slot.then((ok) => {
      if (ok) return done();
      if (reply.raw.destroyed || reply.sent) return;
      refuse(req, reply, 503, 'no upstream connection in time');
    });
  };
}
