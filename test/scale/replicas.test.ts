import t from 'tap';
import { adminCall, publicRequest, startGateway, startUpstream } from '../helpers/gateway.js';
import { loginAtIdp, startIdp } from '../helpers/idp.js';
import { Browser, SESSION_SECRET } from '../helpers/two-tenants.js';
import { dropSchema, PG_URL, postgresReachable, REDIS_URL, redisReachable, sharedEngineRun, startRelay } from '../helpers/services.js';

type Test = import('tap').Test;

const [pgUp, redisUp] = await Promise.all([postgresReachable(), redisReachable()]);
if (!pgUp || !redisUp) {
  t.plan(0, `${pgUp ? '' : 'PostgreSQL (127.0.0.1:5432) '}${redisUp ? '' : 'Redis (127.0.0.1:6379) '}not reachable: replica suites skipped`);
} else {
  const { run, prefix } = sharedEngineRun(t);
  let n = 0;

  /** Two replicas on one PostgreSQL schema (optionally through a relay) and one Redis. */
  const replicas = async (t: Test, extra: Record<string, unknown> = {}, pgPort?: number) => {
    const schema = `${run}_${n++}`;
    t.teardown(() => dropSchema(schema));
    const pgUrl = new URL(PG_URL);
    if (pgPort) pgUrl.port = String(pgPort);
    const storeUrl = `${pgUrl.href}?schema=${schema}`;
    const upstream = await startUpstream(t);
    const common = {
      upstreams: { webapp: upstream.url },
      store: { url: storeUrl },
      redis: { url: REDIS_URL, keyPrefix: prefix },
      cache: { ttlSeconds: 3600, negativeTtlSeconds: 3600, staleSeconds: 3600 },
      ...extra,
    };
    const a = await startGateway(t, common);
    const b = await startGateway(t, common);
    return { a, b, upstream };
  };

  /** Two authenticate-mode replicas with tenant acme on a real identity provider where bob is in `staff`. */
  const acmeReplicas = async (t: Test) => {
    const idp = await startIdp({
      clients: [{ client_id: 'acme-web', client_secret: 'acme-secret-1234567890', redirect_uris: ['http://acme.ml.example.com/callback_acme-web'], post_logout_redirect_uris: ['http://acme.ml.example.com/login/acme'] }],
      users: { bob: { email: 'bob@acme.com', email_verified: true, tenant_key: 'acme', groups: ['staff'] } },
    });
    t.teardown(() => idp.close());
    const stack = await replicas(t, { mode: 'authenticate', session: { secret: SESSION_SECRET }, public: { host: '127.0.0.1', port: 0, url: 'http://ml.example.com' } });
    await adminCall(stack.a.adminUrl, 'system.update_company_sso_config', { company: 'c', sso: { tenant: 'acme', group_mapping: { staff: 'Staff' } } });
    await adminCall(stack.a.adminUrl, 'sso.save_provider_configuration', { provider: 'keycloak', company: 'c', configuration: { id: 'kc', client_id: 'acme-web', client_secret: 'acme-secret-1234567890', issuer: idp.issuer, group_enabled: true } });
    return stack;
  };

  t.test('a write on one replica reaches the other within a second', async (t) => {
    const { a, b } = await replicas(t);
    t.equal((await publicRequest(b.publicPort, { path: '/', host: 'acme.ml.example.com' })).status, 421, 'B caches "no such tenant"');
    t.equal((await adminCall(a.adminUrl, 'system.update_company_sso_config', { company: 'c', sso: { tenant: 'acme', domains: ['acme.com'] } })).status, 200);
    const started = Date.now();
    let status = 0;
    while (Date.now() - started < 1000) {
      status = (await publicRequest(b.publicPort, { path: '/x', host: 'acme.ml.example.com', headers: { accept: 'application/json' } })).status;
      if (status === 200) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    t.equal(status, 200, `B serves the new tenant after ${Date.now() - started} ms`);
    t.equal((await adminCall(b.adminUrl, 'system.get_company_sso_config', { company: 'c' })).data.sso.tenant, 'acme', 'one directory');
    const conflict = await adminCall(b.adminUrl, 'system.update_company_sso_config', { company: 'other', sso: { tenant: 'ACME' } });
    t.equal(conflict.status, 409, 'uniqueness holds across replicas');
  });

  t.test('a session made on one replica works on the other; a logout on either ends it everywhere', async (t) => {
    const { a, b, upstream } = await acmeReplicas(t);
    const browser = new Browser();
    const req = async (port: number, path: string) => {
      const cookie = browser.header();
      const r = await publicRequest(port, { path, host: 'acme.ml.example.com', headers: cookie ? { cookie } : {} });
      browser.take(r.headers);
      return r;
    };
    const start = await req(a.publicPort, '/login/acme');
    const cb = new URL((await loginAtIdp(start.headers.location!, 'bob')).callbackUrl);
    t.equal((await req(b.publicPort, cb.pathname + cb.search)).status, 302, 'the callback completes on the other replica (shared single-use transactions)');
    t.equal((await req(a.publicPort, '/x')).status, 200, 'session valid on A');
    t.equal((await req(b.publicPort, '/x')).status, 200, 'and on B');
    t.equal(upstream.seen.at(-1)!.headers['x-auth-request-user'], 'bob@acme.com');
    const cookie = browser.header()!;
    await req(b.publicPort, '/logout');
    t.equal((await publicRequest(a.publicPort, { path: '/x', host: 'acme.ml.example.com', headers: { cookie } })).status, 401, 'logout on B ended it on A');
  });

  t.test('losing PostgreSQL: readiness false, cached tenants served, writes fail fast; recovery without restart', async (t) => {
    const relay = await startRelay('127.0.0.1', Number(new URL(PG_URL).port || 5432));
    t.teardown(() => relay.close());
    const { a } = await replicas(t, {}, relay.port);
    await adminCall(a.adminUrl, 'system.update_company_sso_config', { company: 'c', sso: { tenant: 'acme' } });
    t.equal((await publicRequest(a.publicPort, { path: '/x', host: 'acme.ml.example.com' })).status, 200, 'acme cached');
    relay.cut();
    const readyDown = await fetch(`${a.adminUrl}/readyz`);
    t.equal(readyDown.status, 503, 'not ready');
    t.equal((await publicRequest(a.publicPort, { path: '/x', host: 'acme.ml.example.com' })).status, 200, 'a cached tenant keeps being served');
    const unknown = await publicRequest(a.publicPort, { path: '/x', host: 'globex.ml.example.com' });
    t.equal(unknown.status, 503, 'an uncached tenant gets 503');
    t.ok(unknown.headers['retry-after'], 'with Retry-After');
    const started = Date.now();
    const write = await adminCall(a.adminUrl, 'system.update_company_sso_config', { company: 'g', sso: { tenant: 'globex' } });
    t.equal(write.status, 503, 'admin writes fail with 503');
    t.ok(Date.now() - started < 5000, `fast (${Date.now() - started} ms)`);
    relay.restore();
    let ready = 0;
    for (let i = 0; i < 50 && ready !== 200; i++) {
      ready = (await fetch(`${a.adminUrl}/readyz`)).status;
      if (ready !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    t.equal(ready, 200, 'ready again by itself');
    t.equal((await adminCall(a.adminUrl, 'system.update_company_sso_config', { company: 'g', sso: { tenant: 'globex' } })).status, 200, 'writes work again');
  });

  t.test('losing Redis: readiness false and sessions fail with 503; recovery without restart', async (t) => {
    const relay = await startRelay(new URL(REDIS_URL).hostname, Number(new URL(REDIS_URL).port || 6379));
    t.teardown(() => relay.close());
    const { a } = await replicas(t, { mode: 'authenticate', session: { secret: SESSION_SECRET }, redis: { url: `redis://127.0.0.1:${relay.port}`, keyPrefix: prefix } });
    await adminCall(a.adminUrl, 'system.update_company_sso_config', { company: 'c', sso: { tenant: 'acme' } });
    t.equal((await fetch(`${a.adminUrl}/readyz`)).status, 200);
    relay.cut();
    t.equal((await fetch(`${a.adminUrl}/readyz`)).status, 503, 'not ready without Redis');
    const started = Date.now();
    const r = await publicRequest(a.publicPort, { path: '/x', host: 'acme.ml.example.com', headers: { cookie: `__Host-tg_session=${'a'.repeat(43)}` } });
    t.equal(r.status, 503, 'a request needing its session gets 503');
    t.ok(Date.now() - started < 5000, 'fast');
    relay.restore();
    let ready = 0;
    for (let i = 0; i < 50 && ready !== 200; i++) {
      ready = (await fetch(`${a.adminUrl}/readyz`)).status;
      if (ready !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    t.equal(ready, 200, 'ready again by itself');
  });

  t.test('sessions follow the directory on every replica: group changes within a second, a deleted provider ends them', async (t) => {
    const { a, b, upstream } = await acmeReplicas(t);
    const browser = new Browser();
    const req = async (port: number, path: string) => {
      const cookie = browser.header();
      const r = await publicRequest(port, { path, host: 'acme.ml.example.com', headers: { accept: 'application/json', ...(cookie ? { cookie } : {}) } });
      browser.take(r.headers);
      return r;
    };
    const start = await req(a.publicPort, '/login/acme');
    const cb = new URL((await loginAtIdp(start.headers.location!, 'bob')).callbackUrl);
    t.equal((await req(a.publicPort, cb.pathname + cb.search)).status, 302);
    t.equal((await req(b.publicPort, '/x')).status, 200);
    t.equal(upstream.seen.at(-1)!.headers['x-auth-request-groups'], 'Staff');

    const within = async (what: string, check: () => Promise<boolean>) => {
      const started = Date.now();
      let ok = false;
      while (!ok && Date.now() - started < 1000) {
        ok = await check();
        if (!ok) await new Promise((r) => setTimeout(r, 20));
      }
      t.ok(ok, `${what} on the other replica after ${Date.now() - started} ms`);
    };
    await adminCall(a.adminUrl, 'system.update_company_sso_config', { company: 'c', sso: { group_mapping: { staff: ['Staff', 'Editors'] }, admin_groups: ['staff'] } });
    await within('the new groups and admin apply', async () => {
      const r = await req(b.publicPort, '/x');
      const h = upstream.seen.at(-1)!.headers;
      return r.status === 200 && h['x-auth-request-groups'] === 'Staff,Editors' && h['x-auth-request-admin'] === 'true';
    });
    await adminCall(a.adminUrl, 'sso.delete_provider_configuration', { company: 'c', id: 'kc' });
    await within('the session ends', async () => (await req(b.publicPort, '/x')).status === 401);
  });
}
