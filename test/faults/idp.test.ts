import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import t from 'tap';
import { loginAtIdp } from '../helpers/idp.js';
import { ACME_SECRET, Browser, twoTenants } from '../helpers/two-tenants.js';

type Test = import('tap').Test;

const HTTP_TIMEOUT_MS = 800;

/**
 * A loopback server standing between the gateway and one identity provider endpoint:
 * `forward` passes requests to the real provider, `hang` accepts and never answers,
 * `refuse` drops every connection.
 */
async function faultyEndpoint(t: Test, target: string) {
  const state = { mode: 'forward' as 'forward' | 'hang' | 'refuse', hits: 0 };
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    state.hits++;
    if (state.mode === 'hang') return;
    if (state.mode === 'refuse') {
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', target);
      const up = http.request(u, { method: req.method, headers: { ...req.headers, host: u.host } }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      up.end(Buffer.concat(chunks));
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return { state, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function timed<T>(p: Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await p;
  return { value, ms: Date.now() - started };
}

t.test('an identity provider that never answers: a clear 503 within oidc.httpTimeoutMs; other tenants unaffected', async (t) => {
  const s = await twoTenants(t, { oidc: { httpTimeoutMs: HTTP_TIMEOUT_MS } });
  const blackhole = await faultyEndpoint(t, 'http://127.0.0.1:9');
  blackhole.state.mode = 'hang';
  await s.call('system.update_company_sso_config', { company: 'c-slow', sso: { tenant: 'slow' } });
  const saved = await s.call('sso.save_provider_configuration', { provider: 'keycloak', company: 'c-slow', configuration: { id: 'c-slow', client_id: 'slow-web', issuer: `${blackhole.url}/realms/slow` } });
  t.equal(saved.status, 200);

  // The slow tenant and a working one at the same time: the working one must not wait.
  const [slow, acme] = await Promise.all([timed(s.req({ path: '/login/slow', host: 'slow.ml.example.com' })), timed(s.login('bob'))]);
  t.equal(slow.value.status, 503, 'the slow tenant gets 503');
  t.ok(slow.value.headers['retry-after'], 'with Retry-After');
  t.match(slow.value.body, /identity provider cannot be reached/, 'and a page that says what is wrong');
  t.ok(slow.ms < HTTP_TIMEOUT_MS + 1500, `within the provider timeout (${slow.ms} ms for ${HTTP_TIMEOUT_MS} ms)`);
  t.ok(blackhole.state.hits >= 1, 'the provider was really asked');
  t.equal(acme.value.callback?.status, 302, 'acme logs in meanwhile');
  t.ok(acme.ms < slow.ms + 2000, `without waiting on the slow provider (${acme.ms} ms)`);

  const again = await timed(s.req({ path: '/login/slow', host: 'slow.ml.example.com' }));
  t.equal(again.value.status, 503, 'asked again: still 503');
  t.ok(again.ms < HTTP_TIMEOUT_MS + 1500, `and no slower (${again.ms} ms)`);
  const globex = await s.login('gina', { host: 'globex.ml.example.com', tenant: 'globex' });
  t.equal(globex.callback?.status, 302, 'globex logs in too');
  t.equal((await s.req({ path: '/healthz' })).status, 200, 'the gateway is alive');
});

t.test("a tenant's token endpoint slow, refusing, then back: refusals within the timeout, no session, then sign-in again", async (t) => {
  const s = await twoTenants(t, { oidc: { httpTimeoutMs: HTTP_TIMEOUT_MS, discoveryRetryMaxSeconds: 1 } });
  const token = await faultyEndpoint(t, s.acmeIdp.issuer);
  const save = (extra: Record<string, unknown>) =>
    s.call('sso.save_provider_configuration', {
      provider: 'keycloak',
      company: 'c-acme',
      configuration: {
        id: 'c-acme',
        display_name: 'Acme SSO',
        client_id: 'acme-web',
        client_secret: ACME_SECRET,
        issuer: s.acmeIdp.issuer,
        logout_from_provider: true,
        claim_tenant: 'tenant_key',
        claim_name: 'name',
        group_enabled: true,
        claim_groups: 'ad_groups_trusted',
        group_prohibit_user_login_if_not_in_group: true,
        ...extra,
      },
    });
  t.equal((await save({ token_endpoint: `${token.url}/token` })).status, 200, 'the token endpoint now goes through a faulty link');

  const attempt = async () => {
    const browser = new Browser();
    const start = await s.req({ path: '/login/acme', host: 'acme.ml.example.com' }, browser);
    const cb = new URL((await loginAtIdp(start.headers.location!, 'bob')).callbackUrl);
    const done = await timed(s.req({ path: cb.pathname + cb.search, host: cb.host }, browser));
    const after = await s.req({ path: '/projects', host: 'acme.ml.example.com', headers: { accept: 'application/json' } }, browser);
    return { ...done, signedIn: after.status === 200, browser };
  };

  token.state.mode = 'hang';
  const hung = await attempt();
  t.equal(hung.value.status, 503, 'a hanging token endpoint: 503');
  t.ok(hung.value.headers['retry-after'], 'with Retry-After');
  t.ok(hung.ms < HTTP_TIMEOUT_MS + 1500, `within the provider timeout (${hung.ms} ms)`);
  t.notOk(hung.signedIn, 'no session');
  const globex = await s.login('gina', { host: 'globex.ml.example.com', tenant: 'globex' });
  t.equal(globex.callback?.status, 302, 'globex is unaffected');

  token.state.mode = 'refuse';
  const refused = await attempt();
  t.equal(refused.value.status, 503, 'a token endpoint dropping connections: 503');
  t.ok(refused.ms < HTTP_TIMEOUT_MS + 1500, `quickly (${refused.ms} ms)`);
  t.notOk(refused.signedIn, 'no session');

  token.state.mode = 'forward';
  const back = await attempt();
  t.equal(back.value.status, 302, 'the token endpoint back: sign-in completes');
  t.ok(back.signedIn, 'and the session works');
  t.equal(s.upstream.seen.length, 1, 'only the signed-in request reached the webapp');
  t.notMatch(s.logs.text(), ACME_SECRET, 'the client secret is never logged, even in failures');
});
