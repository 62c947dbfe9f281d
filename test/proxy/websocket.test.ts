/**
 * A websocket upgrade reaches the upstream with exactly the view an HTTP request gets:
 * gateway cookies removed, identity and X-Forwarded-* set by the gateway, client
 * identity headers dropped, an unsafe `redirect` removed. A real websocket upstream
 * records the handshake it received.
 */
import t from 'tap';
import type { IncomingHttpHeaders } from 'node:http';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import WebSocket, { WebSocketServer } from 'ws';
import { seedRouteTenants, startGateway, startUpstream } from '../helpers/gateway.js';
import { twoTenants } from '../helpers/two-tenants.js';

type Test = import('tap').Test;

interface Handshake {
  url: string;
  headers: IncomingHttpHeaders;
}

/** Adds a websocket echo server to an upstream; returns the handshakes it received. */
function recordHandshakes(t: Test, server: import('node:http').Server): Handshake[] {
  const seen: Handshake[] = [];
  const wss = new WebSocketServer({ server });
  wss.on('connection', (socket, req) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    socket.on('message', (data: Buffer) => socket.send(`echo:${data.toString('utf8')}`));
  });
  t.teardown(() => new Promise<void>((r) => {
    for (const c of wss.clients) c.terminate();
    wss.close(() => r());
  }));
  return seen;
}

/** Opens a websocket through the gateway, sends one message and returns the echo (or the refusal status). */
function roundTrip(port: number, path: string, headers: Record<string, string>): Promise<{ echo?: string; status?: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers, handshakeTimeout: 3000 });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('no websocket answer in time'));
    }, 4000);
    ws.on('open', () => ws.send('ping'));
    ws.on('message', (data) => {
      clearTimeout(timer);
      ws.close();
      resolve({ echo: (data as Buffer).toString('utf8') });
    });
    ws.on('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      res.resume();
      resolve({ status: res.statusCode ?? 0 });
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

const SPOOFED = {
  'x-auth-request-user': 'admin@globex.com',
  x_auth_request_groups: 'Admins',
  x_auth_request_admin: 'true',
  'x-auth_request-tenant': 'globex',
  'x-auth-request-jwt': 'forged',
  'x-forwarded-host': 'evil.example',
  x_forwarded_host: 'evil.example',
  'x-forwarded-proto': 'http',
  'x-real-ip': '6.6.6.6',
  'x-client-ip': '6.6.6.6',
  'remote-user': 'admin',
};

function checkNoSpoof(t: Test, h: IncomingHttpHeaders) {
  t.same(Object.keys(h).filter((k) => k.includes('_')), [], 'no underscore header');
  for (const k of ['x-real-ip', 'x-client-ip', 'remote-user']) t.equal(h[k], undefined, `no ${k}`);
  t.equal(h['x-forwarded-for'], '127.0.0.1', 'X-Forwarded-For is the client as the gateway saw it');
}

t.test('route mode: a websocket handshake gets the gateway forwarding headers and a clean query', async (t) => {
  const upstream = await startUpstream(t);
  const seen = recordHandshakes(t, upstream.server);
  const gw = await startGateway(t, { upstreams: { webapp: upstream.url } });
  await seedRouteTenants(gw.adminUrl);
  const r = await roundTrip(gw.publicPort, '/ws/events?redirect=https%3A%2F%2Fevil.example%2F&topic=1', { host: 'acme.ml.example.com', cookie: 'clearml_token_basic=t; theme=dark', ...SPOOFED });
  t.equal(r.echo, 'echo:ping', 'the socket relays');
  const h = seen.at(-1)!;
  t.equal(h.url, '/ws/events?topic=1', 'the unsafe redirect is removed, the rest of the query kept');
  t.equal(h.headers['x-forwarded-host'], 'acme.ml.example.com');
  t.equal(h.headers['x-forwarded-proto'], 'https');
  t.equal(h.headers.cookie, 'clearml_token_basic=t; theme=dark', "the webapp's cookies pass");
  t.same(Object.keys(h.headers).filter((k) => k.startsWith('x-auth-request')), [], 'no identity header in route mode');
  checkNoSpoof(t, h.headers);
});

t.test('authenticate mode: a websocket handshake carries the session identity, never the gateway cookie', async (t) => {
  const s = await twoTenants(t);
  const seen = recordHandshakes(t, s.upstream.server);
  const bob = await s.login('bob');
  const cookie = `${bob.browser.header()!}; theme=dark`;
  const r = await roundTrip(s.publicPort, '/ws?redirect=//evil.example&x=1', { host: 'acme.ml.example.com', cookie, ...SPOOFED });
  t.equal(r.echo, 'echo:ping', 'the socket relays');
  const h = seen.at(-1)!;
  t.equal(h.url, '/ws?x=1', 'the unsafe redirect is removed');
  t.equal(h.headers.cookie, 'theme=dark', "the gateway's session cookie is removed");
  t.match(h.headers, {
    'x-auth-request-user': 'bob@acme.com',
    'x-auth-request-email': 'bob@acme.com',
    'x-auth-request-subject': 'bob',
    'x-auth-request-tenant': 'acme',
    'x-auth-request-groups': 'Users',
    'x-auth-request-admin': 'false',
    'x-forwarded-host': 'acme.ml.example.com',
    'x-forwarded-proto': 'http',
  });
  const jwks = createRemoteJWKSet(new URL(`http://127.0.0.1:${s.publicPort}/.well-known/jwks.json`));
  const { payload } = await jwtVerify(String(h.headers['x-auth-request-jwt']), jwks, { issuer: 'http://ml.example.com', audience: 'http://acme.ml.example.com' });
  t.match(payload, { sub: 'bob', groups: ['Users'], admin: false }, 'with a signed assertion');
  checkNoSpoof(t, h.headers);

  const before = seen.length;
  const anon = await roundTrip(s.publicPort, '/ws', { host: 'acme.ml.example.com', ...SPOOFED });
  t.equal(anon.status, 401, 'without a session the upgrade is refused');
  t.equal(seen.length, before, 'and never reaches the upstream');
});
