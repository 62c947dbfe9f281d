import { join } from 'node:path';
import t from 'tap';
import { createStore } from '../../src/directory/open-store.js';
import type { TenantStore } from '../../src/directory/types.js';
import { StoreUnavailableError } from '../../src/errors.js';
import { adminCall, publicRequest, startGateway, startUpstream, tempDir } from '../helpers/gateway.js';

type Test = import('tap').Test;

const NAV = { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };
const JSON_ACCEPT = { accept: 'application/json' };
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

/** Store methods that keep working while the store is "down": opening and closing it. */
const LIFECYCLE = new Set(['init', 'close', 'kind']);

/** A real store whose every call but init and close fails with StoreUnavailableError while `down` is set. */
function flaky(inner: TenantStore) {
  const state = { down: false, failed: 0 };
  const store = new Proxy(inner, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function' || typeof prop !== 'string' || LIFECYCLE.has(prop)) return typeof value === 'function' ? value.bind(target) : value;
      return async (...args: unknown[]) => {
        if (state.down) {
          state.failed++;
          throw new StoreUnavailableError(new Error('connection refused'));
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store, state };
}

async function setup(t: Test) {
  const dir = tempDir(t);
  const { store, state } = flaky(await createStore(`sqlite:${join(dir, 'directory.db')}`));
  let clock = 1_800_000_000_000;
  const upstream = await startUpstream(t);
  const gw = await startGateway(
    t,
    { upstreams: { webapp: upstream.url }, cache: { ttlSeconds: 60, negativeTtlSeconds: 5, staleSeconds: 300 }, rateLimit: { discoveryPerMinute: 100_000 } },
    { dir, deps: { store, now: () => clock } },
  );
  const put = (company: string, sso: Record<string, unknown>) => adminCall(gw.adminUrl, 'system.update_company_sso_config', { company, sso });
  await put('c-acme', { tenant: 'acme', domains: ['acme.com'], hosts: ['ml.acme.com'] });
  await put('c-initech', { tenant: 'initech', domains: ['initech.com'] });
  await adminCall(gw.adminUrl, 'sso.save_provider_configuration', {
    provider: 'keycloak',
    company: 'c-acme',
    configuration: { id: 'c-acme', client_id: 'acme-webapp', authorization_endpoint: 'https://kc.example.com/realms/acme/protocol/openid-connect/auth' },
  });
  const req = (path: string, host = 'ml.example.com', headers: Record<string, string> = JSON_ACCEPT, extra: { method?: string; body?: string } = {}) =>
    publicRequest(gw.publicPort, { path, host, headers, ...extra });
  const discover = (email: string) => req('/login', 'ml.example.com', FORM, { method: 'POST', body: `email=${encodeURIComponent(email)}` });
  return { gw, upstream, state, req, discover, advance: (ms: number) => (clock += ms) };
}

t.test('the store down: cached tenants keep working within the stale window, unknown ones get 503 with Retry-After, readiness fails, all recovers', async (t) => {
  const s = await setup(t);
  // Known and used while the store is up: these are cached.
  t.equal((await s.req('/projects', 'acme.ml.example.com')).status, 200, 'acme (vanity host) served');
  t.equal((await s.req('/projects', 'ml.acme.com')).status, 200, 'acme (custom host) served');
  t.equal((await s.discover('a@acme.com')).headers.location, '/login/acme?login_hint=a%40acme.com', 'acme discovered');
  t.equal((await s.req('/callback_acme-webapp?code=a&state=b', 'acme.ml.example.com')).status, 200, "acme's callback passed on");
  t.equal((await s.req('/login/acme')).status, 200, "acme's login page served");

  s.state.down = true;
  s.advance(120_000); // past the 60 s freshness: entries are stale, within the 300 s stale window.

  t.equal((await s.req('/projects', 'acme.ml.example.com')).status, 200, 'store down: a cached tenant host is still served');
  t.equal((await s.req('/projects', 'ml.acme.com')).status, 200, 'so is its cached custom host');
  t.equal((await s.discover('a@acme.com')).status, 303, 'a cached domain is still discovered');
  t.equal((await s.req('/callback_acme-webapp?code=a&state=b', 'acme.ml.example.com')).status, 200, 'a cached client still passes');
  t.equal((await s.req('/login/acme')).status, 200, 'a cached login page is still served');
  t.equal((await s.req('/projects')).status, 200, 'the base host needs no store');
  t.ok(s.state.failed > 0, 'the store was really asked and failed');

  for (const [what, path, host] of [
    ['an uncached tenant host', '/projects', 'initech.ml.example.com'],
    ['an uncached custom host', '/projects', 'sso.initech.com'],
    ['an uncached tenant login', '/login/initech', 'ml.example.com'],
    ['an uncached client', '/callback_initech-webapp?code=a&state=b', 'ml.example.com'],
  ] as const) {
    const r = await s.req(path, host, NAV);
    t.equal(r.status, 503, `store down: ${what} gets 503`);
    t.ok(r.headers['retry-after'], `with Retry-After (${what})`);
    t.match(r.headers['content-type'], /text\/html/, `as a page (${what})`);
  }
  const unknownDomain = await s.discover('b@initech.com');
  t.equal(unknownDomain.status, 503, 'store down: discovery of an uncached domain gets 503');
  t.ok(unknownDomain.headers['retry-after'], 'with Retry-After (discovery)');
  t.equal(s.upstream.seen.filter((x) => x.headers['x-forwarded-host'] !== 'acme.ml.example.com' && x.headers['x-forwarded-host'] !== 'ml.acme.com' && x.headers['x-forwarded-host'] !== 'ml.example.com').length, 0, 'nothing unresolved reached the webapp');

  const ready = await s.req('/readyz');
  t.equal(ready.status, 503, 'public readiness fails');
  t.match(ready.body, /"store":"failing"/);
  t.notMatch(ready.body, /connection refused/, 'without the error text');
  t.equal((await fetch(`${s.gw.adminUrl}/readyz`)).status, 503, 'admin readiness fails');
  t.equal((await s.req('/healthz')).status, 200, 'liveness does not depend on the store');
  const write = await adminCall(s.gw.adminUrl, 'system.update_company_sso_config', { company: 'c-new', sso: { tenant: 'newco' } });
  t.equal(write.status, 503, 'an admin write gets 503');
  t.equal(write.meta.result_code, 503);

  s.advance(400_000); // past the stale window
  const expired = await s.req('/projects', 'acme.ml.example.com', NAV);
  t.equal(expired.status, 503, 'past the stale window even a cached tenant gets 503');
  t.ok(expired.headers['retry-after'], 'with Retry-After');

  s.state.down = false;
  t.equal((await s.req('/readyz')).status, 200, 'the store back: ready again');
  t.equal((await s.req('/projects', 'acme.ml.example.com')).status, 200, 'acme served');
  t.equal((await s.req('/projects', 'initech.ml.example.com')).status, 200, 'the uncached tenant is served now');
  t.equal((await s.discover('b@initech.com')).status, 303, 'and discovered');
  t.equal((await adminCall(s.gw.adminUrl, 'system.update_company_sso_config', { company: 'c-new', sso: { tenant: 'newco' } })).status, 200, 'admin writes work again');
  t.equal((await s.req('/projects', 'newco.ml.example.com')).status, 200, 'and take effect');
});

t.test('the store flapping under load: every answer is a served page, a 503 or a 421, never another 5xx', async (t) => {
  const s = await setup(t);
  const hosts = ['acme.ml.example.com', 'ml.acme.com', 'initech.ml.example.com', 'nobody.ml.example.com', 'ml.example.com'];
  await Promise.all(hosts.map((h) => s.req('/warm', h)));
  const statuses = new Map<number, number>();
  const deadline = Date.now() + 2000;
  let round = 0;
  while (Date.now() < deadline && round < 200) {
    round++;
    s.state.down = round % 3 !== 0;
    s.advance(15_000);
    const rs = await Promise.all(hosts.map((h, i) => (i % 2 ? s.req(`/p/${round}`, h) : s.discover(`u${round}@${i === 0 ? 'acme.com' : 'initech.com'}`))));
    for (const r of rs) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
  }
  s.state.down = false;
  const seen = [...statuses.keys()].sort();
  t.ok(seen.every((code) => [200, 303, 421, 503].includes(code)), `statuses seen: ${JSON.stringify(Object.fromEntries(statuses))}`);
  t.ok(statuses.get(503), 'the outage was visible');
  t.ok(statuses.get(200), 'and service continued');
  t.equal((await s.req('/readyz')).status, 200, 'ready afterwards');
});
