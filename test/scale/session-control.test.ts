/**
 * Ending sessions on two replicas (PostgreSQL + Redis): back-channel logout from the
 * provider, revocation through the admin API and the CLI.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { main } from '../../src/main.js';
import { adminCall, publicRequest, startGateway, startUpstream, tempDir } from '../helpers/gateway.js';
import { CookieJar, loginAtIdp, logoutAtIdp, startIdp } from '../helpers/idp.js';
import { Browser, SESSION_SECRET } from '../helpers/two-tenants.js';
import { dropSchema, PG_URL, postgresReachable, REDIS_URL, redisReachable, sharedEngineRun } from '../helpers/services.js';

type Test = import('tap').Test;

const SECRET = 'acme-secret-1234567890';

const [pgUp, redisUp] = await Promise.all([postgresReachable(), redisReachable()]);
if (!pgUp || !redisUp) {
  t.plan(0, `${pgUp ? '' : 'PostgreSQL (127.0.0.1:5432) '}${redisUp ? '' : 'Redis (127.0.0.1:6379) '}not reachable: session control replica suites skipped`);
} else {
  const { run, prefix } = sharedEngineRun(t);
  let n = 0;

  /** Two replicas, one acme tenant whose provider sends back-channel logout to replica A. */
  const stack = async (t: Test) => {
    const schema = `${run}_${n}`;
    const keyPrefix = `${prefix}${n++}:`;
    t.teardown(() => dropSchema(schema));
    const upstream = await startUpstream(t);
    let deliverTo = 0;
    const idp = await startIdp({
      clients: [
        {
          client_id: 'acme-web',
          client_secret: SECRET,
          redirect_uris: ['http://acme.ml.example.com/callback_acme-web'],
          backchannel_logout_uri: 'http://acme.ml.example.com/backchannel-logout_acme-web',
          backchannel_logout_session_required: true,
        },
      ],
      users: {
        alice: { email: 'alice@acme.com', email_verified: true, tenant_key: 'acme' },
        bob: { email: 'bob@acme.com', email_verified: true, tenant_key: 'acme' },
      },
      backchannelLogout: { deliverToPort: () => deliverTo },
    });
    t.teardown(() => idp.close());
    const common = {
      mode: 'authenticate',
      session: { secret: SESSION_SECRET },
      public: { host: '127.0.0.1', port: 0, url: 'http://ml.example.com' },
      upstreams: { webapp: upstream.url },
      store: { url: `${PG_URL}?schema=${schema}` },
      redis: { url: REDIS_URL, keyPrefix },
    };
    const a = await startGateway(t, common);
    const b = await startGateway(t, common);
    deliverTo = a.publicPort;
    await adminCall(a.adminUrl, 'system.update_company_sso_config', { company: 'c-acme', sso: { tenant: 'acme' } });
    await adminCall(a.adminUrl, 'sso.save_provider_configuration', {
      provider: 'keycloak',
      company: 'c-acme',
      configuration: { id: 'acme-kc', client_id: 'acme-web', client_secret: SECRET, issuer: idp.issuer, claim_tenant: 'tenant_key' },
    });
    const login = async (account: string) => {
      const browser = new Browser();
      const jar = new CookieJar();
      const go = async (port: number, path: string, host = 'acme.ml.example.com') => {
        const cookie = browser.header();
        const r = await publicRequest(port, { path, host, headers: cookie ? { cookie } : {} });
        browser.take(r.headers);
        return r;
      };
      const start = await go(a.publicPort, '/login/acme');
      const cb = new URL((await loginAtIdp(start.headers.location!, account, jar)).callbackUrl);
      if ((await go(b.publicPort, cb.pathname + cb.search)).status !== 302) throw new Error('login failed');
      return { browser, jar };
    };
    const status = (port: number, browser: Browser) =>
      publicRequest(port, { path: '/api-check', host: 'acme.ml.example.com', headers: { accept: 'application/json', cookie: browser.header() ?? '' } }).then((r) => r.status);
    /** Milliseconds until `port` refuses the browser's session (at most 1000). */
    const endedWithin = async (port: number, browser: Browser): Promise<number> => {
      const started = Date.now();
      while (Date.now() - started < 1000) {
        if ((await status(port, browser)) === 401) return Date.now() - started;
        await new Promise((r) => setTimeout(r, 20));
      }
      return Infinity;
    };
    return { a, b, idp, login, status, endedWithin, upstream };
  };

  t.test('signing out at the provider ends the session on both replicas', async (t) => {
    const s = await stack(t);
    const alice = await s.login('alice');
    const bob = await s.login('bob');
    t.equal(await s.status(s.a.publicPort, alice.browser), 200, 'alice signed in on A');
    t.equal(await s.status(s.b.publicPort, alice.browser), 200, 'and on B');
    await logoutAtIdp(s.idp, alice.jar);
    t.same(s.idp.backchannelDeliveries.map((d) => d.status), [200], 'the provider delivered the logout token to replica A');
    const onB = await s.endedWithin(s.b.publicPort, alice.browser);
    t.ok(onB <= 1000, `B refuses the session (${onB} ms)`);
    t.equal(await s.status(s.a.publicPort, alice.browser), 401, 'A too');
    t.equal(await s.status(s.b.publicPort, bob.browser), 200, "bob's session goes on");
  });

  t.test('revocation through the admin API and the CLI ends sessions on both replicas within a second', async (t) => {
    const s = await stack(t);
    const alice = await s.login('alice');
    const alice2 = await s.login('alice');
    const bob = await s.login('bob');
    const summary = await adminCall(s.b.adminUrl, 'sso.get_sessions_summary', { company: 'c-acme' });
    t.equal(summary.status, 200);
    t.same(summary.data, { count: 3, by_provider: { 'acme-kc': 3 } }, 'the summary counts live sessions by provider, on any replica');

    const missing = await adminCall(s.a.adminUrl, 'sso.revoke_sessions', { company: 'c-acme' });
    t.equal(missing.status, 400, 'neither user nor all: refused');
    t.equal(missing.meta.result_subcode, 11);
    const unauth = await adminCall(s.a.adminUrl, 'sso.revoke_sessions', { company: 'c-acme', all: true }, null);
    t.equal(unauth.status, 401, 'credentials are required');
    t.equal(await s.status(s.a.publicPort, alice.browser), 200, 'refused calls ended nothing');

    const revoked = await adminCall(s.a.adminUrl, 'sso.revoke_sessions', { company: 'c-acme', user: 'ALICE@acme.com' });
    t.same(revoked.data, { revoked: 2 }, "both of alice's sessions, matched by verified email");
    t.ok((await s.endedWithin(s.b.publicPort, alice.browser)) <= 1000, 'ended on B within a second');
    t.ok((await s.endedWithin(s.b.publicPort, alice2.browser)) <= 1000);
    t.equal(await s.status(s.a.publicPort, alice.browser), 401, 'and on A');
    t.equal(await s.status(s.b.publicPort, bob.browser), 200, 'bob untouched');
    t.match(s.a.logs.text(), /"audit":"sessions_revoked"[^\n]*"company":"c-acme"[^\n]*"user":"ALICE@acme.com"[^\n]*"revoked":2/, 'audited');

    const dir = tempDir(t);
    const file = join(dir, 'config.yaml');
    writeFileSync(file, stringify({ ...s.a.config, admin: { ...s.a.config.admin, credentials: [{ key: 'k', secret: 'secret-123' }] } }));
    let out = '';
    let err = '';
    const io = { out: (x: string) => void (out += x), err: (x: string) => void (err += x), env: {} };
    t.equal(await main(['sessions', 'summary', '--company', 'c-acme', '--config', file], io), 0, `CLI summary (${err})`);
    t.same(JSON.parse(out), { count: 1, by_provider: { 'acme-kc': 1 } });
    out = '';
    t.equal(await main(['sessions', 'revoke', '--company', 'c-acme', '--all', '--config', file], io), 0, 'CLI revoke --all');
    t.same(JSON.parse(out), { revoked: 1 });
    t.match(err, /"audit":"sessions_revoked"/, 'the CLI audits too');
    t.ok((await s.endedWithin(s.a.publicPort, bob.browser)) <= 1000, 'ended on A within a second');
    t.equal(await s.status(s.b.publicPort, bob.browser), 401, 'and on B');
    const metrics = await (await fetch(`${s.a.adminUrl}/metrics`)).text();
    t.match(metrics, /tenant_gate_sessions_ended_total\{cause="revoked"\} 2/, 'revocations counted by cause');
  });
}
