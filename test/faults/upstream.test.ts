import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { adminCall, publicRequest, startGateway } from '../helpers/gateway.js';

type Test = import('tap').Test;

const NAV = { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };

/** An upstream on a fixed port that can be stopped and started again; `delayMs` slows every answer. */
function controllableUpstream(t: Test) {
  let server: http.Server | undefined;
  let port = 0;
  const state = { delayMs: 0, served: 0 };
  const sockets = new Set<import('node:net').Socket>();
  async function start() {
    server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const answer = () => {
          state.served++;
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ upstream: true, url: req.url }));
        };
        if (state.delayMs > 0) setTimeout(answer, state.delayMs).unref();
        else answer();
      });
    });
    server.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(port, '127.0.0.1', () => resolve());
    });
    port = (server.address() as AddressInfo).port;
  }
  async function stop() {
    const s = server;
    server = undefined;
    if (!s) return;
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
  t.teardown(stop);
  return { start, stop, state, get url() { return `http://127.0.0.1:${port}`; } };
}

async function timed<T>(p: Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await p;
  return { value, ms: Date.now() - started };
}

t.test('the webapp down: a quick 502 page; the gateway keeps answering what it owns; back when it returns', async (t) => {
  const upstream = controllableUpstream(t);
  await upstream.start();
  const gw = await startGateway(t, { upstreams: { webapp: upstream.url, connectTimeoutMs: 500, timeoutMs: 1000 } });
  await adminCall(gw.adminUrl, 'system.update_company_sso_config', { company: 'c-acme', sso: { tenant: 'acme', domains: ['acme.com'] } });
  const get = (path: string, host = 'ml.example.com', headers: Record<string, string> = { accept: 'application/json' }) => publicRequest(gw.publicPort, { path, host, headers });

  t.equal((await get('/projects')).status, 200, 'served while the webapp is up');
  await upstream.stop();

  const down = await timed(get('/projects'));
  t.equal(down.value.status, 502, 'the webapp down: 502');
  t.match(down.value.headers['content-type'], /text\/html/, 'as a page');
  t.match(down.value.body, /The application is unavailable/);
  t.ok(down.ms < 1500, `within the connect timeout (${down.ms} ms)`);
  const burst = await Promise.all(Array.from({ length: 20 }, () => get('/projects')));
  t.same([...new Set(burst.map((r) => r.status))], [502], 'every request of a burst gets the 502 page');

  t.equal((await get('/healthz')).status, 200, 'the gateway is alive');
  t.equal((await get('/projects', 'acme.ml.example.com', NAV)).headers.location, '/login/acme?redirect=%2Fprojects', 'vanity redirects do not need the webapp');
  const discovery = await publicRequest(gw.publicPort, { path: '/login', method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'email=a%40acme.com' });
  t.equal(discovery.status, 303, 'email discovery does not need the webapp');

  await upstream.start();
  const back = await get('/projects?again=1');
  t.equal(back.status, 200, 'the first request after the webapp returns on the same port is served');
  t.equal((JSON.parse(back.body) as { url: string }).url, '/projects?again=1');
  const after = await Promise.all(Array.from({ length: 20 }, (_, i) => get(`/projects?n=${i}`)));
  t.same([...new Set(after.map((r) => r.status))], [200], 'and every request after it');
});

t.test('the webapp restarting under keep-alive: no request fails after it is back', async (t) => {
  const upstream = controllableUpstream(t);
  await upstream.start();
  const gw = await startGateway(t, { upstreams: { webapp: upstream.url, connectTimeoutMs: 500, timeoutMs: 1000 } });
  const get = (path: string) => publicRequest(gw.publicPort, { path, headers: { accept: 'application/json' } });
  // Warm the gateway's connection pool, then restart the webapp behind it.
  await Promise.all(Array.from({ length: 10 }, (_, i) => get(`/warm/${i}`)));
  await upstream.stop();
  await upstream.start();
  const statuses: number[] = [];
  for (let i = 0; i < 10; i++) statuses.push((await get(`/after/${i}`)).status);
  t.same(statuses, Array(10).fill(200), 'pooled connections to the old process are not reused into a 502');
});

t.test('the webapp slow: a 504 page within the configured timeout; normal again when it speeds up', async (t) => {
  const upstream = controllableUpstream(t);
  await upstream.start();
  const timeoutMs = 400;
  const gw = await startGateway(t, { upstreams: { webapp: upstream.url, connectTimeoutMs: 500, timeoutMs } });
  const get = (path: string) => publicRequest(gw.publicPort, { path, headers: { accept: 'application/json' } });

  upstream.state.delayMs = 3000;
  const slow = await timed(get('/slow'));
  t.equal(slow.value.status, 504, 'too slow: 504');
  t.match(slow.value.body, /taking too long/);
  t.ok(slow.ms >= timeoutMs - 50 && slow.ms < timeoutMs + 1000, `after about ${timeoutMs} ms (${slow.ms} ms)`);
  const many = await timed(Promise.all(Array.from({ length: 30 }, (_, i) => get(`/slow/${i}`))));
  t.same([...new Set(many.value.map((r) => r.status))], [504], '30 concurrent slow requests all get 504');
  t.ok(many.ms < timeoutMs + 1500, `together within the timeout (${many.ms} ms): none waits for another`);
  t.equal((await get('/healthz')).status, 200, 'the gateway is alive');

  upstream.state.delayMs = 0;
  const fast = await get('/fast');
  t.equal(fast.status, 200, 'served again once the webapp answers in time');
});

t.test('an upstream that accepts connections and never answers is a 504, not a hang', async (t) => {
  const sockets = new Set<import('node:net').Socket>();
  const blackhole = http.createServer(() => undefined);
  blackhole.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', r));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        blackhole.close(() => r());
      }),
  );
  const gw = await startGateway(t, { upstreams: { webapp: `http://127.0.0.1:${(blackhole.address() as AddressInfo).port}`, timeoutMs: 500 } });
  const r = await timed(publicRequest(gw.publicPort, { path: '/x', method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' }));
  t.equal(r.value.status, 504);
  t.ok(r.ms < 2000, `answered in ${r.ms} ms`);
});
