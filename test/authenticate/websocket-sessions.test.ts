import t, { type Test } from 'tap';
import { WebSocket, WebSocketServer } from 'ws';
import { twoTenants } from '../helpers/two-tenants.js';

type Stack = Awaited<ReturnType<typeof twoTenants>>;

/** Opens a websocket through the gateway with a browser's cookies; resolves once the upstream echoed a message. */
async function openSocket(s: Stack, cookie: string | undefined, host = 'acme.ml.example.com') {
  const ws = new WebSocket(`ws://127.0.0.1:${s.publicPort}/socket`, { headers: { host, ...(cookie ? { cookie } : {}) } });
  const closed = new Promise<number>((resolve) => ws.once('close', () => resolve(Date.now())));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => ws.send('hi'));
    ws.once('message', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused with ${res.statusCode}`)));
  });
  return { ws, closed };
}

async function stackWithSockets(t: Test) {
  const s = await twoTenants(t);
  const wss = new WebSocketServer({ server: s.upstream.server });
  wss.on('connection', (socket) => socket.on('message', (m) => socket.send(m)));
  t.teardown(() => new Promise<void>((r) => wss.close(() => r())));
  return s;
}

/** Resolves with the close time, or rejects when the socket stays open longer than `ms`. */
function closedWithin(closed: Promise<number>, ms: number): Promise<number> {
  return Promise.race([closed, new Promise<number>((_, reject) => setTimeout(() => reject(new Error(`still open after ${ms} ms`)), ms))]);
}

t.test('a websocket opened under a session closes when the session ends at logout', async (t) => {
  const s = await stackWithSockets(t);
  const bob = await s.login('bob');
  const { closed } = await openSocket(s, bob.browser.header());
  const started = Date.now();
  t.equal((await s.req({ path: '/logout', host: 'acme.ml.example.com' }, bob.browser)).status, 302);
  const at = await closedWithin(closed, 2000);
  t.ok(at - started < 2000, `closed ${at - started} ms after the logout`);
});

t.test('a websocket closes when the admin API revokes its session', async (t) => {
  const s = await stackWithSockets(t);
  const bob = await s.login('bob');
  const alice = await s.login('alice');
  const bobs = await openSocket(s, bob.browser.header());
  const alices = await openSocket(s, alice.browser.header());
  const r = await s.call('sso.revoke_sessions', { company: 'c-acme', user: 'bob@acme.com' });
  t.equal(r.status, 200);
  await closedWithin(bobs.closed, 2000);
  t.pass("bob's socket closed");
  t.equal(alices.ws.readyState, WebSocket.OPEN, "alice's socket stays open");
  alices.ws.close();
});

t.test("a websocket closes within 2 s when its tenant's provider is deleted", async (t) => {
  const s = await stackWithSockets(t);
  const gina = await s.login('gina', { host: 'globex.ml.example.com', tenant: 'globex' });
  const { closed } = await openSocket(s, gina.browser.header(), 'globex.ml.example.com');
  const started = Date.now();
  await s.call('sso.delete_provider_configuration', { company: 'c-globex', id: 'c-globex' });
  const at = await closedWithin(closed, 2500);
  t.ok(at - started <= 2500, `closed ${at - started} ms after the provider was deleted`);
});
