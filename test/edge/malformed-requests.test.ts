import net from 'node:net';
import t from 'tap';
import { Agent } from 'undici';
import { clientErrorStatus } from '../../src/pages/client-error.js';
import { BASE_DOMAIN, startGateway, startUpstream } from '../helpers/gateway.js';

/** Sends raw bytes on a fresh connection; resolves with everything received until the server closes it. */
function raw(port: number, bytes: Buffer): Promise<{ text: string; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closedByServer: false });
    }, 3000);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closedByServer: true });
    });
    s.write(bytes);
  });
}

t.test('a request the parser refuses gets the gateway page with Connection: close, and a keep-alive client keeps working', async (t) => {
  const upstream = await startUpstream(t);
  const { publicPort } = await startGateway(t, { upstreams: { webapp: upstream.url } });
  const agent = new Agent({ connections: 1, keepAliveTimeout: 10_000 });
  t.teardown(() => agent.close());
  const origin = `http://127.0.0.1:${publicPort}`;
  const get = (path: string) => agent.request({ origin, path, method: 'GET', headers: { host: BASE_DOMAIN } });

  for (let round = 0; round < 3; round++) {
    const bad = await get('/caf\u00e9');
    t.equal(bad.statusCode, 400, 'a raw latin-1 byte in the target is a 400');
    t.equal(bad.headers.connection, 'close', 'the refusal closes the connection');
    t.equal(bad.headers['cache-control'], 'no-store');
    t.equal(bad.headers['x-frame-options'], 'DENY');
    t.match(bad.headers['content-security-policy'], /default-src 'none'/);
    t.match(await bad.body.text(), /<h1>Bad request<\/h1>/, 'the gateway\u2019s own page');
    const good = await get('/healthz');
    t.equal(good.statusCode, 200, 'the next, well-formed request on the same agent is answered');
    await good.body.text();
  }
});

t.test('raw refusals: leading backslash, bad framing, oversized headers', async (t) => {
  const { publicPort } = await startGateway(t);
  const cases: Array<[string, Buffer, number]> = [
    ['a leading backslash', Buffer.from(`GET \\healthz HTTP/1.1\r\nHost: ${BASE_DOMAIN}\r\n\r\n`), 400],
    ['a raw latin-1 byte', Buffer.from(`GET /caf\xe9 HTTP/1.1\r\nHost: ${BASE_DOMAIN}\r\n\r\n`, 'latin1'), 400],
    ['Content-Length and chunked together', Buffer.from(`POST /login HTTP/1.1\r\nHost: ${BASE_DOMAIN}\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`), 400],
    ['a bad chunk size', Buffer.from(`POST /login HTTP/1.1\r\nHost: ${BASE_DOMAIN}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`), 400],
    ['oversized headers', Buffer.from(`GET / HTTP/1.1\r\nHost: ${BASE_DOMAIN}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`), 431],
  ];
  for (const [name, bytes, status] of cases) {
    const r = await raw(publicPort, bytes);
    t.match(r.text, new RegExp(`^HTTP/1\\.1 ${status} `), `${name}: ${status}`);
    t.match(r.text, /\r\nconnection: close\r\n/i, `${name}: Connection: close`);
    t.match(r.text, /\r\ncache-control: no-store\r\n/i, `${name}: no-store`);
    t.match(r.text, /<!doctype html>/, `${name}: a page`);
    t.ok(r.closedByServer, `${name}: the server closes the socket`);
  }
  t.equal(clientErrorStatus('ERR_HTTP_REQUEST_TIMEOUT'), 408, 'a request not received in time is a 408 page');
});

t.test('an injected request (no real socket) is proxied, not failed by the idle timeouts', async (t) => {
  const upstream = await startUpstream(t);
  const gw = await startGateway(t, { upstreams: { webapp: upstream.url } });
  const r = await gw.gateway.public.inject({ method: 'GET', url: '/x', headers: { host: 'ml.example.com' } });
  t.equal(r.statusCode, 200);
});
