/**
 * `npm run soak [-- --seconds N]`: a bounded soak test of authenticate mode.
 *
 * A gateway runs in a child process (this file with `--gateway`) in front of a real
 * upstream and two real identity providers (tenants acme and globex), all on
 * loopback. Mixed traffic runs against it for `--seconds` (default 180): signed-in page
 * loads and API calls, vanity redirects, email discovery, malformed and forged
 * callbacks, unknown hosts, and full logins (with logouts, so the session pool stays
 * the size of a steady user population).
 *
 * Every 10 s the gateway process reports its RSS, its live V8 heap (`heapUsed` right
 * after a full collection, forced for the sample: the process runs with --expose-gc),
 * the highest heap of the interval and its event-loop delay (perf_hooks
 * monitorEventLoopDelay, read before the forced collection so that pause is in no
 * interval; shown as the delay beyond the histogram's own 10 ms timer); a table row is
 * printed. At the end the mean of the middle third of the
 * rows is compared with the last third. The run fails (exit code 1) when
 * - the live heap grew by more than max(8 MB, 15 %): after warm-up the live heap of a
 *   gateway is flat; at the few hundred requests a second of this run, a third of a
 *   3-minute run is >= 15 000 requests, so a leak of 0.5 KB per request (one retained
 *   request, reply or session object) shows as >= 8 MB, while the bounded caches that
 *   legitimately fill during a run (the directory LRU, at most `cache.max` entries of a
 *   few hundred bytes; the rate limiter; the session LRU of a steady user pool) stay
 *   within a few MB;
 * - or RSS grew by more than max(32 MB, 20 %): RSS also holds freed pages that the
 *   allocator keeps, so its band is wider; this catches native (Buffer, socket) leaks
 *   the V8 heap does not show;
 * - or any request got a 5xx, or a check of the traffic mix failed more than 1 % of
 *   the time.
 * Everything started here stops by itself: the child exits on `stop`, on a lost parent
 * and at its own deadline.
 */
import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const INTERVAL_MS = 10_000;
/** Sampling timer of the event-loop delay histogram; its values include this period, which is taken off. */
const ELD_RESOLUTION_MS = 10;
const MB = 1024 * 1024;
const ADMIN = { key: 'soak-admin', secret: 'soak-admin-secret-value' };
const SESSION_SECRET = 'soak-session-secret-of-at-least-32-characters';

/** What the gateway process reports for one interval. */
interface Sample {
  rssMb: number;
  /** V8 heap in use right after a full garbage collection: what is really kept. */
  heapLiveMb: number;
  /** Highest V8 heap in use seen during the interval. */
  heapMaxMb: number;
  eldP50: number;
  eldP99: number;
  eldMax: number;
}

type ToChild = { type: 'sample' } | { type: 'stop' };
type FromChild = { type: 'ready'; publicPort: number; adminPort: number } | ({ type: 'sample' } & Sample) | { type: 'error'; message: string };

// ---------------------------------------------------------------------------------------
// The gateway process.

async function gatewayProcess(configJson: string, lifetimeMs: number): Promise<void> {
  const { buildApp } = await import('../src/app.js');
  const { loadConfig } = await import('../src/config/load.js');
  const send = (m: FromChild) => process.send?.(m);
  const gateway = await buildApp(loadConfig({ object: JSON.parse(configJson) as Record<string, unknown>, env: {} }));
  const addresses = await gateway.listen();

  const eld = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
  const excess = (ns: number) => Math.max(0, ns / 1e6 - ELD_RESOLUTION_MS);
  eld.enable();
  let heapMax = 0;
  const sampler = setInterval(() => {
    heapMax = Math.max(heapMax, process.memoryUsage().heapUsed);
  }, 1000);
  const collect = (globalThis as { gc?: () => void }).gc;

  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    clearInterval(sampler);
    eld.disable();
    await gateway.close().catch(() => undefined);
    process.exit(code);
  };
  setTimeout(() => void stop(3), lifetimeMs).unref();
  process.on('disconnect', () => void stop(4));
  process.on('message', (m: ToChild) => {
    if (m.type === 'stop') void stop(0);
    if (m.type === 'sample') {
      // Delay first, so the forced collection below is not counted in any interval.
      const delay = { eldP50: excess(eld.percentile(50)), eldP99: excess(eld.percentile(99)), eldMax: excess(eld.max) };
      const before = process.memoryUsage().heapUsed;
      collect?.();
      const used = process.memoryUsage();
      send({ type: 'sample', rssMb: used.rss / MB, heapLiveMb: used.heapUsed / MB, heapMaxMb: Math.max(heapMax, before) / MB, ...delay });
      eld.reset();
      heapMax = 0;
    }
  });
  send({ type: 'ready', publicPort: addresses.public.port, adminPort: addresses.admin.port });
}

// ---------------------------------------------------------------------------------------
// The orchestrator.

interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(agent: http.Agent, port: number, o: { path: string; host: string; method?: string; headers?: Record<string, string>; body?: string }): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, agent, path: o.path, method: o.method ?? 'GET', headers: { host: o.host, ...o.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(15_000, () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    if (o.body !== undefined) req.write(o.body);
    req.end();
  });
}

function table(rows: Array<Record<string, string | number>>): string {
  const keys = Object.keys(rows[0] ?? {});
  const cell = (v: string | number) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(1)) : v);
  const widths = keys.map((k) => Math.max(k.length, ...rows.map((r) => cell(r[k]!).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padStart(widths[i]!)).join('  ');
  return [line(keys), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(keys.map((k) => cell(r[k]!))))].join('\n');
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

async function orchestrate(seconds: number): Promise<number> {
  const { startIdp, loginAtIdp } = await import('../test/helpers/idp.js');
  const started = Date.now();
  const hardDeadline = setTimeout(() => {
    process.stderr.write('soak: hard deadline reached, stopping\n');
    process.exit(2);
  }, (seconds + 120) * 1000);
  hardDeadline.unref();

  // Upstream: echoes the identity it was given.
  const upstream = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ path: req.url, user: req.headers['x-auth-request-user'] ?? null }));
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;

  const acmeUsers = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`user${i}`, { email: `user${i}@acme.com`, email_verified: true, name: `User ${i}`, tenant_key: 'acme', ad_groups_trusted: ['ml-users'] }]));
  const globexUsers = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`g${i}`, { email: `g${i}@globex.com`, email_verified: true, name: `G ${i}`, tenant_key: 'globex', ad_groups_trusted: ['staff'] }]));
  const acmeIdp = await startIdp({
    clients: [{ client_id: 'acme-web', client_secret: 'acme-soak-secret-0123456789', redirect_uris: ['http://acme.ml.example.com/callback_acme-web'], post_logout_redirect_uris: ['http://acme.ml.example.com/login/acme'] }],
    users: acmeUsers,
  });
  const globexIdp = await startIdp({
    clients: [{ client_id: 'globex-web', client_secret: 'globex-soak-secret-0123456789', redirect_uris: ['http://globex.ml.example.com/callback_globex-web'], post_logout_redirect_uris: ['http://globex.ml.example.com/login/globex'] }],
    users: globexUsers,
  });

  const dir = mkdtempSync(join(tmpdir(), 'tenant-gate-soak-'));
  const config = {
    mode: 'authenticate',
    public: { host: '127.0.0.1', port: 0, url: 'http://ml.example.com' },
    admin: { host: '127.0.0.1', port: 0, credentials: [ADMIN] },
    upstreams: { webapp: upstreamUrl, apiserver: upstreamUrl },
    tenancy: { baseDomain: 'ml.example.com' },
    store: { url: `sqlite:${join(dir, 'directory.db')}` },
    session: { secret: SESSION_SECRET },
    oidc: { insecureAllowPrivateProviders: true },
    rateLimit: { discoveryPerMinute: 10_000_000, loginPerMinute: 10_000_000, callbackPerMinute: 10_000_000 },
    log: { level: 'error' },
  };
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--gateway', JSON.stringify(config), '--lifetime', String((seconds + 90) * 1000)], {
    execArgv: ['--expose-gc', '--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const cleanup = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', cleanup);
  const messages: FromChild[] = [];
  const waiters: Array<(m: FromChild) => void> = [];
  child.on('message', (m: FromChild) => {
    const w = waiters.shift();
    if (w) w(m);
    else messages.push(m);
  });
  const next = (ms: number) =>
    new Promise<FromChild>((resolve, reject) => {
      const m = messages.shift();
      if (m) return resolve(m);
      const timer = setTimeout(() => reject(new Error('the gateway process did not answer')), ms);
      waiters.push((x) => {
        clearTimeout(timer);
        resolve(x);
      });
    });
  const ready = await next(60_000);
  if (ready.type !== 'ready') throw new Error(`gateway process: ${JSON.stringify(ready)}`);
  const port = ready.publicPort;
  const adminUrl = `http://127.0.0.1:${ready.adminPort}`;

  const admin = async (endpoint: string, body: unknown) => {
    const r = await fetch(`${adminUrl}/${endpoint}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${ADMIN.key}:${ADMIN.secret}`).toString('base64')}` }, body: JSON.stringify(body) });
    if (r.status !== 200) throw new Error(`${endpoint}: ${r.status} ${await r.text()}`);
  };
  await admin('system.update_company_sso_config', { company: 'c-acme', sso: { tenant: 'acme', group_mapping: { 'ml-users': 'Users' }, admin_groups: [], domains: ['acme.com'] } });
  await admin('sso.save_provider_configuration', { provider: 'keycloak', company: 'c-acme', configuration: { id: 'c-acme', client_id: 'acme-web', client_secret: 'acme-soak-secret-0123456789', issuer: acmeIdp.issuer, logout_from_provider: true, claim_tenant: 'tenant_key', group_enabled: true, claim_groups: 'ad_groups_trusted' } });
  await admin('system.update_company_sso_config', { company: 'c-globex', sso: { tenant: 'globex', group_mapping: { staff: 'Staff' }, admin_groups: [], domains: ['globex.com'] } });
  await admin('sso.save_provider_configuration', { provider: 'keycloak', company: 'c-globex', configuration: { id: 'c-globex', client_id: 'globex-web', client_secret: 'globex-soak-secret-0123456789', issuer: globexIdp.issuer, claim_tenant: 'tenant_key', group_enabled: true, claim_groups: 'ad_groups_trusted' } });

  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const tenants = [
    { id: 'acme', host: 'acme.ml.example.com', users: Object.keys(acmeUsers) },
    { id: 'globex', host: 'globex.ml.example.com', users: Object.keys(globexUsers) },
  ];
  type Session = { tenant: (typeof tenants)[number]; cookie: string };
  const sessions: Session[] = [];
  const POOL = 40;

  const stats = { requests: 0, byKind: new Map<string, { n: number; bad: number }>(), fivexx: 0, failures: [] as string[] };
  const record = (kind: string, ok: boolean, detail: string, status: number) => {
    stats.requests++;
    const s = stats.byKind.get(kind) ?? { n: 0, bad: 0 };
    s.n++;
    if (!ok) {
      s.bad++;
      if (stats.failures.length < 20) stats.failures.push(`${kind}: ${detail}`);
    }
    if (status >= 500) stats.fivexx++;
    stats.byKind.set(kind, s);
  };

  async function login(tenant: (typeof tenants)[number]): Promise<void> {
    const user = tenant.users[Math.floor(Math.random() * tenant.users.length)]!;
    const start = await request(agent, port, { path: `/login/${tenant.id}`, host: tenant.host });
    record('login start', start.status === 302, `status ${start.status}`, start.status);
    if (start.status !== 302) return;
    const tx = String(start.headers['set-cookie']?.[0] ?? '').split(';')[0]!;
    const { callbackUrl } = await loginAtIdp(start.headers.location!, user);
    const cb = new URL(callbackUrl);
    const done = await request(agent, port, { path: cb.pathname + cb.search, host: cb.host, headers: { cookie: tx } });
    const session = (done.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]!).find((c) => c.startsWith('tg_session=') && c.length > 'tg_session='.length);
    record('login callback', done.status === 302 && session !== undefined, `status ${done.status}`, done.status);
    if (!session) return;
    sessions.push({ tenant, cookie: session });
    while (sessions.length > POOL) {
      const old = sessions.shift()!;
      const out = await request(agent, port, { path: '/logout', host: old.tenant.host, headers: { cookie: old.cookie } });
      record('logout', out.status === 302, `status ${out.status}`, out.status);
    }
  }

  const NAV = { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(Math.random() * xs.length)]!;
  const actions: Array<[number, string, () => Promise<void>]> = [
    [30, 'signed-in page', async () => {
      const s = pick(sessions);
      const r = await request(agent, port, { path: `/projects/${Math.floor(Math.random() * 1000)}`, host: s.tenant.host, headers: { ...NAV, cookie: s.cookie } });
      record('signed-in page', r.status === 200, `status ${r.status}`, r.status);
    }],
    [25, 'api call', async () => {
      const s = pick(sessions);
      const r = await request(agent, port, { path: '/api/v2.31/projects.get_all', host: s.tenant.host, method: 'POST', headers: { accept: 'application/json', 'content-type': 'application/json', cookie: s.cookie }, body: '{"page":0}' });
      record('api call', r.status === 200 && r.body.includes('@'), `status ${r.status}`, r.status);
    }],
    [12, 'vanity redirect', async () => {
      const tenant = pick(tenants);
      const r = await request(agent, port, { path: '/experiments?x=1', host: tenant.host, headers: NAV });
      record('vanity redirect', r.status === 302 && String(r.headers.location).startsWith(`/login/${tenant.id}`), `status ${r.status}`, r.status);
    }],
    [10, 'discovery', async () => {
      const known = Math.random() < 0.5;
      const email = known ? `someone@${pick(['acme.com', 'globex.com'])}` : `x${Math.floor(Math.random() * 1e6)}@unknown${Math.floor(Math.random() * 1e6)}.example`;
      const r = await request(agent, port, { path: '/login', host: 'ml.example.com', method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `email=${encodeURIComponent(email)}` });
      record('discovery', known ? r.status === 303 : r.status === 200, `status ${r.status}`, r.status);
    }],
    [10, 'bad callback', async () => {
      const path = pick([
        `/callback_acme-web?code=${Math.random().toString(36).slice(2)}&state=forged`,
        '/callback_acme-web?code=a&code=b&state=c',
        '/callback_acme-web%2f..%2fadmin?code=a&state=b',
        `/callback_unknown${Math.floor(Math.random() * 1e6)}?code=a&state=b`,
        '/callback_globex-web?code=a&state=b',
      ]);
      const r = await request(agent, port, { path, host: 'acme.ml.example.com' });
      record('bad callback', r.status === 400 || r.status === 401, `status ${r.status} ${path}`, r.status);
    }],
    [8, 'unknown host', async () => {
      const host = `t${Math.floor(Math.random() * 1e6)}.ml.example.com`;
      const r = await request(agent, port, { path: '/', host, headers: NAV });
      record('unknown host', r.status === 421, `status ${r.status}`, r.status);
    }],
    [5, 'no session', async () => {
      const r = await request(agent, port, { path: '/api/x', host: pick(tenants).host, headers: { accept: 'application/json' } });
      record('no session', r.status === 401, `status ${r.status}`, r.status);
    }],
  ];
  const totalWeight = actions.reduce((a, [w]) => a + w, 0);
  const chooseAction = () => {
    let x = Math.random() * totalWeight;
    for (const a of actions) if ((x -= a[0]) < 0) return a;
    return actions[0]!;
  };

  for (const tenant of tenants) for (let i = 0; i < 5; i++) await login(tenant);
  process.stdout.write(`soak: authenticate mode, ${seconds} s of mixed traffic against 127.0.0.1:${port}, a sample every ${INTERVAL_MS / 1000} s\n`);

  const trafficStart = Date.now();
  const deadline = trafficStart + seconds * 1000;
  const MAX_OPS = 50_000_000;
  let ops = 0;
  const worker = async () => {
    while (Date.now() < deadline && ops++ < MAX_OPS) {
      const [, kind, run] = chooseAction();
      await run().catch((err: Error) => record(kind, false, err.message, 0));
    }
  };
  const loginWorker = async () => {
    while (Date.now() < deadline && ops++ < MAX_OPS) {
      await login(pick(tenants)).catch((err: Error) => record('login', false, err.message, 0));
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  const rows: Array<Record<string, string | number>> = [];
  const samples: Sample[] = [];
  let lastCount = 0;
  let lastAt = trafficStart;
  const sampleLoop = async () => {
    for (let i = 1; i <= Math.floor((seconds * 1000) / INTERVAL_MS); i++) {
      await new Promise((r) => setTimeout(r, Math.max(0, trafficStart + i * INTERVAL_MS - Date.now())));
      child.send({ type: 'sample' } satisfies ToChild);
      const m = await next(15_000);
      if (m.type !== 'sample') continue;
      samples.push(m);
      const now = Date.now();
      const row = {
        't (s)': Math.round((now - trafficStart) / 1000),
        requests: stats.requests - lastCount,
        'req/s': (stats.requests - lastCount) / ((now - lastAt) / 1000),
        sessions: sessions.length,
        '5xx': stats.fivexx,
        'RSS MB': m.rssMb,
        'live heap MB': m.heapLiveMb,
        'heap max MB': m.heapMaxMb,
        'ELD p50 ms': m.eldP50,
        'ELD p99 ms': m.eldP99,
        'ELD max ms': m.eldMax,
      };
      lastCount = stats.requests;
      lastAt = now;
      rows.push(row);
      process.stdout.write(`${rows.length === 1 ? `${table([row]).split('\n').slice(0, 2).join('\n')}\n` : ''}${table([row]).split('\n')[2]}\n`);
    }
  };

  await Promise.all([...Array.from({ length: 12 }, worker), loginWorker(), sampleLoop()]);

  child.send({ type: 'stop' } satisfies ToChild);
  await new Promise<void>((r) => {
    if (child.exitCode !== null) r();
    else child.once('exit', () => r());
  });
  agent.destroy();
  await Promise.all([acmeIdp.close(), globexIdp.close(), new Promise<void>((r) => upstream.close(() => r()))]);
  upstream.closeAllConnections();

  process.stdout.write(`\n${table(rows)}\n\n`);
  const kinds = [...stats.byKind].map(([kind, s]) => ({ kind, requests: s.n, unexpected: s.bad }));
  process.stdout.write(`${table(kinds)}\n\n`);

  let failed = false;
  const third = Math.floor(samples.length / 3);
  if (samples.length < 6) {
    process.stdout.write(`too few samples (${samples.length}) to judge memory: run for at least 60 s\n`);
  } else {
    const middle = samples.slice(third, 2 * third);
    const last = samples.slice(samples.length - third);
    const verdict = (name: string, pickValue: (s: Sample) => number, minMb: number, ratio: number) => {
      const a = mean(middle.map(pickValue));
      const b = mean(last.map(pickValue));
      const limit = Math.max(minMb, a * ratio);
      const grew = b - a > limit;
      failed ||= grew;
      process.stdout.write(`${name}: middle third ${a.toFixed(1)} MB, last third ${b.toFixed(1)} MB, growth ${(b - a).toFixed(1)} MB (limit ${limit.toFixed(1)} MB): ${grew ? 'GROWING' : 'levelled off'}\n`);
    };
    verdict('live heap', (s) => s.heapLiveMb, 8, 0.15);
    verdict('RSS', (s) => s.rssMb, 32, 0.2);
  }
  const unexpected = kinds.reduce((a, k) => a + k.unexpected, 0);
  if (stats.fivexx > 0) {
    failed = true;
    process.stdout.write(`${stats.fivexx} requests got a 5xx\n`);
  }
  if (unexpected > stats.requests * 0.01) {
    failed = true;
    process.stdout.write(`${unexpected} of ${stats.requests} requests did not get the expected answer\n`);
  }
  if (stats.failures.length) process.stdout.write(`first unexpected answers:\n  ${stats.failures.join('\n  ')}\n`);
  process.stdout.write(`${stats.requests} requests in ${((Date.now() - trafficStart) / 1000).toFixed(0)} s of traffic (${((trafficStart - started) / 1000).toFixed(0)} s of setup): ${failed ? 'FAIL' : 'PASS'}\n`);
  return failed ? 1 : 0;
}

const { values } = parseArgs({
  options: { seconds: { type: 'string' }, gateway: { type: 'string' }, lifetime: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
});
if (values.help) {
  process.stdout.write('usage: npm run soak -- [--seconds N]   (default 180)\n');
} else if (values.gateway !== undefined) {
  gatewayProcess(values.gateway, Number(values.lifetime ?? 600_000)).catch((err: Error) => {
    process.send?.({ type: 'error', message: err.message } satisfies FromChild);
    process.exit(1);
  });
} else {
  const seconds = values.seconds === undefined ? 180 : Number(values.seconds);
  if (!Number.isInteger(seconds) || seconds < 10 || seconds > 3600) {
    process.stderr.write('--seconds must be an integer between 10 and 3600\n');
    process.exit(2);
  }
  orchestrate(seconds).then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`soak: ${err.stack ?? err.message}\n`);
      process.exit(2);
    },
  );
}
