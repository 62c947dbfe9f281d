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
 * - the index is one set of ids per entry (`<prefix>idx:<sha256 of the entry>`); a
 *   session is written with its index entries by one script, and its hash lists
 *   them (`idx`) so that ending it removes it from each, atomically; an index set
 *   lives as long as its longest-lived session (`expiresAt`); ids of sessions that
 *   expired are dropped from a set when a lookup reads it;
 * - ending sessions deletes their keys (every replica reads Redis, so they end
 *   everywhere at once) and publishes their ids on `<prefix>sessions:ended`, which
 *   every store with `onEnded` listeners subscribes to;
 * - time (for `expiresAt`) is the injected clock;
 * - the client connects lazily on first use, never queues commands while
 *   disconnected and retries a command at most once: when Redis is down, calls fail
 *   fast with `StoreUnavailableError` while the client reconnects in the background
 *   (250 ms doubling to 5 s); malformed ids never reach Redis.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { GatewayError, StoreUnavailableError } from '../errors.js';
import {
  SESSION_ID_PATTERN,
  type EndedListener,
  type SessionData,
  type SessionEntry,
  type SessionQuery,
  type SessionStore,
} from './types.js';
import { indexNameFor, indexNamesOf, matchesQuery } from './index-keys.js';

/** Where the store reports connection problems; a pino logger fits. */
export interface SessionStoreLogger {
  warn(obj: object, msg: string): void;
}

interface CommonOptions {
  /** Prepended to every key. Default `tenant-gate:`. */
  keyPrefix?: string;
  logger?: SessionStoreLogger;
  /** Clock in milliseconds since the epoch (default `Date.now`). */
  now?: () => number;
  /** Told how many sessions a lookup found expired (for the `expired` metric). */
  onExpired?: (count: number) => void;
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

/** KEYS: session, index sets. ARGV: data, lastSeenAt, expiresAt or '', session TTL, index TTL, id, index names. */
const CREATE_SCRIPT = `
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'lastSeenAt', ARGV[2], 'idx', ARGV[7])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'expiresAt', ARGV[3]) end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local ttl = tonumber(ARGV[5])
for i = 2, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[6])
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ARGV[5]) end
end
return 1
`;
const CREATE_SHA = createHash('sha1').update(CREATE_SCRIPT).digest('hex');

/** KEYS: session. ARGV: id. Deletes the session and takes it out of its index sets; 1 when it existed. */
const DESTROY_SCRIPT = `
local idx = redis.call('HGET', KEYS[1], 'idx')
local n = redis.call('DEL', KEYS[1])
if idx then
  for name in string.gmatch(idx, '%S+') do redis.call('SREM', name, ARGV[1]) end
end
return n
`;
const DESTROY_SHA = createHash('sha1').update(DESTROY_SCRIPT).digest('hex');

/** Where a set of ids lives when nothing gives it an end (a session without a finite expiresAt). */
const INDEX_FALLBACK_TTL_MS = 30 * 24 * 3600_000;

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
  readonly #now: () => number;
  readonly #onExpired: ((count: number) => void) | undefined;
  readonly #logger: SessionStoreLogger | undefined;
  /** Tells this store's own publications apart from other replicas'. */
  readonly #origin = randomBytes(9).toString('base64url');
  readonly #listeners = new Set<EndedListener>();
  #subscriber: Redis | undefined;
  #connecting: Promise<void> | undefined;
  #closed = false;

  constructor(options: RedisSessionStoreOptions) {
    this.#prefix = options.keyPrefix ?? 'tenant-gate:';
    this.#now = options.now ?? Date.now;
    this.#onExpired = options.onExpired;
    this.#logger = options.logger;
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
    const indexKeys = indexNamesOf(data).map((name) => this.#indexKey(name));
    return this.#run(async (redis) => {
      const finite = Number.isFinite(data.expiresAt);
      const left = finite ? data.expiresAt - this.#now() : ttl;
      const capped = Math.min(ttl, left);
      if (capped <= 0) return id;
      const indexTtl = Math.ceil(finite ? Math.max(left, capped) : Math.max(ttl, INDEX_FALLBACK_TTL_MS));
      await this.#script(redis, CREATE_SCRIPT, CREATE_SHA, [this.#sessionKey(id), ...indexKeys], [
        json,
        String(data.lastSeenAt),
        finite ? String(data.expiresAt) : '',
        String(Math.ceil(capped)),
        String(indexTtl),
        id,
        indexKeys.join(' '),
      ]);
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
    if (this.#now() >= data.expiresAt) return undefined;
    if (lastSeenAt != null) data.lastSeenAt = Number(lastSeenAt);
    return data;
  }

  /** {@inheritDoc SessionStore.touch} */
  async touch(id: string, lastSeenAt: number, ttlSeconds: number): Promise<void> {
    const ttl = ttlMs(ttlSeconds);
    if (!validId(id)) return;
    const args = [String(lastSeenAt), String(ttl), String(this.#now())];
    await this.#run((redis) => this.#script(redis, TOUCH_SCRIPT, TOUCH_SHA, [this.#sessionKey(id)], args));
  }

  /** {@inheritDoc SessionStore.destroy} */
  async destroy(id: string): Promise<void> {
    await this.destroyMany([id]);
  }

  /** {@inheritDoc SessionStore.destroyMany} */
  async destroyMany(ids: readonly string[]): Promise<number> {
    const valid = [...new Set(ids.filter(validId))];
    if (valid.length === 0) return 0;
    const ended = await this.#run(async (redis) => {
      const done = await Promise.all(valid.map((id) => this.#script(redis, DESTROY_SCRIPT, DESTROY_SHA, [this.#sessionKey(id)], [id])));
      const gone = valid.filter((_, i) => Number(done[i]) === 1);
      if (gone.length > 0) await redis.publish(this.#channel(), JSON.stringify({ from: this.#origin, ids: gone }));
      return gone;
    });
    if (ended.length > 0) this.#emit(ended);
    return ended.length;
  }

  /** {@inheritDoc SessionStore.find} */
  async find(query: SessionQuery): Promise<SessionEntry[]> {
    const indexKey = this.#indexKey(indexNameFor(query));
    return this.#run(async (redis) => {
      const ids = (await redis.smembers(indexKey)).filter(validId);
      if (ids.length === 0) return [];
      const pipeline = redis.pipeline();
      for (const id of ids) pipeline.hmget(this.#sessionKey(id), 'data', 'lastSeenAt');
      const replies = (await pipeline.exec()) ?? [];
      const now = this.#now();
      const out: SessionEntry[] = [];
      const dead: string[] = [];
      ids.forEach((id, i) => {
        const [err, fields] = replies[i] ?? [];
        if (err) throw err;
        const [json, lastSeenAt] = (fields ?? []) as Array<string | null>;
        if (json == null) return void dead.push(id);
        let data: SessionData;
        try {
          data = JSON.parse(json) as SessionData;
        } catch {
          return;
        }
        if (now >= data.expiresAt) return;
        if (lastSeenAt != null) data.lastSeenAt = Number(lastSeenAt);
        if (matchesQuery(data, query)) out.push({ id, data });
      });
      if (dead.length > 0) {
        const removed = await redis.srem(indexKey, ...dead);
        // Each expired session is counted once: when it leaves its company's set.
        if (query.tenant === undefined && query.sub === undefined && query.sid === undefined && removed > 0) this.#onExpired?.(removed);
      }
      return out;
    });
  }

  /** {@inheritDoc SessionStore.endWhere} */
  async endWhere(query: SessionQuery, filter?: (data: SessionData) => boolean): Promise<string[]> {
    const ids = (await this.find(query)).filter((e) => !filter || filter(e.data)).map((e) => e.id);
    if (ids.length === 0) return [];
    await this.destroyMany(ids);
    return ids;
  }

  /** {@inheritDoc SessionStore.onEnded} Subscribes to the channel on first use. */
  onEnded(listener: EndedListener): () => void {
    this.#listeners.add(listener);
    this.#subscribe();
    return () => {
      this.#listeners.delete(listener);
    };
  }

  #emit(ids: string[]): void {
    for (const listener of this.#listeners) {
      try {
        listener(ids);
      } catch (err) {
        this.#logger?.warn({ err }, 'a session end listener failed');
      }
    }
  }

  #subscribe(): void {
    if (this.#subscriber || this.#closed) return;
    const sub = this.#client.duplicate({ lazyConnect: false, enableOfflineQueue: true, maxRetriesPerRequest: null });
    this.#subscriber = sub;
    sub.on('error', (err: Error) => this.#logger?.warn({ err: err.message }, 'Redis session end subscription failed'));
    sub.on('message', (_channel: string, message: string) => {
      let parsed: { from?: unknown; ids?: unknown };
      try {
        parsed = JSON.parse(message) as { from?: unknown; ids?: unknown };
      } catch {
        return;
      }
      if (parsed.from === this.#origin || !Array.isArray(parsed.ids)) return;
      const ids = parsed.ids.filter(validId);
      if (ids.length > 0) this.#emit(ids);
    });
    sub.subscribe(this.#channel()).catch((err: Error) => this.#logger?.warn({ err: err.message }, 'Redis session end subscription failed'));
  }

  async #script(redis: Redis, script: string, sha: string, keys: string[], args: string[]): Promise<unknown> {
    try {
      return await redis.evalsha(sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error && err.message.startsWith('NOSCRIPT'))) throw err;
      return redis.eval(script, keys.length, ...keys, ...args);
    }
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
    this.#listeners.clear();
    const sub = this.#subscriber;
    if (sub) await sub.quit().catch(() => sub.disconnect());
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

  #indexKey(name: string): string {
    return `${this.#prefix}idx:${createHash('sha256').update(name).digest('base64url')}`;
  }

  #channel(): string {
    return `${this.#prefix}sessions:ended`;
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
