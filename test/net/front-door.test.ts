import t from 'tap';
import Fastify from 'fastify';
import type { AddressInfo } from 'node:net';
import { createFrontDoor } from '../../src/net/front-door.js';

t.test('claimed requests are answered before fastify, the rest reach it, and none once closing', async (t) => {
  const door = createFrontDoor();
  const app = Fastify({ serverFactory: door.serverFactory, requestTimeout: 12_345, keepAliveTimeout: 4_321, return503OnClosing: true });
  const seen: string[] = [];
  door.claim((req, res) => {
    seen.push(`first ${req.url}`);
    if (req.url !== '/claimed') return false;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '4' });
    res.end('door');
    return true;
  });
  door.claim((req) => {
    seen.push(`second ${req.url}`);
    return false;
  });
  app.get('/claimed', async () => 'fastify');
  app.get('/other', async () => 'fastify');
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  t.equal(app.server.requestTimeout, 12_345, 'the request timeout fastify was given');
  t.equal(app.server.keepAliveTimeout, 4_321, 'the keep-alive timeout fastify was given');
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

  t.equal(await fetch(`${base}/claimed`).then((r) => r.text()), 'door', 'a claimed request never reaches fastify');
  t.same(seen, ['first /claimed'], 'later claims are not asked once one answered');
  t.equal(await fetch(`${base}/other`).then((r) => r.text()), 'fastify', 'an unclaimed request reaches fastify untouched');
  t.same(seen.slice(1), ['first /other', 'second /other'], 'every claim was asked, in order');

  seen.length = 0;
  door.close();
  t.equal(await fetch(`${base}/claimed`).then((r) => r.text()), 'fastify', 'once closed, fastify answers everything');
  t.same(seen, [], 'no claim is asked');
});
