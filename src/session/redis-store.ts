/**
 * Sessions in Redis (ioredis), shared by every gateway replica.
 *
 * Rules:
 * - a session is a hash `<prefix>session:<id>` holding the session as JSON (`data`),
 *   `lastSeenAt` and `expiresAt`; its PX TTL is the inactivity TTL, cut short so it
 *   never outlives `expiresAt`, which `get` checks as well;
 * - `touch` is one Lua script: it only updates an existing session (never recreates a
 *   destroyed one), keeps its data, and renews the TTL no further than `expiresAt`;
 * - single-use keys are `<prefix>once:<sha256 of the key>` set with SET NX PX, so
 *   exactly one concurrent use wins;
 * - the client connects lazily on first use, never queues commands while
 *   disconnected and retries a command at most once: when Redis is down, calls fail
 *   fast with `StoreUnavailableError` while the client reconnects in the background
 *   (250 ms doubling to 5 s); malformed ids never reach Redis.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { GatewayError, StoreUnavailableError } from '../errors.js';
import { SESSION_ID_PATTERN, type SessionData, type SessionStore } from './types.js';

/** Where the store reports connection problems; a pino logger fits. */
export interface SessionStoreLogger {
  warn(obj: object, msg: string): void;
}

interface CommonOptions {
  /** Prepended to every key. Default `tenant-gate:`. */
  keyPrefix?: string;
  logger?: SessionStoreLogger;
}

/** Options of {@link RedisSessionStore}: a URL to connect to, or a client to use. */
export type RedisSessionStoreOptions =
  | (CommonOptions & {
      /** `redis://[user:password@]host:port[/db]` or `rediss://` for TLS. */
      url: string;
      /** How long to wait for a connection, in milliseconds. Default 3000. */
      connectTimeoutMs?: number;
      /** How long to wait for a reply, in milliseconds. Default 2000. */
      commandTimeoutMs?: number;
    })
  | (CommonOptions & {
      /** A client owned by the caller; `close()` leaves it open. Best made with the options of `redisClientOptions`. */
      client: Redis;
    });

/** Client settings that make calls fail fast instead of waiting for Redis. */
export function redisClientOptions(connectTimeoutMs = 3000, commandTimeoutMs = 2000) {
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: connectTimeoutMs,
    commandTimeout: commandTimeoutMs,
    retryStrategy: (attempt: number) => Math.min(250 * 2 ** Math.min(attempt - 1, 5), 5000),
  };
}

/** Reply errors meaning "Redis cannot serve now" rather than a bug. */
const UNAVAILABLE_REPLY = /^(OOM|READONLY|LOADING|MASTERDOWN|BUSY|CLUSTERDOWN|TRYAGAIN|NOREPLICAS|MISCONF)\b/;

const TOUCH_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local ttl = tonumber(ARGV[2])
local expiresAt = tonumber(redis.call('HGET', KEYS[1], 'expiresAt') or '')
if expiresAt then
  local left = expiresAt - tonumber(ARGV[3])
  if left < ttl then ttl = left end
end
if ttl <= 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('HSET', KEYS[1], 'lastSeenAt', ARGV[1])
redis.call('PEXPIRE', KEYS[1], string.format('%d', math.floor(ttl)))
return 1
`;
const TOUCH_SHA = createHash('sha1').update(TOUCH_SCRIPT).digest('hex');

function ttlMs(ttlSeconds: number): number {
  if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) throw new RangeError('ttlSeconds must be a positive number');
  return Math.ceil(ttlSeconds * 1000);
}

function validId(id: unknown): id is string {
  return typeof id === 'string' && SESSION_ID_PATTERN.test(id);
}

function translate(err: unknown): unknown {
  if (err instanceof GatewayError) return err;
  if (err instanceof Error && err.name === 'ReplyError') {
    return UNAVAILABLE_REPLY.test(err.message) ? new StoreUnavailableError(err) : err;
  }
  if (err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError) return err;
  return new StoreUnavailableError(err);
}

/** {@link SessionStore} in Redis. */
export class RedisSessionStore implements SessionStore {
  readonly kind = 'redis';
  readonly #client: Redis;
  readonly #owned: boolean;
  readonly #prefix: string;
  readonly #connectTimeoutMs: number;
  #connecting: Promise<void> | undefined;
  #closed = false;

  constructor(options: RedisSessionStoreOptions) {
    this.#prefix = options.keyPrefix ?? 'tenant-gate:';
    this.#connectTimeoutMs = ('url' in options ? options.connectTimeoutMs : undefined) ?? 3000;
    if ('client' in options) {
      this.#client = options.client;
      this.#owned = false;
    } else {
      this.#client = new Redis(options.url, redisClientOptions(options.connectTimeoutMs, options.commandTimeoutMs));
      this.#owned = true;
      const logger = options.logger;
      this.#client.on('error', (err: Error) => logger?.warn({ err }, 'Redis session store connection failed'));
    }
  }

  /** {@inheritDoc SessionStore.create} */
  async create(data: SessionData, ttlSeconds: number): Promise<string> {
    const ttl = ttlMs(ttlSeconds);
    const id = randomBytes(32).toString('base64url');
    const json = JSON.stringify(data);
    return this.#run(async (redis) => {
      const capped = Number.isFinite(data.expiresAt) ? Math.min(ttl, data.expiresAt - Date.now()) : ttl;
      if (capped <= 0) return id;
      const fields: Record<string, string> = { data: json, lastSeenAt: String(data.lastSeenAt) };
      if (Number.isFinite(data.expiresAt)) fields.expiresAt = String(data.expiresAt);
      const key = this.#sessionKey(id);
      const replies = await redis.multi().hset(key, fields).pexpire(key, Math.ceil(capped)).exec();
      const failed = replies?.find(([err]) => err)?.[0];
      if (!replies || failed) throw failed ?? new Error('the session write was discarded');
      return id;
    });
  }

  /** {@inheritDoc SessionStore.get} */
  async get(id: string): Promise<SessionData | undefined> {
    if (!validId(id)) return undefined;
    const [json, lastSeenAt] = await this.#run((redis) => redis.hmget(this.#sessionKey(id), 'data', 'lastSeenAt'));
    if (json == null) return undefined;
    let data: SessionData;
    try {
      data = JSON.parse(json) as SessionData;
    } catch {
      return undefined;
    }
    if (Date.now() >= data.expiresAt) return undefined;
    if (lastSeenAt != null) data.lastSeenAt = Number(lastSeenAt);
    return data;
  }

  /** {@inheritDoc SessionStore.touch} */
  async touch(id: string, lastSeenAt: number, ttlSeconds: number): Promise<void> {
    const ttl = ttlMs(ttlSeconds);
    if (!validId(id)) return;
    const args = [this.#sessionKey(id), String(lastSeenAt), String(ttl), String(Date.now())];
    await this.#run(async (redis) => {
      try {
        await redis.evalsha(TOUCH_SHA, 1, ...args);
      } catch (err) {
        if (!(err instanceof Error && err.message.startsWith('NOSCRIPT'))) throw err;
        await redis.eval(TOUCH_SCRIPT, 1, ...args);
      }
    });
  }

  /** {@inheritDoc SessionStore.destroy} */
  async destroy(id: string): Promise<void> {
    if (!validId(id)) return;
    await this.#run((redis) => redis.del(this.#sessionKey(id)));
  }

  /** {@inheritDoc SessionStore.consumeOnce} */
  async consumeOnce(key: string, ttlSeconds: number): Promise<boolean> {
    const ttl = ttlMs(ttlSeconds);
    const digest = createHash('sha256').update(String(key)).digest('base64url');
    const reply = await this.#run((redis) => redis.set(`${this.#prefix}once:${digest}`, '1', 'PX', ttl, 'NX'));
    return reply === 'OK';
  }

  /** Throws `StoreUnavailableError` when Redis does not answer. */
  async ping(): Promise<void> {
    await this.#run((redis) => redis.ping());
  }

  /** Disconnects a client this store made; an injected client stays open. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#owned) return;
    const client = this.#client;
    if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
    else client.disconnect();
  }

  /** A connection attempt can outlast `connectTimeoutMs` (a server that accepts but never answers). */
  async #readyWithin(connecting: Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis was not ready within ${this.#connectTimeoutMs} ms`)), this.#connectTimeoutMs);
    });
    try {
      await Promise.race([connecting, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  #sessionKey(id: string): string {
    return `${this.#prefix}session:${id}`;
  }

  async #run<T>(fn: (redis: Redis) => Promise<T>): Promise<T> {
    if (this.#closed) throw new StoreUnavailableError(new Error('the Redis session store is closed'));
    try {
      if (this.#client.status === 'wait') {
        this.#connecting ??= this.#client.connect().finally(() => {
          this.#connecting = undefined;
        });
      }
      if (this.#connecting) await this.#readyWithin(this.#connecting);
      return await fn(this.#client);
    } catch (err) {
      throw translate(err);
    }
  }
}
