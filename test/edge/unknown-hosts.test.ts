import t from 'tap';
import { CachedDirectory } from '../../src/directory/cached-directory.js';
import type { TenantRecord, TenantStore } from '../../src/directory/types.js';
import { TooManyLookupsError } from '../../src/errors.js';
import { pieceStrings } from '../helpers/generated.js';
import { startGateway } from '../helpers/gateway.js';

/** A store that answers at once and counts its queries of real and of unknown tenants. */
function instantStore(real: Set<string>) {
  const calls = { real: 0, unknown: 0 };
  const record = (id: string): TenantRecord => ({
    company: { company: `c-${id}`, sso: { tenant: id, group_mapping: {}, admin_groups: [], groups: [], domains: [], hosts: [] } },
    providers: [],
  });
  const find = async (id: string) => {
    const known = real.has(id.toLowerCase());
    if (known) calls.real++;
    else calls.unknown++;
    return known ? record(id) : undefined;
  };
  const store = {
    kind: 'instant',
    findTenant: find,
    findTenantByHost: async (h: string) => (await find(h)) && h,
    findTenantByDomain: async () => undefined,
    findClient: async () => undefined,
  } as unknown as TenantStore;
  return { store, calls };
}

t.test('100,000 random hosts do not lower the hit ratio of 1,000 real tenants below 99%', async (t) => {
  const real = Array.from({ length: 1000 }, (_, i) => `tenant-${i}`);
  const { store, calls } = instantStore(new Set(real));
  const clock = { now: 1_000_000 };
  const dir = new CachedDirectory(store, { max: 10_000, negativeMax: 10_000, ttlMs: 60_000, negativeTtlMs: 5_000, staleMs: 300_000, now: () => clock.now });
  for (const id of real) await dir.tenant(id);
  const warm = calls.real;
  const randomName = pieceStrings('abcdefghijklmnopqrstuvwxyz0123456789'.split(''), 14, 24);
  let realLookups = 0;
  for (let i = 0; i < 100_000; i++) {
    await dir.tenant(`x-${i}-${randomName()}`);
    if (i % 10 === 0) {
      await dir.tenant(real[(i / 10) % real.length]!);
      realLookups++;
    }
  }
  const misses = calls.real - warm;
  const ratio = 1 - misses / realLookups;
  t.ok(ratio >= 0.99, `real tenants: ${realLookups} lookups, ${misses} store queries, hit ratio ${(ratio * 100).toFixed(2)}%`);
  t.ok(calls.unknown >= 99_000, 'the random hosts were looked up (no client given: no budget)');
  t.ok(dir.negativeSize <= 10_000, `"not found" answers stay bounded (${dir.negativeSize})`);
});

t.test('unknown-name lookups are coalesced and limited per client', async (t) => {
  const { store, calls } = instantStore(new Set(['acme']));
  const clock = { now: 1_000_000 };
  const dir = new CachedDirectory(store, { max: 100, ttlMs: 60_000, negativeTtlMs: 5_000, staleMs: 0, unknownPerMinute: 30, now: () => clock.now });
  await Promise.all(Array.from({ length: 100 }, () => dir.tenant('nobody', { client: '10.0.0.1' })));
  t.equal(calls.unknown, 1, '100 concurrent lookups of one unknown name: one store query');
  let refused = 0;
  for (let i = 0; i < 100; i++) {
    try {
      await dir.tenant(`random-${i}`, { client: '10.0.0.1' });
    } catch (err) {
      if (err instanceof TooManyLookupsError) refused++;
      else throw err;
    }
  }
  t.equal(calls.unknown, 30, 'the client gets 30 store lookups of unknown names per minute');
  t.equal(refused, 71, 'the rest are refused without one');
  t.equal(await dir.tenant('other-unknown', { client: '10.0.0.2' }), undefined, 'another client is not held back');
  t.ok(await dir.tenant('acme', { client: '10.0.0.2' }), 'and finds a real tenant');
  t.ok(await dir.tenant('acme', { client: '10.0.0.1' }), 'which the limited client gets from the cache');
  clock.now += 60_000;
  t.equal(await dir.tenant('later', { client: '10.0.0.1' }), undefined, 'the budget refills');
});

t.test('a client flooding random hosts gets 429 with Retry-After; another client still gets answers', async (t) => {
  const { publicPort } = await startGateway(t, { cache: { unknownPerClientPerMinute: 20 } });
  const get = async (host: string, localAddress = '127.0.0.1') => {
    const http = await import('node:http');
    return new Promise<{ status: number; retryAfter: string | undefined }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: publicPort, path: '/', headers: { host }, localAddress, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] }));
      });
      req.on('error', reject);
      req.end();
    });
  };
  const statuses: number[] = [];
  for (let i = 0; i < 40; i++) statuses.push((await get(`r${i}.ml.example.com`)).status);
  t.equal(statuses.filter((s) => s === 421).length, 20, 'the first 20 unknown hosts are looked up: 421');
  const limited = await get('r-more.ml.example.com');
  t.equal(limited.status, 429, 'then 429');
  t.ok(Number(limited.retryAfter) >= 1, 'with Retry-After');
  t.equal((await get('r0.ml.example.com')).status, 421, 'a remembered unknown host costs nothing');
  t.equal((await get('r-other.ml.example.com', '127.0.0.2')).status, 421, 'another client is still answered');
});
