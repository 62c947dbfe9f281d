/**
 * 7. Forward-auth: nginx proxies, an auth service decides (`auth_request`). Same
 * upstream, same run: nginx alone (b'); nginx + auth_request to a do-nothing Node auth
 * service (s), the most any HTTP auth service can reach in that slot; the same to
 * tenant-gate in authenticate mode with a session (f); (s) and (f) with nginx caching
 * the auth answer 5 s (gs, g); and tenant-gate's built-in proxy (d) for comparison.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { publicRequest } from '../../test/helpers/gateway.js';
import { since, type BenchContext } from '../context.js';
import { ACME_IDP, TENANT_HOST, addAcme, gatewayConfig, launchGateway, loginThroughGateway } from '../gateways.js';
import { measureInterleaved, summarise, type Measurement, type Series } from '../measure.js';
import { fmt, ratio, ratio3, type Check, type SectionResult } from '../report.js';
import { freePort, launchServer, nginxVersion, startNginxHttp, type Target } from '../servers.js';

const PATH = '/projects/all?page=1';
const CACHE_SECONDS = 5;
/** Turns per target and round (see measureInterleaved). */
const SLICES = 3;

type Key = 'plain' | 'null' | 'gate' | 'nullCached' | 'gateCached' | 'builtin';

/** The auth location and the protected location of one nginx server block. */
function authServer(port: number, auth: string, authPath: string, cached: boolean): string {
  return `  server {
    listen 127.0.0.1:${port};
    location = /_tenant_gate_auth {
      internal;
      proxy_pass http://${auth}${authPath};
      proxy_pass_request_body off;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Content-Length "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Forwarded-Proto $scheme;
${cached ? `      proxy_cache auth_cache;\n      proxy_cache_key "$http_host$cookie_tg_session";\n      proxy_cache_valid 200 ${CACHE_SECONDS}s;\n` : ''}    }
    location / {
      auth_request /_tenant_gate_auth;
      auth_request_set $tg_user $upstream_http_x_auth_request_user;
      auth_request_set $tg_tenant $upstream_http_x_auth_request_tenant;
      auth_request_set $tg_groups $upstream_http_x_auth_request_groups;
      proxy_pass http://webapp;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Auth-Request-User $tg_user;
      proxy_set_header X-Auth-Request-Tenant $tg_tenant;
      proxy_set_header X-Auth-Request-Groups $tg_groups;
    }
  }`;
}

export async function forwardAuthSection(ctx: BenchContext): Promise<SectionResult> {
  const t0 = performance.now();
  const notes: string[] = [];
  const started: Target[] = [];
  const keep = <T extends Target>(t: T) => {
    started.push(t);
    return t;
  };
  if (!ctx.nginx) {
    return {
      id: 'forward-auth',
      title: '7. Forward-auth',
      about: 'Not measured: nginx is not installed.',
      tables: [],
      checks: [],
      notes: ['nginx is not installed (`command -v nginx` finds nothing).'],
      profiles: [],
      elapsedS: since(t0),
    };
  }
  try {
    const upstream = keep(await launchServer('upstream', { kind: 'upstream' }));
    const nullAuth = keep(await launchServer('do-nothing auth service', { kind: 'auth-ok' }));
    const idp = keep(await launchServer('identity provider', { kind: 'idp', ...ACME_IDP }));
    const dir = join(ctx.tmp, 'forward-auth');
    mkdirSync(dir, { recursive: true });
    const base = gatewayConfig({ mode: 'authenticate', upstream: upstream.url, dir, logLevel: ctx.logLevel });
    const config = { ...base, public: { ...(base.public as object), trustedProxies: ['127.0.0.1'] }, forwardAuth: { cacheSeconds: CACHE_SECONDS } };
    const gw = keep(await launchGateway('tenant-gate authenticate (forward-auth)', { config }));
    await addAcme(gw.adminUrl, String(idp.handle.info.issuer));
    const session = await loginThroughGateway(gw.port);
    const headers = { host: TENANT_HOST, accept: 'application/json', cookie: `clearml_token_basic=webapp-session-token; ${session}` };

    const ports = { plain: await freePort(), null: await freePort(), gate: await freePort(), nullCached: await freePort(), gateCached: await freePort() };
    const cacheDir = join(ctx.tmp, 'forward-auth-nginx', 'cache');
    mkdirSync(cacheDir, { recursive: true });
    // nginx's worker (www-data when run as root) writes the cache: it must reach the folder.
    chmodSync(ctx.tmp, 0o711);
    chmodSync(join(ctx.tmp, 'forward-auth-nginx'), 0o711);
    chmodSync(cacheDir, 0o777);
    const nullHost = `127.0.0.1:${nullAuth.port}`;
    const gateHost = `127.0.0.1:${gw.port}`;
    const nginx = keep(
      await startNginxHttp(
        ctx.nginx,
        join(ctx.tmp, 'forward-auth-nginx'),
        ports.plain,
        `  upstream webapp {
    server 127.0.0.1:${upstream.port};
    keepalive 128;
  }
  proxy_cache_path ${cacheDir} levels=1 keys_zone=auth_cache:10m;
  server {
    listen 127.0.0.1:${ports.plain};
    location / {
      proxy_pass http://webapp;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
    }
  }
  upstream null_auth {
    server ${nullHost};
    keepalive 128;
  }
  upstream gate {
    server ${gateHost};
    keepalive 128;
  }
${authServer(ports.null, 'null_auth', '/_auth/auth-request', false)}
${authServer(ports.gate, 'gate', '/_auth/auth-request', false)}
${authServer(ports.nullCached, 'null_auth', '/_auth/auth-request', true)}
${authServer(ports.gateCached, 'gate', '/_auth/auth-request', true)}`,
      ),
    );
    const nginxPids = () => nginx.pids();
    const rows: { key: Key; label: string; port: number; pids: () => number[]; runs: Measurement[] }[] = [
      { key: 'plain', label: "(b') nginx alone", port: ports.plain, pids: nginxPids, runs: [] },
      { key: 'null', label: '(s) nginx + auth_request to a do-nothing Node service', port: ports.null, pids: () => [...nginxPids(), ...nullAuth.pids()], runs: [] },
      { key: 'gate', label: '(f) nginx + auth_request to tenant-gate (authenticate, session)', port: ports.gate, pids: () => [...nginxPids(), ...gw.pids()], runs: [] },
      { key: 'nullCached', label: `(gs) (s), auth answer cached ${CACHE_SECONDS} s`, port: ports.nullCached, pids: () => [...nginxPids(), ...nullAuth.pids()], runs: [] },
      { key: 'gateCached', label: `(g) (f), auth answer cached ${CACHE_SECONDS} s`, port: ports.gateCached, pids: () => [...nginxPids(), ...gw.pids()], runs: [] },
      { key: 'builtin', label: '(d) tenant-gate built-in proxy (authenticate, session)', port: gw.port, pids: () => gw.pids(), runs: [] },
    ];
    for (const row of rows) {
      const r = await publicRequest(row.port, { path: PATH, host: TENANT_HOST, headers });
      if (r.status !== 200 || !r.body.includes('"app":"webapp"')) throw new Error(`${row.label} does not reach the upstream: ${r.status} ${r.body.slice(0, 200)}`);
    }
    for (let round = 0; round < ctx.rounds; round++) {
      const order = round % 2 === 0 ? rows : [...rows].reverse();
      const ms = await measureInterleaved(order.map((row) => ({ load: { url: `http://127.0.0.1:${row.port}${PATH}`, headers, connections: ctx.connections }, pids: row.pids })), ctx.timing, 200, SLICES);
      for (const [i, row] of order.entries()) {
        const m = ms[i]!;
        row.runs.push(m);
        console.log(`  forward-auth round ${round + 1}: ${row.label}: ${fmt(m.rps)} req/s, p99 ${fmt(m.p99, 1)} ms`);
      }
    }
    const s = new Map<Key, Series>(rows.map((r) => [r.key, summarise(r.runs)]));
    const get = (k: Key) => s.get(k)!;
    const b = get('plain');
    const table = {
      columns: ['path', 'req/s', "vs (b')", 'p50 ms', 'p99 ms', 'CPU µs/req (all its processes)', 'req/s by round', 'other load'],
      rows: rows.map((r) => {
        const x = get(r.key);
        return [r.label, fmt(x.rps), ratio(x.rps / b.rps), fmt(x.p50, 1), fmt(x.p99, 1), fmt(x.cpuUsPerReq, 1), r.runs.map((m) => fmt(m.rps)).join(' / '), `${fmt(x.foreign * 100)}%`];
      }),
    };
    for (const r of rows) {
      const x = get(r.key);
      if (x.unexpected > 0) notes.push(`${r.label}: ${x.unexpected} responses were not 200 or failed (${JSON.stringify(r.runs.map((m) => m.statuses))}).`);
    }
    const f = get('gate');
    const g = get('gateCached');
    const d = get('builtin');
    const checks: Check[] = [
      { what: "(f)/(b') headline", measured: ratio3(f.rps / b.rps), target: 'informational', pass: undefined },
      { what: "(g)/(b') headline", measured: ratio3(g.rps / b.rps), target: 'informational', pass: undefined },
      { what: '(f) req/s vs (s)', measured: ratio3(f.rps / get('null').rps), target: '≥ 0.75', pass: f.rps / get('null').rps >= 0.75 && f.unexpected === 0 },
      { what: '(g) req/s vs (gs)', measured: ratio3(g.rps / get('nullCached').rps), target: '≥ 0.90', pass: g.rps / get('nullCached').rps >= 0.9 && g.unexpected === 0 },
      { what: '(f) p99', measured: `${fmt(f.p99, 1)} ms`, target: `≤ 2 × ${fmt(b.p99, 1)} + 2 = ${fmt(2 * b.p99 + 2, 1)} ms`, pass: f.p99 <= 2 * b.p99 + 2 },
      { what: '(f) req/s vs (d) built-in proxy', measured: ratio3(f.rps / d.rps), target: '> 1', pass: f.rps > d.rps },
      { what: '(g) req/s vs (d) built-in proxy', measured: ratio3(g.rps / d.rps), target: '> 1', pass: g.rps > d.rps },
    ];
    notes.push(
      `Request: GET ${PATH} with Host ${TENANT_HOST}, Accept: application/json, the webapp's cookie and the gateway's session cookie from a real login; the upstream answers 200 with a small JSON body.`,
      `nginx ${nginxVersion(ctx.nginx)}, one worker, keep-alive (128) to the upstream and to both auth services; the cached rows use proxy_cache keyed on Host and the session cookie (proxy_cache_valid 200 ${CACHE_SECONDS}s; tenant-gate with forwardAuth.cacheSeconds ${CACHE_SECONDS}).`,
      `${ctx.connections} connections; each figure is the mean of ${ctx.rounds} round(s); in each round every row is warmed up ${ctx.timing.warmupS} s, then measured ${ctx.timing.durationS} s in ${SLICES} turns taken in alternation with the others (order reversed every other turn). CPU µs/req counts nginx and the auth service together.`,
    );
    return {
      id: 'forward-auth',
      title: '7. Forward-auth',
      about:
        "nginx proxies and asks an auth service before each request (auth_request). Ratios are requests per second divided by nginx alone (b'), same upstream, same run. (s) is the ceiling of any HTTP auth service in that slot; (f)/(s) says how close tenant-gate's decision comes to doing nothing. (d) is tenant-gate's own proxy on the same request.",
      tables: [table],
      checks,
      notes,
      profiles: [],
      elapsedS: since(t0),
    };
  } finally {
    for (const t of started.reverse()) await t.stop().catch(() => undefined);
  }
}
