import t from 'tap';
import { MemorySessionStore } from '../../src/session/memory-store.js';
import type { SessionData } from '../../src/session/types.js';
import { runSessionStoreContract } from './session-contract.js';

await runSessionStoreContract(t, 'memory', (clock) => new MemorySessionStore({ now: clock.now }), {
  clockControlled: true,
});

t.test('past max, the least recently used session is dropped', async (t) => {
  const store = new MemorySessionStore({ max: 2 });
  const data = (subject: string): SessionData => ({
    identity: { subject, issuer: 'https://idp.example.com', tenant: 'acme', groups: [], admin: false },
    tenant: 'acme',
    company: 'c',
    clientId: 'web',
    createdAt: Date.now(),
    lastSeenAt: Date.now(),
    expiresAt: Date.now() + 60_000,
  });
  const a = await store.create(data('a'), 60);
  const b = await store.create(data('b'), 60);
  await store.get(a);
  const c = await store.create(data('c'), 60);
  t.equal((await store.get(a))?.identity.subject, 'a', 'recently read session kept');
  t.equal(await store.get(b), undefined, 'least recently used session dropped');
  t.equal((await store.get(c))?.identity.subject, 'c');
});
