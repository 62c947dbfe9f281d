/**
 * The behaviour every SessionStore must have. Each backend's test file calls
 * `runSessionStoreContract` with a factory for fresh stores.
 */
import type { Test } from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SessionData, SessionStore } from '../../src/session/types.js';

/** A clock the contract moves forward. */
export interface ContractClock {
  now(): number;
}

/** How the contract drives a backend. */
export interface ContractOptions {
  /**
   * True when the store reads time from the clock given to the factory: expiry is
   * then tested by moving the clock. Otherwise real time passes (about 2 seconds
   * in total), so the backend's own expiry is what is tested.
   */
  clockControlled: boolean;
}

/** Makes a fresh store; `clock` is the time the contract controls. */
export type StoreFactory = (clock: ContractClock) => SessionStore | Promise<SessionStore>;

function sampleSession(now: number, overrides: Partial<SessionData> = {}): SessionData {
  return {
    identity: {
      subject: 'user-1',
      email: 'ada@acme.com',
      name: 'Ada Lovelace',
      tenant: 'acme',
      groups: ['ml-engineers', 'viewers'],
      admin: true,
    },
    tenant: 'acme',
    company: 'company-acme',
    clientId: 'acme-web',
    idToken: 'header.payload.signature',
    accessToken: 'access-token-value',
    refreshToken: 'refresh-token-value',
    createdAt: now,
    lastSeenAt: now,
    expiresAt: now + 8 * 3600_000,
    ...overrides,
  };
}

const MALFORMED_IDS = [
  '',
  'x',
  '../../etc/passwd',
  'a'.repeat(42),
  'a'.repeat(44),
  `${'a'.repeat(42)}=`,
  `${'a'.repeat(42)}/`,
  'é'.repeat(43),
  'a'.repeat(100_000),
  '__proto__',
  'constructor',
];

/**
 * Runs the session store contract as a subtest named `name`.
 */
export function runSessionStoreContract(t: Test, name: string, makeStore: StoreFactory, options: ContractOptions) {
  return t.test(`session store contract: ${name}`, async (t) => {
    let time = Date.now();
    const clock: ContractClock = { now: () => time };
    /** Lets `ms` pass for the store: moves the clock, or waits for real. */
    const elapse = async (ms: number) => {
      if (!options.clockControlled) await sleep(ms);
      time += ms;
    };
    const fresh = async () => {
      const store = await makeStore(clock);
      t.teardown(() => store.close());
      return store;
    };

    t.test('a created session reads back as stored', async (t) => {
      const store = await fresh();
      const data = sampleSession(time);
      const id = await store.create(data, 60);
      t.same(await store.get(id), data);
    });

    t.test('ids are 256-bit base64url values, unique per session', async (t) => {
      const store = await fresh();
      const ids = new Set<string>();
      for (let i = 0; i < 50; i++) {
        const id = await store.create(sampleSession(time), 60);
        t.match(id, /^[A-Za-z0-9_-]{43}$/, 'id is 43 base64url characters');
        ids.add(id);
      }
      t.equal(ids.size, 50, 'every id differs, even for identical data');
      const all = [...ids].join('');
      t.ok(new Set(all).size > 40, 'ids use the whole alphabet, not a counter');
    });

    t.test('sessions are kept apart', async (t) => {
      const store = await fresh();
      const a = await store.create(sampleSession(time, { tenant: 'acme' }), 60);
      const b = await store.create(sampleSession(time, { tenant: 'globex', company: 'company-globex' }), 60);
      t.equal((await store.get(a))?.tenant, 'acme');
      t.equal((await store.get(b))?.tenant, 'globex');
      await store.destroy(a);
      t.equal(await store.get(a), undefined, 'destroyed');
      t.equal((await store.get(b))?.tenant, 'globex', 'the other session survives');
    });

    t.test('what get returns is a copy', async (t) => {
      const store = await fresh();
      const data = sampleSession(time);
      const id = await store.create(data, 60);
      data.identity.groups.push('added-after-create');
      const read = await store.get(id);
      t.ok(read);
      read!.identity.admin = false;
      read!.identity.groups.push('added-after-get');
      const again = await store.get(id);
      t.same(again?.identity.groups, ['ml-engineers', 'viewers']);
      t.equal(again?.identity.admin, true);
    });

    t.test('touch records activity and unknown ids stay unknown', async (t) => {
      const store = await fresh();
      const id = await store.create(sampleSession(time), 60);
      await store.touch(id, time + 5000, 60);
      t.equal((await store.get(id))?.lastSeenAt, time + 5000);
      const unknown = 'A'.repeat(43);
      await store.touch(unknown, time, 60);
      t.equal(await store.get(unknown), undefined, 'touch does not create a session');
      await store.destroy(unknown);
    });

    t.test('unknown and malformed ids read as undefined, and nothing throws', async (t) => {
      const store = await fresh();
      await store.create(sampleSession(time), 60);
      t.equal(await store.get('B'.repeat(43)), undefined);
      for (const id of MALFORMED_IDS) {
        t.equal(await store.get(id), undefined, `get ${JSON.stringify(id.slice(0, 50))}`);
        await store.touch(id, time, 60);
        await store.destroy(id);
      }
    });

    t.test('a session past its absolute expiresAt is not returned', async (t) => {
      const store = await fresh();
      const id = await store.create(sampleSession(time, { expiresAt: time + 500 }), 60);
      t.ok(await store.get(id), 'before expiresAt');
      const past = await store.create(sampleSession(time, { expiresAt: time - 1 }), 60);
      t.equal(await store.get(past), undefined, 'already past expiresAt');
      await elapse(600);
      t.equal(await store.get(id), undefined, 'after expiresAt, although its TTL runs');
    });

    t.test('TTL: sessions and single-use keys expire; touch extends a session', async (t) => {
      const store = await fresh();
      const idle = await store.create(sampleSession(time), 1);
      const active = await store.create(sampleSession(time), 1);
      t.equal(await store.consumeOnce('txn-expiring', 1), true);
      await elapse(600);
      await store.touch(active, time, 1);
      await elapse(600);
      t.equal(await store.get(idle), undefined, 'untouched session gone after its TTL');
      t.ok(await store.get(active), 'touched session still there 1.2 s after creation');
      t.equal(await store.consumeOnce('txn-expiring', 1), true, 'a key is forgotten after its TTL');
      await elapse(1100);
      t.equal(await store.get(active), undefined, 'touched session gone after its renewed TTL');
    });

    t.test('consumeOnce: true the first time, false after', async (t) => {
      const store = await fresh();
      t.equal(await store.consumeOnce('txn-1', 60), true);
      t.equal(await store.consumeOnce('txn-1', 60), false);
      t.equal(await store.consumeOnce('txn-1', 60), false);
      t.equal(await store.consumeOnce('txn-2', 60), true, 'other keys are independent');
      const results = await Promise.all(Array.from({ length: 10 }, () => store.consumeOnce('txn-race', 60)));
      t.equal(results.filter(Boolean).length, 1, 'exactly one of concurrent uses wins');
    });

    t.test('ping answers', async (t) => {
      const store = await fresh();
      await t.resolves(store.ping());
      t.type(store.kind, 'string');
    });
  });
}
