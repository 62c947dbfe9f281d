/**
 * How replicas tell each other which directory cache keys a write changed.
 *
 * Rules every bus keeps:
 * - `publish` sends keys to the other replicas only: the writer drops its own keys
 *   itself, at once, and never hears its own messages back;
 * - `publish` never throws: a lost message costs at most one cache TTL of staleness;
 * - `onReset` is called whenever messages may have been missed (after every
 *   (re)connect), so the receiver drops its whole cache.
 */

/** What a bus calls when other replicas changed the directory. */
export interface InvalidationHandlers {
  /** Drop these keys (see `directoryKey` in cached-directory.ts). */
  onKeys(keys: string[]): void;
  /** Drop everything: messages may have been missed. */
  onReset(): void;
}

/** Carries cache invalidations between gateway replicas. */
export interface InvalidationBus {
  /** Backend name, e.g. `local` or `postgres`. */
  readonly kind: string;
  /** Starts listening; handlers are called from then on. */
  start(handlers: InvalidationHandlers): Promise<void>;
  /** Tells the other replicas that these keys changed. Never throws. */
  publish(keys: string[]): Promise<void>;
  /** Readiness: throws while invalidations from other replicas may not arrive. */
  check(): Promise<void>;
  /** Stops listening and releases connections. Idempotent. */
  close(): Promise<void>;
}

/** The bus of a single process (the SQLite store): there is nobody to tell. */
export class LocalInvalidationBus implements InvalidationBus {
  readonly kind = 'local';
  /** Always true: there is no connection to lose. */
  readonly connected = true;

  async start(_handlers: InvalidationHandlers): Promise<void> {}

  async publish(_keys: string[]): Promise<void> {}

  async check(): Promise<void> {}

  async close(): Promise<void> {}
}
