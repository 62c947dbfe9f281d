import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import t from 'tap';
import { Agent } from 'undici';
import { FairShare } from '../../src/proxy/fair-share.js';
import { seedRouteTenants, startGateway } from '../helpers/gateway.js';
import { twoTenants } from '../helpers/two-tenants.js';

type Test = import('tap').Test;

/** An upstream that answers GETs at once and reads uploads forever, counting them. */
async function holdingUpstream(t: Test) {
  const state = { uploads: 0, uploadsClosed: 0 };
  const server = http.createServer((req, res) => {
    if (req.method === 'GET') {
      req.resume();
      res.end('ok');
      return;
    }
    state.uploads++;
    req.on('data', () => {});
    req.on('close', () => state.uploadsClosed++);
    req.on('end', () => res.end('stored'));
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, state };
}

/**
 * `count` uploads announcing 1,000,000 bytes and sending one byte every 2 s, spread over
 * the given source addresses; counts the answers they get (429s come back at once).
 */
function trickle(t: Test, port: number, count: number, opts: { host: string; from: string[]; cookie?: string }) {
  const sockets: net.Socket[] = [];
  const answers = { total: 0, byStatus: new Map<number, number>() };
  for (let i = 0; i < count; i++) {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: opts.from[i % opts.from.length]! });
    s.on('error', () => {});
    let seen = '';
    s.on('data', (c: Buffer) => {
      if (seen.length > 20) return;
      seen += c.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(seen);
      if (m) {
        answers.total++;
        answers.byStatus.set(Number(m[1]), (answers.byStatus.get(Number(m[1])) ?? 0) + 1);
        seen = 'x'.repeat(21);
      }
    });
    s.write(
      `POST /upload-${i} HTTP/1.1\r\nHost: ${opts.host}\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n${opts.cookie ? `Cookie: ${opts.cookie}\r\n` : ''}\r\nx`,
    );
    sockets.push(s);
  }
  const drip = setInterval(() => {
    for (const s of sockets) if (!s.destroyed) s.write('x');
  }, 2000);
  t.teardown(() => {
    clearInterval(drip);
    for (const s of sockets) s.destroy();
  });
  return answers;
}

async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
}

/** 50 GETs in a row from another address; each must be answered with 200 in under a second. */
async function fiftyQuickGets(t: Test, port: number, opts: { host: string; from: string; cookie?: string; path?: string }) {
  const agent = new Agent({ localAddress: opts.from, connections: 2 });
  t.teardown(() => agent.close());
  let worst = 0;
  let ok = 0;
  for (let i = 0; i < 50; i++) {
    const started = Date.now();
    try {
      const r = await agent.request({
        origin: `http://127.0.0.1:${port}`,
        path: opts.path ?? `/p?i=${i}`,
        method: 'GET',
        headers: { host: opts.host, ...(opts.cookie ? { cookie: opts.cookie } : {}) },
        signal: AbortSignal.timeout(2000),
      });
      await r.body.text();
      if (r.statusCode === 200 && Date.now() - started < 1000) ok++;
      else t.comment(`request ${i}: status ${r.statusCode}`);
    } catch {
      t.comment(`request ${i}: no answer within 2 s`);
    }
    worst = Math.max(worst, Date.now() - started);
    if (ok <= i) break;
  }
  t.equal(ok, 50, `50 of 50 answered with 200 in under 1 s (slowest ${worst} ms)`);
}

t.test('route mode: one address holding 500 trickling uploads does not starve another tenant', async (t) => {
  const upstream = await holdingUpstream(t);
  const gw = await startGateway(t, { upstreams: { webapp: upstream.url } });
  await seedRouteTenants(gw.adminUrl);
  const answers = trickle(t, gw.publicPort, 500, { host: 'acme.ml.example.com', from: ['127.0.0.1'] });
  await until(() => upstream.state.uploads + answers.total >= 500, 8000);
  t.ok(upstream.state.uploads <= 64, `at most upstreams.maxConcurrentPerClient uploads reach the webapp (${upstream.state.uploads})`);
  t.ok((answers.byStatus.get(429) ?? 0) >= 400, `the rest get a quick 429 (${answers.byStatus.get(429) ?? 0})`);
  await fiftyQuickGets(t, gw.publicPort, { host: 'globex.ml.example.com', from: '127.0.0.2' });
});

t.test('authenticate mode: one session holding 500 trickling uploads from five addresses does not starve another tenant', async (t) => {
  const tt = await twoTenants(t);
  const bob = await tt.login('bob');
  t.equal(bob.callback?.status, 302, 'bob signed in');
  const gina = await tt.login('gina', { host: 'globex.ml.example.com', tenant: 'globex' });
  t.equal(gina.callback?.status, 302, 'gina signed in');
  const from = ['127.0.0.1', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6'];
  const answers = trickle(t, tt.publicPort, 500, { host: 'acme.ml.example.com', from, cookie: bob.browser.header()! });
  await until(() => answers.total >= 500 - 32, 8000);
  t.ok((answers.byStatus.get(429) ?? 0) >= 500 - 32, `beyond upstreams.maxConcurrentPerSession the session gets 429 (${answers.byStatus.get(429) ?? 0})`);
  await fiftyQuickGets(t, tt.publicPort, { host: 'globex.ml.example.com', from: '127.0.0.2', cookie: gina.browser.header()! });
});

t.test('a request body that stops arriving is a 408 page and the connection is closed', async (t) => {
  const upstream = await holdingUpstream(t);
  const gw = await startGateway(t, { upstreams: { webapp: upstream.url }, public: { bodyIdleTimeoutMs: 300 } });
  await seedRouteTenants(gw.adminUrl);
  const started = Date.now();
  const r = await new Promise<{ text: string; ms: number }>((resolve) => {
    const s = net.connect(gw.publicPort, '127.0.0.1');
    let text = '';
    s.on('data', (c: Buffer) => (text += c.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => resolve({ text, ms: Date.now() - started }));
    s.write('POST /upload HTTP/1.1\r\nHost: acme.ml.example.com\r\nContent-Length: 100\r\n\r\nabc');
    setTimeout(() => s.destroy(), 5000).unref();
  });
  t.match(r.text, /^HTTP\/1\.1 408 /, '408');
  t.match(r.text, /\r\nconnection: close\r\n/i, 'Connection: close');
  t.match(r.text, /\r\ncache-control: no-store\r\n/i, 'the gateway page');
  t.ok(r.ms < 2000, `closed after the idle time (${r.ms} ms)`);
  await until(() => upstream.state.uploadsClosed >= 1, 6000);
  t.equal(upstream.state.uploadsClosed, 1, 'the upstream request is given up');
});

t.test('a client that stops reading the answer is cut off', async (t) => {
  let closedAt = 0;
  const big = Buffer.alloc(1 << 20, 'a');
  const server = http.createServer((req, res) => {
    req.resume();
    res.on('close', () => (closedAt = Date.now()));
    const pump = () => {
      while (!res.destroyed && res.write(big));
      if (!res.destroyed) res.once('drain', pump);
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  const gw = await startGateway(t, { upstreams: { webapp: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }, public: { bodyIdleTimeoutMs: 300 } });
  await seedRouteTenants(gw.adminUrl);
  const s = net.connect(gw.publicPort, '127.0.0.1');
  s.on('error', () => {});
  t.teardown(() => s.destroy());
  s.pause();
  const started = Date.now();
  s.write('GET /big HTTP/1.1\r\nHost: acme.ml.example.com\r\n\r\n');
  await until(() => closedAt > 0, 5000);
  t.ok(closedAt > 0 && closedAt - started < 3000, `the upstream answer is abandoned soon after the client stops reading (${closedAt ? closedAt - started : 'never'} ms)`);
});

t.test('FairShare: caps per client and session, a bounded wait, places freed on release', async (t) => {
  const share = new FairShare({ perClient: 2, perSession: 1, connections: 2, queueTimeoutMs: 100 });
  const a = share.enter('a', undefined);
  const b = share.enter('a', 'S');
  t.equal(share.enter('a', undefined), 'client', 'the client cap');
  t.equal(share.enter('b', 'S'), 'session', 'the session cap');
  if (typeof a === 'string' || typeof b === 'string') throw new Error('unexpected');
  t.equal(a.slot(), true);
  t.equal(b.slot(), true);
  const c = share.enter('c', undefined);
  if (typeof c === 'string') throw new Error('unexpected');
  const waited = c.slot();
  t.type(waited, Promise, 'the pool is full: wait');
  t.equal(await waited, false, 'no connection within queueTimeoutMs');
  c.release();
  const d = share.enter('d', undefined);
  if (typeof d === 'string') throw new Error('unexpected');
  const next = d.slot();
  a.release();
  a.release();
  t.equal(await next, true, 'a released connection goes to the waiter');
  t.equal(share.active, 2);
  b.release();
  d.release();
  t.equal(share.active, 0, 'every place is given back');
  t.type(share.enter('a', 'S'), 'object', 'the caps are free again');
});
