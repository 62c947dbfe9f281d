/**
 * Invalidations between the worker processes of one gateway (`workers` > 1): each
 * worker tells the primary, which passes the keys on to every other worker.
 */
import type { InvalidationBus, InvalidationHandlers } from './invalidation-bus.js';

/** The message workers and the primary exchange. */
export interface InvalidationMessage {
  tg: 'invalidate';
  keys: string[];
}

/** True for a message of this bus. */
export function isInvalidationMessage(m: unknown): m is InvalidationMessage {
  return typeof m === 'object' && m !== null && (m as { tg?: unknown }).tg === 'invalidate' && Array.isArray((m as { keys?: unknown }).keys);
}

/** The bus of a cluster worker; needs `process.send` (an IPC channel to the primary). */
export class ClusterInvalidationBus implements InvalidationBus {
  readonly kind = 'cluster';
  readonly connected = true;
  #listener: ((m: unknown) => void) | undefined;

  async start(handlers: InvalidationHandlers): Promise<void> {
    this.#listener = (m: unknown) => {
      if (isInvalidationMessage(m)) handlers.onKeys(m.keys.filter((k): k is string => typeof k === 'string'));
    };
    process.on('message', this.#listener);
  }

  async publish(keys: string[]): Promise<void> {
    if (!process.send || keys.length === 0) return;
    const message: InvalidationMessage = { tg: 'invalidate', keys };
    try {
      process.send(message);
    } catch {
      /* the primary is gone: the process is stopping */
    }
  }

  async check(): Promise<void> {}

  async close(): Promise<void> {
    if (this.#listener) process.off('message', this.#listener);
    this.#listener = undefined;
  }
}
