import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import t from 'tap';
import { StoreUnavailableError } from '../../src/errors.js';
import { redisClientOptions, RedisSessionStore } from '../../src/session/redis-store.js';
import type { SessionData } from '../../src/session/types.js';
import { runSessionStoreContract } from './session-contract.js';
import { REDIS_URL, redisReachable } from '../helpers/services.js';

type Test = import('tap').Test;


async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (e: unknown) => e,
  );
}

function session(overrides: Partial<SessionData> = {}): SessionData {
  const now = Date.now();
  return {
    identity: { subject: 'user-1', issuer: 'https://idp.example.com', email: 'ada@acme.com', tenant: 'acme', groups: ['viewers'], admin: false },
    tenant: 'acme',
    company: 'company-acme',
    clientId: 'acme-web',
    idToken: 'header.payload.signature',
    createdAt: now,
    lastSeenAt: now,
    expiresAt: now + 3600_000,
    ...overrides,
  };
}

/** A loopback TCP proxy to `port` that can be cut and restored. */
async function proxyTo(t: Test, port: number): Promise<{ port: number; cut(): Promise<void>; restore(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    const outbound = net.connect(port, '127.0.0.1');
    sockets.add(inbound).add(outbound);
    inbound.pipe(outbound).pipe(inbound);
    inbound.on('error', () => outbound.destroy());
    outbound.on('error', () => inbound.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const own = (server.address() as net.AddressInfo).port;
  const cut = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
      sockets.clear();
    });
  t.teardown(cut);
  return {
    port: own,
    cut,
    restore: () => new Promise<void>((resolve) => server.listen(own, '127.0.0.1', resolve)),
  };
}

if (!(await redisReachable())) {
  const { hostname, port } = new URL(REDIS_URL);
  t.plan(0, `Redis not reachable at ${hostname}:${port || 6379}: redis suites skipped`);
} else {
  const prefix = `tg-test:${randomBytes(6).toString('hex')}:`;
  const raw = new Redis(REDIS_URL);
  t.teardown(async () => {
    let cursor = '0';
    do {
      const [next, keys] = await raw.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      if (keys.length > 0) await raw.del(...keys);
      cursor = next;
    } while (cursor !== '0');
    await raw.quit();
  });

  const open = (t: Test): RedisSessionStore => {
    const store = new RedisSessionStore({ url: REDIS_URL, keyPrefix: prefix });
    t.teardown(() => store.close());
    return store;
  };

  await runSessionStoreContract(t, 'redis', (clock, space) => new RedisSessionStore({ url: REDIS_URL, keyPrefix: `${prefix}${space}:`, now: clock.now }), {
    clockControlled: false,
    shared: true,
  });

  t.test('index sets expire with their sessions, and lookups drop ids of expired sessions', async (t) => {
    let now = Date.now();
    const expired: number[] = [];
    const store = new RedisSessionStore({ url: REDIS_URL, keyPrefix: prefix, now: () => now, onExpired: (n) => expired.push(n) });
    t.teardown(() => store.close());
    const company = `c-${randomBytes(4).toString('hex')}`;
    const id = await store.create(session({ company, sid: 'x', expiresAt: now + 600 }), 60);
    const short = await store.create(session({ company }), 0.3);
    const sets = (await raw.keys(`${prefix}idx:*`)).filter((k) => k.length > 0);
    t.ok(sets.length >= 4, 'index sets exist');
    const ttls = await Promise.all(sets.map((k) => raw.pttl(k)));
    t.ok(ttls.every((ms) => ms > 0), 'every index set has a TTL');
    await sleep(400);
    t.same((await store.find({ company })).map((e) => e.id), [id], 'the idle-expired session is not found');
    t.same(expired, [1], 'and counted once as expired');
    t.same((await store.find({ company })).map((e) => e.id), [id]);
    t.same(expired, [1], 'not twice');
    t.notOk((await store.find({ company })).some((e) => e.id === short));
    now += 1000;
    t.same(await store.find({ company }), [], 'past expiresAt by the injected clock: not found');
    t.equal(await store.get(id), undefined, 'nor read');
  });

  t.test('sessions and single-use keys live under the prefix, each with a TTL', async (t) => {
    const store = open(t);
    const id = await store.create(session(), 60);
    const ttl = await raw.pttl(`${prefix}session:${id}`);
    t.ok(ttl > 55_000 && ttl <= 60_000, `the session expires in Redis (${ttl} ms)`);
    await store.consumeOnce('state-value', 30);
    const once = await raw.keys(`${prefix}once:*`);
    t.ok(once.length >= 1, 'the single-use key is under the prefix');
    t.notOk(once.some((k) => k.includes('state-value')), 'the key itself is not stored in clear');
    const ttls = await Promise.all(once.map((k) => raw.pttl(k)));
    t.ok(ttls.every((ms) => ms > 0 && ms <= 60_000), 'every single-use key expires');
  });

  t.test('touch keeps the data and never extends a session past expiresAt', async (t) => {
    const store = open(t);
    const data = session({ expiresAt: Date.now() + 700 });
    const id = await store.create(data, 60);
    t.ok((await raw.pttl(`${prefix}session:${id}`)) <= 700, 'create caps the TTL at expiresAt');
    await store.touch(id, data.lastSeenAt + 100, 60);
    t.ok((await raw.pttl(`${prefix}session:${id}`)) <= 700, 'touch caps the TTL at expiresAt');
    t.strictSame(await store.get(id), { ...data, lastSeenAt: data.lastSeenAt + 100 }, 'everything else is kept');
    await sleep(800);
    t.equal(await store.get(id), undefined, 'gone at expiresAt although touched with a long TTL');
    t.equal(await raw.exists(`${prefix}session:${id}`), 0, 'and gone from Redis');

    const destroyed = await store.create(session(), 60);
    await store.destroy(destroyed);
    await store.touch(destroyed, Date.now(), 60);
    t.equal(await raw.exists(`${prefix}session:${destroyed}`), 0, 'touch does not bring back a destroyed session');
  });

  t.test('a store over an injected client leaves it open on close', async (t) => {
    const client = new Redis(REDIS_URL, redisClientOptions());
    t.teardown(() => client.quit());
    const store = new RedisSessionStore({ client, keyPrefix: prefix });
    const id = await store.create(session(), 60);
    t.equal((await store.get(id))?.tenant, 'acme');
    await store.close();
    t.equal(await client.ping(), 'PONG', 'the client still works');
    t.ok((await rejection(store.get(id))) instanceof StoreUnavailableError, 'the store does not');
  });

  t.test('after close, calls reject with StoreUnavailableError', async (t) => {
    const store = open(t);
    const id = await store.create(session(), 60);
    await store.close();
    await store.close();
    t.ok((await rejection(store.get(id))) instanceof StoreUnavailableError, 'get');
    t.ok((await rejection(store.create(session(), 60))) instanceof StoreUnavailableError, 'create');
    t.ok((await rejection(store.ping())) instanceof StoreUnavailableError, 'ping');
  });

  t.test('Redis unreachable: calls fail fast with StoreUnavailableError', async (t) => {
    const silent = net.createServer(() => undefined);
    const sockets = new Set<net.Socket>();
    silent.on('connection', (s) => sockets.add(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    t.teardown(() => {
      for (const s of sockets) s.destroy();
      silent.close();
    });
    const hungPort = (silent.address() as net.AddressInfo).port;
    const freePort = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });

    for (const [what, port] of [['a closed port', freePort], ['a server that never answers', hungPort]] as const) {
      const store = new RedisSessionStore({ url: `redis://127.0.0.1:${port}`, keyPrefix: prefix, connectTimeoutMs: 300 });
      t.teardown(() => store.close());
      const started = Date.now();
      const id = 'A'.repeat(43);
      t.ok((await rejection(store.get(id))) instanceof StoreUnavailableError, `${what}: get rejects`);
      t.ok((await rejection(store.create(session(), 60))) instanceof StoreUnavailableError, `${what}: create rejects`);
      t.ok((await rejection(store.consumeOnce('k', 60))) instanceof StoreUnavailableError, `${what}: consumeOnce rejects`);
      t.ok((await rejection(store.touch(id, 1, 60))) instanceof StoreUnavailableError, `${what}: touch rejects`);
      t.ok((await rejection(store.ping())) instanceof StoreUnavailableError, `${what}: ping rejects`);
      t.ok(Date.now() - started < 2500, `${what}: within ${Date.now() - started} ms`);
      t.equal(await store.get('malformed'), undefined, `${what}: a malformed id is still just unknown`);
    }
  });

  t.test('Redis lost mid-life: calls fail fast, and work again once it is back', async (t) => {
    const proxy = await proxyTo(t, Number(new URL(REDIS_URL).port || 6379));
    const store = new RedisSessionStore({ url: `redis://127.0.0.1:${proxy.port}`, keyPrefix: prefix, connectTimeoutMs: 500 });
    t.teardown(() => store.close());
    const id = await store.create(session(), 60);

    await proxy.cut();
    await sleep(50);
    const started = Date.now();
    t.ok((await rejection(store.get(id))) instanceof StoreUnavailableError, 'get rejects');
    t.ok((await rejection(store.consumeOnce('k2', 60))) instanceof StoreUnavailableError, 'consumeOnce rejects');
    t.ok(Date.now() - started < 1000, `without waiting for a reconnect (${Date.now() - started} ms)`);

    await proxy.restore();
    const back = Date.now();
    for (;;) {
      const read = await store.get(id).catch(() => undefined);
      if (read) break;
      if (Date.now() - back > 4000) {
        t.fail('the store did not come back');
        return;
      }
      await sleep(50);
    }
    t.pass(`the session is read again after Redis returned (${Date.now() - back} ms)`);
  });
}
