import t, { type Test } from 'tap';
import Fastify from 'fastify';
import net, { type AddressInfo } from 'node:net';
import { idleTimeouts } from '../../src/proxy/idle-timeouts.js';

/** A fastify app whose routes are armed like proxied exchanges; `/slow` answers after `slowMs`. */
async function armedApp(t: Test, idleMs: number, keepAliveTimeout: number, slowMs: number) {
  const app = Fastify({ keepAliveTimeout });
  const arm = idleTimeouts(idleMs);
  app.addHook('preHandler', (_req, reply, done) => {
    arm(reply);
    done();
  });
  app.get('/fast', async () => 'fast');
  app.get('/slow', () => new Promise<string>((resolve) => setTimeout(() => resolve('slow'), slowMs)));
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  return (app.server.address() as AddressInfo).port;
}

/** Sends requests on one connection; resolves with what came back and when the connection closed (ms after the first write). */
function exchange(port: number, paths: string[], gapMs = 0): Promise<{ text: string; closedAfterMs: number }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    const started = Date.now();
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('close', () => resolve({ text, closedAfterMs: Date.now() - started }));
    socket.on('connect', () => {
      paths.forEach((path, i) => setTimeout(() => socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`), i * gapMs));
    });
    setTimeout(() => socket.destroy(), 6000).unref();
  });
}

t.test('waiting for the answer is not idleness: a slow handler is answered', async (t) => {
  const port = await armedApp(t, 150, 300, 500);
  const r = await exchange(port, ['/slow']);
  t.match(r.text, /^HTTP\/1\.1 200 [^]*\r\n\r\nslow$/, 'answered after more than the idle timeout');
});

t.test('an idle keep-alive connection is still closed after the keep-alive timeout', async (t) => {
  // Node.js closes an idle keep-alive connection 1 s after the advertised timeout.
  const port = await armedApp(t, 4000, 300, 0);
  const r = await exchange(port, ['/fast']);
  t.match(r.text, /\r\n\r\nfast$/);
  t.ok(r.closedAfterMs >= 250 && r.closedAfterMs < 3500, `closed by the keep-alive timeout, not the idle timeout (${r.closedAfterMs} ms)`);
});

t.test('every exchange on a kept-alive connection is armed anew', async (t) => {
  const port = await armedApp(t, 150, 1000, 400);
  const r = await exchange(port, ['/fast', '/slow'], 50);
  t.equal(r.text.match(/HTTP\/1\.1 200/g)?.length, 2, 'both answered, the second after more than the idle timeout');
});
