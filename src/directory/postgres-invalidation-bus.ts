/**
 * Cache invalidation between replicas sharing a PostgreSQL directory, over
 * LISTEN/NOTIFY.
 *
 * Rules:
 * - one dedicated connection listens on a channel scoped by schema (`<channel>.<schema>`),
 *   so directories in different schemas of one database do not hear each other;
 * - a message is JSON `{ origin, keys }`; `origin` is this instance's random id and
 *   messages carrying it are ignored; keys are split over several notifications so
 *   none exceeds ~7000 bytes (PostgreSQL's limit is 8000); a key too long for any
 *   notification is sent as `{ origin, reset: true }`, which makes receivers drop
 *   everything;
 * - when the listening connection drops (or fails a heartbeat), it reconnects by
 *   itself after 250 ms, doubling up to 5 s, and calls `onReset` after every
 *   (re)connect: notifications sent while it was away are lost;
 * - `publish` uses a small pool, never throws, and gives up after `connectTimeoutMs`
 *   when the server cannot be reached; `start` never throws for an unreachable
 *   server either: it keeps retrying, and `connected` reports the state for readiness.
 */
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { ConfigError, StoreUnavailableError } from '../errors.js';
import type { InvalidationBus, InvalidationHandlers } from './invalidation-bus.js';
import { SCHEMA_NAME_PATTERN } from './postgres-migrations.js';

/** Where the bus reports connection changes; a pino logger fits. */
export interface BusLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** Options of {@link PostgresInvalidationBus}. */
export interface PostgresInvalidationBusOptions {
  /** Connection string of the directory's database. */
  url: string;
  /** Schema of the directory; scopes the channel. Default `public`. */
  schema?: string;
  /** Base channel name (letters, digits, `_`; at most 40). Default `tenant_gate_invalidate`. */
  channel?: string;
  /** How long to wait for a connection, in milliseconds. Default 3000. */
  connectTimeoutMs?: number;
  /** How often the listening connection is checked, in milliseconds; 0 turns it off. Default 30000. */
  heartbeatMs?: number;
  logger?: BusLogger;
}

/** Largest payload sent in one notification, in bytes. */
export const MAX_PAYLOAD_BYTES = 7000;

const CHANNEL_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,39}$/;
const FIRST_RETRY_MS = 250;
const LAST_RETRY_MS = 5000;

/** The channel a directory in `schema` uses; at most 63 bytes, PostgreSQL's identifier limit. */
function scopedChannel(channel: string, schema: string): string {
  const name = `${channel}.${schema}`;
  return name.length <= 63 ? name : `${channel}.${createHash('sha256').update(schema).digest('hex').slice(0, 16)}`;
}

/** Splits `keys` into message payloads of at most `MAX_PAYLOAD_BYTES` each. */
export function invalidationPayloads(origin: string, keys: readonly string[]): string[] {
  const head = `{"origin":${JSON.stringify(origin)},"keys":[`;
  const tail = ']}';
  const room = MAX_PAYLOAD_BYTES - Buffer.byteLength(head) - Buffer.byteLength(tail);
  const payloads: string[] = [];
  let batch: string[] = [];
  let size = 0;
  let reset = false;
  for (const key of keys) {
    const encoded = JSON.stringify(key);
    const bytes = Buffer.byteLength(encoded);
    if (bytes > room) {
      reset = true;
      continue;
    }
    if (batch.length > 0 && size + 1 + bytes > room) {
      payloads.push(head + batch.join(',') + tail);
      batch = [];
      size = 0;
    }
    size += (batch.length > 0 ? 1 : 0) + bytes;
    batch.push(encoded);
  }
  if (batch.length > 0) payloads.push(head + batch.join(',') + tail);
  if (reset) payloads.push(JSON.stringify({ origin, reset: true }));
  return payloads;
}

/** Waits for `promise` at most `ms`; a connection whose peer went silent never ends gracefully. */
async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise.catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** {@link InvalidationBus} over PostgreSQL LISTEN/NOTIFY. */
export class PostgresInvalidationBus implements InvalidationBus {
  readonly kind = 'postgres';
  /** The channel actually listened on: the base channel scoped by schema. */
  readonly channel: string;
  /** Random id of this instance, carried by its messages. */
  readonly origin = randomBytes(12).toString('base64url');
  readonly #url: string;
  readonly #connectTimeoutMs: number;
  readonly #heartbeatMs: number;
  readonly #logger: BusLogger | undefined;
  #handlers: InvalidationHandlers | undefined;
  #pool: pg.Pool | undefined;
  #listener: pg.Client | undefined;
  #connected = false;
  #closed = false;
  #everConnected = false;
  #retryMs = FIRST_RETRY_MS;
  #retryTimer: NodeJS.Timeout | undefined;
  #heartbeatTimer: NodeJS.Timeout | undefined;

  /** @throws ConfigError when the channel or schema name is not a plain identifier. */
  constructor(options: PostgresInvalidationBusOptions) {
    const schema = options.schema ?? 'public';
    const channel = options.channel ?? 'tenant_gate_invalidate';
    if (!SCHEMA_NAME_PATTERN.test(schema)) {
      throw new ConfigError([{ path: '/store/url', message: `schema "${schema}" must match ${SCHEMA_NAME_PATTERN}` }]);
    }
    if (!CHANNEL_PATTERN.test(channel)) {
      throw new ConfigError([{ path: 'channel', message: `channel "${channel}" must match ${CHANNEL_PATTERN}` }]);
    }
    this.channel = scopedChannel(channel, schema);
    this.#url = options.url;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 3000;
    this.#heartbeatMs = options.heartbeatMs ?? 30_000;
    this.#logger = options.logger;
  }

  /** True while the listening connection is up: invalidations from other replicas arrive. */
  get connected(): boolean {
    return this.#connected;
  }

  /**
   * Connects the listener and calls `onReset` once listening. When the server cannot be
   * reached, resolves anyway and keeps retrying in the background.
   */
  async start(handlers: InvalidationHandlers): Promise<void> {
    if (this.#closed) throw new Error('the invalidation bus is closed');
    const first = this.#handlers === undefined;
    this.#handlers = handlers;
    if (first) await this.#listen();
  }

  /** Sends `keys` to the other replicas. Logs and returns when PostgreSQL cannot be reached. */
  async publish(keys: string[]): Promise<void> {
    if (this.#closed || keys.length === 0) return;
    const pool = this.#publishPool();
    for (const payload of invalidationPayloads(this.origin, keys)) {
      try {
        await pool.query('SELECT pg_notify($1, $2)', [this.channel, payload]);
      } catch (err) {
        this.#logger?.warn({ err, channel: this.channel, keys: keys.length }, 'directory invalidation could not be published');
        return;
      }
    }
  }

  /** Stops listening and retrying, and ends both connections, waiting at most `connectTimeoutMs`. Idempotent. */
  async check(): Promise<void> {
    if (!this.#connected) throw new StoreUnavailableError(new Error('invalidation listener disconnected'));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#connected = false;
    clearTimeout(this.#retryTimer);
    clearInterval(this.#heartbeatTimer);
    const listener = this.#listener;
    const pool = this.#pool;
    this.#listener = undefined;
    this.#pool = undefined;
    await settleWithin(Promise.all([listener?.end(), pool?.end()]), this.#connectTimeoutMs);
  }

  #publishPool(): pg.Pool {
    if (!this.#pool) {
      this.#pool = new pg.Pool({
        connectionString: this.#url,
        max: 2,
        connectionTimeoutMillis: this.#connectTimeoutMs,
        query_timeout: this.#connectTimeoutMs,
        idleTimeoutMillis: 30_000,
        keepAlive: true,
        fallback_application_name: 'tenant-gate',
      });
      this.#pool.on('error', (err) => this.#logger?.warn({ err }, 'directory invalidation: an idle PostgreSQL connection failed'));
    }
    return this.#pool;
  }

  async #listen(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.#url,
      connectionTimeoutMillis: this.#connectTimeoutMs,
      keepAlive: true,
      fallback_application_name: 'tenant-gate',
    });
    let lost = false;
    const drop = (err: unknown): void => {
      if (lost) return;
      lost = true;
      client.end().catch(() => undefined);
      if (this.#listener === client) {
        this.#listener = undefined;
        this.#connected = false;
        clearInterval(this.#heartbeatTimer);
      }
      if (this.#closed) return;
      this.#logger?.warn(
        { err, channel: this.channel, retryInMs: this.#retryMs },
        'directory invalidation listener disconnected; cached entries are dropped when it is back',
      );
      this.#retry();
    };
    client.on('error', drop);
    client.on('end', () => drop(new Error('connection ended')));
    client.on('notification', (message) => this.#receive(message));

    try {
      await client.connect();
      await client.query(`LISTEN ${pg.escapeIdentifier(this.channel)}`);
    } catch (err) {
      drop(err);
      return;
    }
    if (lost) return;
    if (this.#closed) {
      lost = true;
      await client.end().catch(() => undefined);
      return;
    }
    this.#listener = client;
    this.#connected = true;
    this.#retryMs = FIRST_RETRY_MS;
    if (this.#heartbeatMs > 0) {
      this.#heartbeatTimer = setInterval(() => this.#heartbeat(client, drop), this.#heartbeatMs);
      this.#heartbeatTimer.unref();
    }
    if (this.#everConnected) this.#logger?.info({ channel: this.channel }, 'directory invalidation listener reconnected');
    this.#everConnected = true;
    this.#call((h) => h.onReset());
  }

  #heartbeat(client: pg.Client, drop: (err: unknown) => void): void {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('heartbeat timed out')), this.#connectTimeoutMs);
    });
    Promise.race([client.query('SELECT 1'), timeout])
      .catch(drop)
      .finally(() => clearTimeout(timer));
  }

  #retry(): void {
    if (this.#retryTimer || this.#closed) return;
    const delay = this.#retryMs;
    this.#retryMs = Math.min(this.#retryMs * 2, LAST_RETRY_MS);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.#listen();
    }, delay);
    this.#retryTimer.unref();
  }

  #receive(message: pg.Notification): void {
    if (message.channel !== this.channel || message.payload === undefined) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(message.payload);
    } catch {
      this.#logger?.warn({ channel: this.channel }, 'directory invalidation: ignored a message that is not JSON');
      return;
    }
    if (typeof parsed !== 'object' || parsed === null) return;
    const { origin, keys, reset } = parsed as { origin?: unknown; keys?: unknown; reset?: unknown };
    if (origin === this.origin) return;
    if (reset === true) {
      this.#call((h) => h.onReset());
    } else if (Array.isArray(keys) && keys.every((k): k is string => typeof k === 'string')) {
      this.#call((h) => h.onKeys(keys));
    }
  }

  #call(fn: (handlers: InvalidationHandlers) => void): void {
    const handlers = this.#handlers;
    if (!handlers || this.#closed) return;
    try {
      fn(handlers);
    } catch (err) {
      this.#logger?.warn({ err }, 'directory invalidation handler failed');
    }
  }
}
