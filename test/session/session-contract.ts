/**
 * The behaviour every SessionStore must have. Each backend's test file calls
 * `runSessionStoreContract` with a factory for fresh stores.
 */
import type { Test } from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SessionData, SessionStore } from '../../src/session/types.js';

/** A clock the contract moves forward. */
interface ContractClock {
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
  /** True when stores made by the factory share their sessions (e.g. one Redis): ending on one is heard on the others. */
  shared?: boolean;
}

/**
 * Makes a fresh store; `clock` is the time the contract controls. Stores made with
 * the same `space` share their sessions (when the backend can); each subtest uses a
 * space of its own, so that index lookups see only its sessions.
 */
export type StoreFactory = (clock: ContractClock, space: string) => SessionStore | Promise<SessionStore>;

function sampleSession(now: number, overrides: Partial<SessionData> = {}): SessionData {
  return {
    identity: {
      subject: 'user-1',
      issuer: 'https://idp.example.com',
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
    let spaces = 0;
    const fresh = async (space = `s${spaces++}`) => {
      const store = await makeStore(clock, space);
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

    t.test('the index finds sessions by company, tenant, (tenant, sub) and (tenant, sid)', async (t) => {
      const store = await fresh();
      const ada = await store.create(sampleSession(time, { sid: 'sid-ada' }), 60);
      const ada2 = await store.create(sampleSession(time, { sid: 'sid-ada-2', clientId: 'acme-cli', providerId: 'cli' }), 60);
      const bob = await store.create(sampleSession(time, { identity: { subject: 'user-2', issuer: 'https://idp.example.com', tenant: 'acme', groups: [], admin: false } }), 60);
      const gina = await store.create(
        sampleSession(time, { tenant: 'globex', company: 'company-globex', sid: 'sid-ada', identity: { subject: 'user-1', issuer: 'https://idp.example.com', tenant: 'globex', groups: [], admin: false } }),
        60,
      );
      const ids = async (q: Parameters<typeof store.find>[0]) => (await store.find(q)).map((e) => e.id).sort();
      t.same(await ids({ company: 'company-acme' }), [ada, ada2, bob].sort(), 'by company');
      t.same(await ids({ tenant: 'ACME' }), [ada, ada2, bob].sort(), 'by tenant, case-insensitively');
      t.same(await ids({ tenant: 'acme', sub: 'user-1' }), [ada, ada2].sort(), 'by (tenant, sub): not the same subject in another tenant');
      t.same(await ids({ tenant: 'acme', sid: 'sid-ada' }), [ada], 'by (tenant, sid): not the same sid in another tenant');
      t.same(await ids({ tenant: 'acme', sub: 'user-1', clientId: 'acme-cli' }), [ada2], 'narrowed to one provider');
      t.same(await ids({ tenant: 'acme', sid: 'sid-ada', sub: 'user-2' }), [], 'sid and sub must both match');
      t.same(await ids({ tenant: 'globex', sub: 'user-1' }), [gina]);
      t.same(await ids({ tenant: 'initech' }), [], 'unknown tenant: nothing');
      const [found] = await store.find({ tenant: 'acme', sid: 'sid-ada' });
      t.same(found?.data, sampleSession(time, { sid: 'sid-ada' }), 'the session data comes with its id');
      found!.data.identity.groups.push('changed');
      t.same((await store.get(ada))?.identity.groups, ['ml-engineers', 'viewers'], 'find returns copies');
      await store.destroy(ada);
      t.same(await ids({ tenant: 'acme', sid: 'sid-ada' }), [], 'a destroyed session leaves the index');
      t.same(await ids({ company: 'company-acme' }), [ada2, bob].sort());
    });

    t.test('endWhere and destroyMany end exactly the matching sessions and tell onEnded listeners', async (t) => {
      const store = await fresh();
      const heard: string[][] = [];
      const stop = store.onEnded((ids) => heard.push([...ids].sort()));
      const a = await store.create(sampleSession(time, { sid: 's-a' }), 60);
      const b = await store.create(sampleSession(time, { sid: 's-b' }), 60);
      const c = await store.create(sampleSession(time, { identity: { subject: 'user-2', issuer: 'https://idp.example.com', tenant: 'acme', groups: [], admin: false } }), 60);
      const other = await store.create(sampleSession(time, { tenant: 'globex', company: 'company-globex' }), 60);
      t.same(await store.endWhere({ tenant: 'acme', sid: 's-a' }), [a], 'by sid: one session');
      t.equal(await store.get(a), undefined);
      t.ok(await store.get(b), 'the same user\'s other session survives a sid logout');
      t.same((await store.endWhere({ tenant: 'acme', sub: 'user-1' })).sort(), [b], 'by sub: the rest of that user');
      t.same(await store.endWhere({ company: 'company-acme' }, (d) => d.identity.subject === 'nobody'), [], 'the filter decides');
      t.ok(await store.get(c));
      t.equal(await store.destroyMany([c, other, 'A'.repeat(43), 'malformed']), 2, 'destroyMany counts live sessions only');
      t.equal(await store.get(other), undefined);
      t.same(heard, [[a], [b], [c, other].sort()], 'listeners heard every ending, once');
      stop();
      const d = await store.create(sampleSession(time), 60);
      await store.destroy(d);
      t.equal(heard.length, 3, 'a removed listener hears nothing');
    });

    t.test('expiry cleans the index', async (t) => {
      const store = await fresh();
      const idle = await store.create(sampleSession(time, { sid: 's-idle' }), 1);
      const abs = await store.create(sampleSession(time, { sid: 's-abs', expiresAt: time + 500 }), 60);
      t.equal((await store.find({ tenant: 'acme' })).length, 2);
      await elapse(1100);
      t.same(await store.find({ tenant: 'acme' }), [], 'expired sessions are not found');
      t.same(await store.find({ tenant: 'acme', sid: 's-idle' }), []);
      t.same(await store.find({ company: 'company-acme' }), []);
      t.same(await store.endWhere({ tenant: 'acme' }), [], 'nor ended');
      t.equal(await store.get(idle), undefined);
      t.equal(await store.get(abs), undefined);
    });

    t.test('concurrent logout and login of the same user: the new session stays findable', async (t) => {
      const store = await fresh();
      for (let round = 0; round < 20; round++) {
        const sub = `racer-${round}`;
        const identity = { subject: sub, issuer: 'https://idp.example.com', tenant: 'acme', groups: [], admin: false };
        const old = await store.create(sampleSession(time, { identity }), 60);
        const [ended, fresh] = await Promise.all([
          store.endWhere({ tenant: 'acme', sub }),
          store.create(sampleSession(time, { identity }), 60),
        ]);
        t.equal(await store.get(old), undefined, `round ${round}: the old session ended`);
        const live = (await store.get(fresh)) !== undefined;
        t.equal(live, !ended.includes(fresh), `round ${round}: the new session is live unless it was among those ended`);
        const found = (await store.find({ tenant: 'acme', sub })).map((e) => e.id);
        t.same(found, live ? [fresh] : [], `round ${round}: the index agrees with the store`);
        await store.endWhere({ tenant: 'acme', sub });
      }
    });

    if (options.shared) {
      t.test('an ending on one store is heard by every store sharing the sessions, within a second', async (t) => {
        const one = await fresh('shared');
        const two = await fresh('shared');
        const heard: string[] = [];
        two.onEnded((ids) => heard.push(...ids));
        await new Promise((r) => setTimeout(r, 100));
        const id = await one.create(sampleSession(time, { sid: 'shared' }), 60);
        t.ok(await two.get(id), 'both read the session');
        const started = Date.now();
        await one.endWhere({ tenant: 'acme', sid: 'shared' });
        t.equal(await two.get(id), undefined, 'gone for the other store at once');
        while (heard.length === 0 && Date.now() - started < 1000) await new Promise((r) => setTimeout(r, 10));
        t.same(heard, [id], `the other store's listener heard it (${Date.now() - started} ms)`);
      });
    }

    t.test('ping answers', async (t) => {
      const store = await fresh();
      await t.resolves(store.ping());
      t.type(store.kind, 'string');
    });
  });
}
