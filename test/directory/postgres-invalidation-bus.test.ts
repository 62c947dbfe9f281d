import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import t from 'tap';
import type { InvalidationHandlers } from '../../src/directory/invalidation-bus.js';
import {
  invalidationPayloads,
  MAX_PAYLOAD_BYTES,
  PostgresInvalidationBus,
} from '../../src/directory/postgres-invalidation-bus.js';
import type { PostgresInvalidationBusOptions } from '../../src/directory/postgres-invalidation-bus.js';
import { PG_URL, postgresReachable } from '../helpers/services.js';

type Test = import('tap').Test;


/** Handlers that record what they are given. */
function recorder(): InvalidationHandlers & { keys: string[]; batches: number; resets: number } {
  const rec = {
    keys: [] as string[],
    batches: 0,
    resets: 0,
    onKeys(keys: string[]) {
      rec.keys.push(...keys);
      rec.batches++;
    },
    onReset() {
      rec.resets++;
    },
  };
  return rec;
}

async function until(what: string, condition: () => boolean, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(10);
  }
  return Date.now() - started;
}

const silentLogger = { info: () => undefined, warn: () => undefined };

if (!(await postgresReachable())) {
  const { hostname, port } = new URL(PG_URL);
  t.plan(0, `PostgreSQL not reachable at ${hostname}:${port || 5432}: postgres suites skipped`);
} else {
  const schema = `tg_test_${randomBytes(5).toString('hex')}`;

  async function startBus(
    t: Test,
    options: Partial<PostgresInvalidationBusOptions> = {},
  ): Promise<{ bus: PostgresInvalidationBus; seen: ReturnType<typeof recorder> }> {
    const bus = new PostgresInvalidationBus({ url: PG_URL, schema, logger: silentLogger, ...options });
    t.teardown(() => bus.close());
    const seen = recorder();
    await bus.start(seen);
    return { bus, seen };
  }

  t.test('keys published by one replica reach the other within a second, not the sender', async (t) => {
    const a = await startBus(t);
    const b = await startBus(t);
    t.ok(a.bus.connected && b.bus.connected, 'both listen');
    t.equal(b.seen.resets, 1, 'onReset is called once listening');

    await a.bus.publish(['t:acme', 'd:acme.com']);
    const took = await until('B receives', () => b.seen.keys.length === 2, 1000);
    t.strictSame(b.seen.keys, ['t:acme', 'd:acme.com'], `B received the keys (${took} ms)`);
    await b.bus.publish(['h:ml.beta.com']);
    await until('A receives', () => a.seen.keys.length === 1, 1000);
    await sleep(200);
    t.strictSame(a.seen.keys, ['h:ml.beta.com'], 'A heard B, never itself');
    t.strictSame(b.seen.keys, ['t:acme', 'd:acme.com'], 'B did not hear itself');
    await a.bus.publish([]);
  });

  t.test('many keys are split over several notifications and all arrive', async (t) => {
    const a = await startBus(t);
    const b = await startBus(t);
    const keys = Array.from({ length: 2500 }, (_, i) => `c:client-${i}-${'x'.repeat(20)}`);
    await a.bus.publish(keys);
    await until('all keys arrive', () => b.seen.keys.length >= keys.length, 3000);
    t.strictSame(b.seen.keys, keys, 'every key, in order');
    t.ok(b.seen.batches > 1, `in ${b.seen.batches} notifications`);

    const resetsBefore = b.seen.resets;
    await a.bus.publish(['t:small', `c:${'y'.repeat(MAX_PAYLOAD_BYTES)}`]);
    await until('a reset for the oversized key', () => b.seen.resets > resetsBefore, 1000);
    t.ok(b.seen.keys.includes('t:small'), 'the keys that fit are sent as keys');
  });

  t.test('payloads stay under the notification limit', async (t) => {
    const keys = Array.from({ length: 900 }, (_, i) => `d:ünïcødé-${i}.example`);
    const payloads = invalidationPayloads('origin', keys);
    t.ok(payloads.length > 1);
    t.ok(payloads.every((p) => Buffer.byteLength(p) <= MAX_PAYLOAD_BYTES), 'each at most MAX_PAYLOAD_BYTES');
    t.strictSame(payloads.flatMap((p) => (JSON.parse(p) as { keys: string[] }).keys), keys);
  });

  t.test('directories in different schemas do not hear each other', async (t) => {
    const a = await startBus(t);
    const other = await startBus(t, { schema: `${schema}_other` });
    const same = await startBus(t);
    t.not(a.bus.channel, other.bus.channel, 'the channel is scoped by schema');
    await a.bus.publish(['t:acme']);
    await until('same schema receives', () => same.seen.keys.length === 1, 1000);
    await sleep(200);
    t.strictSame(other.seen.keys, [], 'the other schema received nothing');
  });

  t.test('a dropped listener reconnects by itself and resets the cache', async (t) => {
    const appName = `tg-test-${randomBytes(4).toString('hex')}`;
    const a = await startBus(t);
    const b = await startBus(t, { url: `${PG_URL}?application_name=${appName}` });
    t.equal(b.seen.resets, 1);

    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    t.teardown(() => admin.end());
    const { rows } = await admin.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'`,
      [appName],
    );
    t.equal(rows.length, 1, 'B has one listening backend');
    await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);

    await until('B notices', () => !b.bus.connected, 1000);
    t.pass('B reports itself disconnected');
    await a.bus.publish(['t:missed']);
    const took = await until('B is back', () => b.bus.connected && b.seen.resets === 2, 3000);
    t.pass(`B reconnected and called onReset (${took} ms after noticing)`);
    t.notOk(b.seen.keys.includes('t:missed'), 'what was sent meanwhile is covered by the reset, not replayed');

    await a.bus.publish(['t:after']);
    await until('B receives again', () => b.seen.keys.includes('t:after'), 1000);
    t.pass('B receives keys again');
  });

  t.test('a listener that silently stops answering is replaced after a failed heartbeat', async (t) => {
    const target = new URL(PG_URL);
    const pairs: [net.Socket, net.Socket][] = [];
    const proxy = net.createServer((inbound) => {
      const outbound = net.connect(Number(target.port || 5432), target.hostname);
      pairs.push([inbound, outbound]);
      inbound.pipe(outbound).pipe(inbound);
      inbound.on('error', () => outbound.destroy());
      outbound.on('error', () => inbound.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    t.teardown(() => {
      for (const pair of pairs) for (const s of pair) s.destroy();
      proxy.close();
    });
    const { port } = proxy.address() as net.AddressInfo;
    const via = new URL(PG_URL);
    via.hostname = '127.0.0.1';
    via.port = String(port);

    const a = await startBus(t);
    const b = await startBus(t, { url: via.toString(), heartbeatMs: 200, connectTimeoutMs: 300 });
    t.ok(b.bus.connected);
    for (const [inbound, outbound] of pairs) {
      inbound.unpipe(outbound);
      outbound.unpipe(inbound);
    }

    await until('B gives up on the silent connection', () => !b.bus.connected, 2000);
    await until('B listens again on a new connection', () => b.bus.connected && b.seen.resets === 2, 3000);
    await a.bus.publish(['t:after-partition']);
    await until('B receives again', () => b.seen.keys.includes('t:after-partition'), 1000);
    t.pass('B recovered from a connection that stopped answering');
  });

  t.test('without PostgreSQL: start and publish return, nothing throws, and it connects later', async (t) => {
    const silent = net.createServer(() => undefined);
    const sockets = new Set<net.Socket>();
    silent.on('connection', (s) => sockets.add(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    t.teardown(() => {
      for (const s of sockets) s.destroy();
      silent.close();
    });
    const { port } = silent.address() as net.AddressInfo;

    const hung = await startBus(t, { url: `postgres://postgres@127.0.0.1:${port}/test`, connectTimeoutMs: 300 });
    t.equal(hung.bus.connected, false, 'a server that never answers: not connected');
    const started = Date.now();
    await hung.bus.publish(['t:acme']);
    t.ok(Date.now() - started < 2000, 'publish gave up after connectTimeoutMs');

    const freePort = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const refused = await startBus(t, { url: `postgres://postgres@127.0.0.1:${freePort}/test`, connectTimeoutMs: 300 });
    t.equal(refused.bus.connected, false, 'a closed port: not connected');
    await t.resolves(refused.bus.publish(['t:acme']), 'publish resolves');
    t.equal(refused.seen.resets, 0, 'no reset before the first connection');

    const target = new URL(PG_URL);
    const proxy = net.createServer((inbound) => {
      const outbound = net.connect(Number(target.port || 5432), target.hostname);
      sockets.add(inbound).add(outbound);
      inbound.pipe(outbound).pipe(inbound);
      inbound.on('error', () => outbound.destroy());
      outbound.on('error', () => inbound.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(freePort, '127.0.0.1', resolve));
    t.teardown(() => proxy.close());
    await until('connected once the server is up', () => refused.bus.connected, 4000);
    t.equal(refused.seen.resets, 1, 'onReset after the first connection');
    await refused.bus.close();
    await refused.bus.close();
    t.equal(refused.bus.connected, false, 'closed');
  });
}
