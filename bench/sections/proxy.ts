/**
 * 1. The proxy path: requests a logged-in browser's app makes, through each proxy to
 * the same upstream. References: the upstream itself, a bare fastify with
 * @fastify/http-proxy, nginx (one worker). Targets: tenant-gate in route mode on a
 * vanity host, and in authenticate mode with a session from a real login.
 */
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { publicRequest } from '../../test/helpers/gateway.js';
import { since, type BenchContext } from '../context.js';
import { ACME_IDP, TENANT_HOST, addAcme, gatewayConfig, launchGateway, loginThroughGateway } from '../gateways.js';
import { measureInterleaved, summarise, type Load, type Measurement, type Series } from '../measure.js';
import { profileScenario } from '../profile-run.js';
import { compareProfiles, type ProfileComparison, type ProfileSummary } from '../profile.js';
import { fmt, ratio, ratio3, type Check, type SectionResult } from '../report.js';
import { launchServer, nginxVersion, startNginx, type Target } from '../servers.js';

const PATH = '/projects/all?page=1';
/** Turns per target and round: the timed run is cut into this many turns, taken in alternation. */
const SLICES = 3;
/** What the webapp's own scripts send: JSON, with the webapp's session cookie. */
const APP_HEADERS = { host: TENANT_HOST, accept: 'application/json', cookie: 'clearml_token_basic=webapp-session-token' };

/**
 * Sends one request with `Connection: close` and tells whether the proxy closed the
 * connection after answering, and what Connection header it answered with.
 */
function closesWhenAsked(port: number, headers: Record<string, string>, waitMs = 2000): Promise<{ closed: boolean; connection: string }> {
  return new Promise((resolve) => {
    const lines = Object.entries({ ...headers, connection: 'close' }).map(([k, v]) => `${k}: ${v}`);
    const socket = net.connect(port, '127.0.0.1', () => socket.write(`GET ${PATH} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`));
    let head = '';
    const done = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      const connection = /\r\nconnection:\s*([^\r]*)/i.exec(head)?.[1] ?? '(none)';
      const keepAlive = /\r\nkeep-alive:\s*([^\r]*)/i.exec(head)?.[1];
      resolve({ closed, connection: keepAlive ? `${connection}; keep-alive: ${keepAlive}` : connection });
    };
    const timer = setTimeout(() => done(false), waitMs);
    socket.on('data', (c: Buffer) => {
      if (head.length < 4096) head += c.toString('latin1');
    });
    socket.once('close', () => done(true));
    socket.once('error', () => undefined);
  });
}

interface Row {
  key: 'direct' | 'bare' | 'nginx' | 'route' | 'traced' | 'auth';
  label: string;
  target: Target;
  headers: Record<string, string>;
  runs: Measurement[];
}

export async function proxySection(ctx: BenchContext): Promise<SectionResult> {
  const t0 = performance.now();
  const notes: string[] = [];
  const started: Target[] = [];
  const keep = <T extends Target>(t: T) => {
    started.push(t);
    return t;
  };
  const profiles: ProfileSummary[] = [];
  const comparisons: ProfileComparison[] = [];
  try {
    const upstream = keep(await launchServer('upstream', { kind: 'upstream' }));
    let nginx: Target | undefined;
    if (ctx.nginx) {
      try {
        nginx = keep(await startNginx(ctx.nginx, upstream.port, join(ctx.tmp, 'nginx')));
      } catch (err) {
        notes.push(`nginx row skipped: it did not start (${(err as Error).message.split('\n')[0]}).`);
      }
    } else {
      notes.push('nginx row skipped: nginx is not installed (`command -v nginx` finds nothing).');
    }
    const traceSink = keep(await launchServer('trace sink', { kind: 'upstream' }));
    const idp = keep(await launchServer('identity provider', { kind: 'idp', ...ACME_IDP }));
    const issuer = String(idp.handle.info.issuer);

    const startRoute = async (nodeArgs: string[] = [], tracing?: { endpoint: string; sampleRatio: number }) => {
      const dir = join(ctx.tmp, `proxy-route-${Date.now()}`);
      mkdirSync(dir, { recursive: true });
      const config = gatewayConfig({ mode: 'route', upstream: upstream.url, dir, logLevel: ctx.logLevel, ...(tracing ? { tracing } : {}) });
      const gw = await launchGateway(tracing ? 'tenant-gate route, tracing' : 'tenant-gate route', { config }, nodeArgs);
      await addAcme(gw.adminUrl);
      return gw;
    };
    const startAuth = async (nodeArgs: string[] = []) => {
      const dir = join(ctx.tmp, `proxy-auth-${Date.now()}`);
      mkdirSync(dir, { recursive: true });
      const gw = await launchGateway('tenant-gate authenticate', { config: gatewayConfig({ mode: 'authenticate', upstream: upstream.url, dir, logLevel: ctx.logLevel }) }, nodeArgs);
      await addAcme(gw.adminUrl, issuer);
      const session = await loginThroughGateway(gw.port);
      return { gw, headers: { ...APP_HEADERS, cookie: `${APP_HEADERS.cookie}; ${session}` } };
    };
    type Served = Pick<Row, 'target' | 'headers'>;
    const loadOf = (row: Served): Load => ({ url: row.target.url + PATH, headers: row.headers, connections: ctx.connections });
    // The Node.js proxies start afresh for every round: two processes of the same code
    // can differ by 10% or more in CPU per request for their whole life (JIT and memory
    // layout), so each round measures another process of each and the mean evens it out.
    const launchers: { key: Row['key']; label: string; start: () => Promise<Served> }[] = [
      { key: 'bare', label: '(b) fastify + @fastify/http-proxy', start: async () => ({ target: await launchServer('bare fastify proxy', { kind: 'bare-proxy', upstream: upstream.url, logLevel: ctx.logLevel }), headers: APP_HEADERS }) },
      { key: 'route', label: '(d) tenant-gate route mode', start: async () => ({ target: await startRoute(), headers: APP_HEADERS }) },
      // Spans exported over OTLP/HTTP to a second plain server, 10% of requests sampled.
      { key: 'traced', label: "(d') tenant-gate route mode, tracing 10%", start: async () => ({ target: await startRoute([], { endpoint: `${traceSink.url}/v1/traces`, sampleRatio: 0.1 }), headers: APP_HEADERS }) },
      { key: 'auth', label: '(e) tenant-gate authenticate + session', start: async () => { const a = await startAuth(); return { target: a.gw, headers: a.headers }; } },
      ...(nginx ? [{ key: 'nginx' as const, label: '(c) nginx, 1 worker', start: async () => ({ target: nginx, headers: APP_HEADERS }) }] : []),
      { key: 'direct', label: '(a) upstream directly', start: async () => ({ target: upstream, headers: APP_HEADERS }) },
    ];
    const rows: Row[] = launchers.map((l) => ({ key: l.key, label: l.label, target: upstream, headers: APP_HEADERS, runs: [] }));
    const fresh = new Set<Row['key']>(['bare', 'route', 'traced', 'auth']);

    for (let round = 0; round < ctx.rounds; round++) {
      for (const [i, l] of launchers.entries()) {
        const served = await l.start();
        if (fresh.has(l.key)) keep(served.target);
        rows[i]!.target = served.target;
        rows[i]!.headers = served.headers;
        const r = await publicRequest(served.target.port, { path: PATH, host: TENANT_HOST, headers: served.headers });
        if (r.status !== 200 || !r.body.includes('"app":"webapp"')) throw new Error(`${l.label} does not reach the upstream: ${r.status} ${r.body.slice(0, 200)}`);
      }
      const order = round % 2 === 0 ? rows : [...rows].reverse();
      const ms = await measureInterleaved(order.map((row) => ({ load: loadOf(row), pids: row.target.pids })), ctx.timing, 200, SLICES);
      for (const [i, row] of order.entries()) {
        const m = ms[i]!;
        row.runs.push(m);
        console.log(`  proxy round ${round + 1}: ${row.label}: ${fmt(m.rps)} req/s, p99 ${fmt(m.p99, 1)} ms`);
      }
      // Only after the measurements (it would put a path the bare proxy never takes
      // into the gateways' processes): does each proxy close a connection when asked?
      if (round === ctx.rounds - 1) {
        for (const row of rows) {
          const c = await closesWhenAsked(row.target.port, row.headers);
          if (!c.closed) {
            notes.push(`${row.label} answered a \`Connection: close\` request with \`connection: ${c.connection}\` and kept the connection open (the upstream's hop-by-hop headers are passed to the client).`);
          }
        }
      }
      for (const row of rows) if (fresh.has(row.key)) await row.target.stop();
    }

    const s = new Map<Row['key'], Series>(rows.map((r) => [r.key, summarise(r.runs)]));
    const b = s.get('bare')!;
    const table = {
      columns: ['path', 'req/s', 'vs (b)', 'p50 ms', 'p99 ms', 'server CPU µs/req', 'CPU/req vs (b)', 'req/s by round', 'other load'],
      rows: rows.map((r) => {
        const x = s.get(r.key)!;
        return [
          r.label,
          fmt(x.rps),
          ratio(x.rps / b.rps),
          fmt(x.p50, 1),
          fmt(x.p99, 1),
          fmt(x.cpuUsPerReq, 1),
          x.cpuUsPerReq !== undefined && b.cpuUsPerReq !== undefined ? ratio(x.cpuUsPerReq / b.cpuUsPerReq) : '–',
          r.runs.map((m) => fmt(m.rps)).join(' / '),
          `${fmt(x.foreign * 100)}%`,
        ];
      }),
    };
    for (const r of rows) {
      const x = s.get(r.key)!;
      if (x.unexpected > 0) notes.push(`${r.label}: ${x.unexpected} responses were not 200 or failed (${JSON.stringify(r.runs.map((m) => m.statuses))}).`);
    }

    const checks: Check[] = [];
    const rps = (key: 'route' | 'traced' | 'auth', min: number, name: string) => {
      const x = s.get(key)!;
      checks.push({ what: `${name} req/s vs (b)`, measured: ratio3(x.rps / b.rps), target: `≥ ${min.toFixed(2)}`, pass: x.rps / b.rps >= min && x.unexpected === 0 });
    };
    const p99 = (key: 'route' | 'auth', name: string) => {
      const x = s.get(key)!;
      const limit = 1.5 * b.p99 + 2;
      checks.push({ what: `${name} p99`, measured: `${fmt(x.p99, 1)} ms`, target: `≤ 1.5 × ${fmt(b.p99, 1)} + 2 = ${fmt(limit, 1)} ms`, pass: x.p99 <= limit });
    };
    // The same throughput targets in CPU terms: requests per CPU-second of the proxy
    // process, which other load on the machine disturbs much less than requests/s.
    const perCpu = (key: 'route' | 'traced' | 'auth', min: number, name: string) => {
      const x = s.get(key)!;
      if (x.cpuUsPerReq === undefined || b.cpuUsPerReq === undefined) return;
      const r = b.cpuUsPerReq / x.cpuUsPerReq;
      checks.push({ what: `${name} requests per CPU-second vs (b)`, measured: ratio3(r), target: `≥ ${min.toFixed(2)}`, pass: r >= min });
    };
    rps('route', 0.9, '(d) route');
    perCpu('route', 0.9, '(d) route');
    p99('route', '(d) route');
    rps('traced', 0.8, "(d') route, tracing 10%");
    perCpu('traced', 0.8, "(d') route, tracing 10%");
    rps('auth', 0.8, '(e) authenticate');
    perCpu('auth', 0.8, '(e) authenticate');
    p99('auth', '(e) authenticate');
    const n = s.get('nginx');
    if (n) {
      const x = s.get('route')!;
      checks.push({ what: '(d) route req/s vs (c) nginx', measured: ratio3(x.rps / n.rps), target: '≥ 0.50', pass: x.rps / n.rps >= 0.5 });
      if (x.cpuUsPerReq !== undefined && n.cpuUsPerReq !== undefined) {
        checks.push({ what: '(d) route requests per CPU-second vs (c) nginx', measured: ratio3(n.cpuUsPerReq / x.cpuUsPerReq), target: 'informational', pass: undefined });
      }
    } else {
      checks.push({ what: '(d) route req/s vs (c) nginx', measured: 'not measured', target: '≥ 0.50', pass: undefined });
    }

    const wantProfile = (key: 'route' | 'auth') =>
      ctx.profile === 'always' || (ctx.profile === 'auto' && checks.some((c) => c.what.startsWith(key === 'route' ? '(d)' : '(e)') && c.pass === false));
    let reference: ProfileSummary | undefined;
    const profileReference = async () =>
      (reference ??= await profileScenario(ctx, 'bare fastify proxy', async (nodeArgs) => {
        const b = await launchServer('bare fastify proxy (profiled)', { kind: 'bare-proxy', upstream: upstream.url, logLevel: ctx.logLevel }, nodeArgs);
        return { server: b, load: loadOf({ target: b, headers: APP_HEADERS }), expect: 200 };
      }));
    if (wantProfile('route')) {
      const ref = await profileReference();
      const p = await profileScenario(ctx, 'route mode, proxied request', async (nodeArgs) => {
        const gw = await startRoute(nodeArgs);
        return { server: gw, load: loadOf({ target: gw, headers: APP_HEADERS }), expect: 200 };
      });
      profiles.push(p);
      const c = compareProfiles(ref, p);
      if (c) comparisons.push(c);
    }
    if (wantProfile('auth')) {
      const ref = await profileReference();
      const p = await profileScenario(ctx, 'authenticate mode, request with a session', async (nodeArgs) => {
        const a = await startAuth(nodeArgs);
        return { server: a.gw, load: loadOf({ target: a.gw, headers: a.headers }), expect: 200 };
      });
      profiles.push(p);
      const c = compareProfiles(ref, p);
      if (c) comparisons.push(c);
    }

    notes.push(
      `Request: GET ${PATH} with Host ${TENANT_HOST}, Accept: application/json and the webapp's session cookie (authenticate mode: also the gateway's session cookie); the upstream answers 200 with a ${'{"ok":true,"app":"webapp"}'.length}-byte JSON body.`,
      `${ctx.connections} connections; each figure is the mean of ${ctx.rounds} round(s); in each round every target is warmed up ${ctx.timing.warmupS} s, then measured ${ctx.timing.durationS} s in ${SLICES} turns taken in alternation with the others (order reversed every other turn), so that the machine's drifting speed weighs on all alike; (b), (d) and (e) run in new processes in every round.`,
      'Server CPU µs/req is the CPU time (user + system, all threads, from /proc) of the proxy process(es) during the timed run divided by the responses: it does not depend on how the cores were shared with the load generator.',
      'Other load: the largest share of all cores that processes outside the benchmark used during one of the runs (a run above 25% is repeated once and the quieter kept).',
    );
    if (ctx.nginx) notes.push(`nginx: ${nginxVersion(ctx.nginx)}, worker_processes 1, upstream keepalive 128, access_log off.`);

    return {
      id: 'proxy',
      title: '1. Proxy path',
      about:
        'Ratios are requests per second of tenant-gate divided by those of the bare fastify + @fastify/http-proxy (b), measured in the same run against the same upstream: they show what the gateway\'s own work (host resolution, tenant lookup, routing decisions, header rewriting, session check) costs on top of the proxy it is built on. (d) vs (c) compares with nginx. "Requests per CPU-second" is the same ratio computed from the CPU time each proxy process spent per request: with the load generator, the upstream and every proxy sharing two cores, it is the steadier of the two.',
      tables: [table],
      checks,
      notes,
      profiles,
      comparisons,
      elapsedS: since(t0),
    };
  } finally {
    for (const t of started.reverse()) await t.stop().catch(() => undefined);
  }
}
