/**
 * 2. Decisions the gateway answers itself, per second, against a fastify hello-world
 * in the same run: a page navigation on a vanity host without a session (302 to the
 * tenant's login) and an email discovery POST (303 to the tenant's login).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { publicRequest } from '../../test/helpers/gateway.js';
import { since, type BenchContext } from '../context.js';
import { BASE_DOMAIN, TENANT, TENANT_HOST, UNLIMITED, addAcme, gatewayConfig, launchGateway } from '../gateways.js';
import { measureInterleaved, summarise, type Load, type Measurement } from '../measure.js';
import { profileScenario } from '../profile-run.js';
import { compareProfiles, type ProfileComparison, type ProfileSummary } from '../profile.js';
import { fmt, ratio, ratio3, type Check, type SectionResult } from '../report.js';
import { launchServer, type Target } from '../servers.js';

const NAVIGATION = {
  host: TENANT_HOST,
  accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
  'sec-fetch-mode': 'navigate',
  'sec-fetch-dest': 'document',
};
const DISCOVERY_BODY = 'email=alice%40acme.com';
/** Turns per row and round (see measureInterleaved). */
const SLICES = 3;
const DISCOVERY = { host: BASE_DOMAIN, 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' };

interface Row {
  key: 'hello' | 'form' | 'vanity' | 'discovery';
  label: string;
  target: Target;
  path: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  expect: number;
  runs: Measurement[];
}

export async function decisionsSection(ctx: BenchContext): Promise<SectionResult> {
  const t0 = performance.now();
  const notes: string[] = [];
  const started: Target[] = [];
  const profiles: ProfileSummary[] = [];
  try {
    const hello = await launchServer('fastify hello-world', { kind: 'hello', logLevel: ctx.logLevel });
    started.push(hello);
    const startGateway = async (nodeArgs: string[] = []) => {
      const dir = join(ctx.tmp, `decisions-${Date.now()}`);
      mkdirSync(dir, { recursive: true });
      // Nothing is proxied here: the webapp address is never used.
      const config = gatewayConfig({ mode: 'route', upstream: 'http://127.0.0.1:9', dir, logLevel: ctx.logLevel, unlimited: true });
      const gw = await launchGateway('tenant-gate route', { config }, nodeArgs);
      await addAcme(gw.adminUrl);
      return gw;
    };
    const gw = await startGateway();
    started.push(gw);

    const rows: Row[] = [
      { key: 'hello', label: 'fastify hello-world (GET /)', target: hello, path: '/', method: 'GET', headers: { host: BASE_DOMAIN }, expect: 200, runs: [] },
      { key: 'form', label: 'fastify + formbody POST → 303 (reference)', target: hello, path: '/login', method: 'POST', headers: DISCOVERY, body: DISCOVERY_BODY, expect: 303, runs: [] },
      { key: 'vanity', label: 'vanity navigation → 302 /login/acme', target: gw, path: '/projects/all', method: 'GET', headers: NAVIGATION, expect: 302, runs: [] },
      { key: 'discovery', label: 'email discovery POST → 303', target: gw, path: '/login', method: 'POST', headers: DISCOVERY, body: DISCOVERY_BODY, expect: 303, runs: [] },
    ];
    const loadOf = (row: Row, target: Target = row.target): Load => ({
      url: target.url + row.path,
      method: row.method,
      headers: row.headers,
      ...(row.body !== undefined ? { body: row.body } : {}),
      connections: ctx.connections,
    });

    const first = await publicRequest(gw.port, { path: '/projects/all', headers: NAVIGATION, host: TENANT_HOST });
    if (first.status !== 302 || first.headers.location !== `/login/${TENANT}?redirect=%2Fprojects%2Fall`) {
      throw new Error(`unexpected vanity answer: ${first.status} ${String(first.headers.location)}`);
    }
    const found = await publicRequest(gw.port, { path: '/login', method: 'POST', headers: DISCOVERY, host: BASE_DOMAIN, body: DISCOVERY_BODY });
    if (found.status !== 303 || !String(found.headers.location).startsWith(`/login/${TENANT}?login_hint=`)) {
      throw new Error(`unexpected discovery answer: ${found.status} ${String(found.headers.location)}`);
    }

    for (let round = 0; round < ctx.rounds; round++) {
      const order = round % 2 === 0 ? rows : [...rows].reverse();
      // Every server is warm after the first round: later rounds warm up for a second only.
      const timing = round === 0 ? ctx.timing : { ...ctx.timing, warmupS: Math.min(1, ctx.timing.warmupS) };
      const ms = await measureInterleaved(order.map((row) => ({ load: loadOf(row), pids: row.target.pids, expect: row.expect })), timing, 200, SLICES);
      for (const [i, row] of order.entries()) {
        const m = ms[i]!;
        row.runs.push(m);
        console.log(`  decisions round ${round + 1}: ${row.label}: ${fmt(m.rps)} req/s`);
      }
    }
    const s = new Map(rows.map((r) => [r.key, summarise(r.runs)]));
    const h = s.get('hello')!;
    const table = {
      columns: ['request', 'status', 'req/s', 'vs hello', 'p50 ms', 'p99 ms', 'server CPU µs/req', 'CPU/req vs hello', 'req/s by round', 'other load'],
      rows: rows.map((r) => {
        const x = s.get(r.key)!;
        const cpu = x.cpuUsPerReq !== undefined && h.cpuUsPerReq !== undefined ? ratio(x.cpuUsPerReq / h.cpuUsPerReq) : '–';
        return [r.label, String(r.expect), fmt(x.rps), ratio(x.rps / h.rps), fmt(x.p50, 1), fmt(x.p99, 1), fmt(x.cpuUsPerReq, 1), cpu, r.runs.map((m) => fmt(m.rps)).join(' / '), `${fmt(x.foreign * 100)}%`];
      }),
    };
    const checks: Check[] = (['vanity', 'discovery'] as const).flatMap((key) => {
      const x = s.get(key)!;
      const label = rows.find((r) => r.key === key)!.label;
      const out: Check[] = [{ what: `${label} vs hello-world`, measured: ratio3(x.rps / h.rps), target: '≥ 0.70', pass: x.rps / h.rps >= 0.7 && x.unexpected === 0 }];
      if (x.cpuUsPerReq !== undefined && h.cpuUsPerReq !== undefined) {
        const r = h.cpuUsPerReq / x.cpuUsPerReq;
        out.push({ what: `${label}, per CPU-second vs hello-world`, measured: ratio3(r), target: '≥ 0.70', pass: r >= 0.7 });
      }
      return out;
    });
    const f = s.get('form')!;
    const d = s.get('discovery')!;
    checks.push({ what: 'email discovery POST → 303 vs fastify + formbody POST → 303', measured: ratio3(d.rps / f.rps), target: 'informational', pass: undefined });
    checks.push({ what: 'fastify + formbody POST → 303 vs hello-world (what fastify alone reaches)', measured: ratio3(f.rps / h.rps), target: 'informational', pass: undefined });
    for (const r of rows) {
      const x = s.get(r.key)!;
      if (x.unexpected > 0) notes.push(`${r.label}: ${x.unexpected} responses were not ${r.expect} or failed (${JSON.stringify(r.runs.map((m) => m.statuses))}).`);
    }

    const comparisons: ProfileComparison[] = [];
    // Each decision is compared with the reference of its shape: the GET hello-world
    // for the vanity redirect, the fastify form POST for email discovery.
    for (const [key, refKey] of [['vanity', 'hello'], ['discovery', 'form']] as const) {
      const row = rows.find((r) => r.key === key)!;
      const missed = checks.some((c) => c.what.startsWith(row.label) && c.pass === false);
      if (ctx.profile === 'never' || (ctx.profile === 'auto' && !missed)) continue;
      const refRow = rows.find((r) => r.key === refKey)!;
      const reference = await profileScenario(ctx, refRow.label, async (nodeArgs) => {
        const h = await launchServer(`${refRow.label} (profiled)`, { kind: 'hello', logLevel: ctx.logLevel }, nodeArgs);
        return { server: h, load: loadOf(refRow, h), expect: refRow.expect };
      });
      const profile = await profileScenario(ctx, row.label, async (nodeArgs) => {
        const g = await startGateway(nodeArgs);
        return { server: g, load: loadOf(row, g), expect: row.expect };
      });
      profiles.push(profile);
      const c = compareProfiles(reference, profile);
      if (c) comparisons.push(c);
    }

    notes.push(
      `Vanity: GET /projects/all on ${TENANT_HOST} as a browser navigation (Sec-Fetch-Mode: navigate), no session cookie. Discovery: POST /login on ${BASE_DOMAIN}, \`${DISCOVERY_BODY}\`, with rateLimit.discoveryPerMinute set to ${UNLIMITED.toLocaleString('en-US')} so the limiter counts but never refuses.`,
      'The second reference is the hello-world process answering the same POST with @fastify/formbody and a 303: the cost of reading and parsing a form body, which a GET hello-world does not pay.',
      `${ctx.connections} connections, mean of ${ctx.rounds} round(s); in each, every row is warmed up ${ctx.timing.warmupS} s (1 s in later rounds), then measured ${ctx.timing.durationS} s in ${SLICES} turns taken in alternation with the other rows.`,
    );
    return {
      id: 'decisions',
      title: '2. Decisions',
      about:
        'Ratios are the gateway\'s decisions per second divided by the requests per second of a fastify hello-world route (same fastify, same log level, same process layout) in the same run: 1.0 would mean the decision costs nothing beyond fastify\'s own request handling. The targets are against the GET hello-world; the fastify form POST row shows how close a POST with a body can get at all. "Per CPU-second" is the same ratio from the CPU time each server process spent per request, which is steadier when the cores are shared.',
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
