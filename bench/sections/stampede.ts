/**
 * 4. Stampede: 1,000 requests arriving together over HTTP for one tenant that is not
 * cached cost exactly one store query. The store is wrapped to count its calls and
 * to take a second to answer, so every request arrives while the query is in flight.
 */
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { since, type BenchContext } from '../context.js';
import { BASE_DOMAIN, TENANT_HOST, gatewayConfig, launchGateway, seedAcme } from '../gateways.js';
import type { StoreCalls } from '../gateway-child.js';
import { fmt, type Check, type SectionResult } from '../report.js';
import { launchServer, type Target } from '../servers.js';

const REQUESTS = 1000;
const STORE_DELAY_MS = 1000;

interface Wave {
  statuses: Record<string, number>;
  latencies: number[];
  failed: number;
  wallMs: number;
}

/**
 * Opens `count` connections first, then writes one request on each in the same tick,
 * and reads every answer. Bounded by `timeoutMs`.
 */
async function wave(port: number, host: string, count: number, timeoutMs = 30_000): Promise<Wave> {
  const sockets: net.Socket[] = [];
  for (let i = 0; i < count; i += 100) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(100, count - i) }, () =>
        new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1');
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        }),
      ),
    );
    sockets.push(...batch);
  }
  const request = `GET /projects/all HTTP/1.1\r\nHost: ${host}\r\nAccept: application/json\r\nConnection: close\r\n\r\n`;
  const statuses: Record<string, number> = {};
  const latencies: number[] = [];
  let failed = 0;
  const t0 = performance.now();
  await Promise.all(
    sockets.map(
      (s) =>
        new Promise<void>((resolve) => {
          let buf = Buffer.alloc(0);
          let settled = false;
          const finish = (status: string | undefined) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            if (status) {
              statuses[status] = (statuses[status] ?? 0) + 1;
              latencies.push(performance.now() - t0);
            } else {
              failed++;
            }
            s.destroy();
            resolve();
          };
          const timer = setTimeout(() => finish(undefined), timeoutMs);
          // A response is complete once its Content-Length bytes of body are in; the
          // connection is not relied on to close.
          s.on('data', (chunk: Buffer) => {
            buf = Buffer.concat([buf, chunk]);
            const end = buf.indexOf('\r\n\r\n');
            if (end < 0) return;
            const head = buf.subarray(0, end).toString('latin1');
            const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? NaN);
            if (Number.isFinite(length) && buf.length >= end + 4 + length) finish(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
          });
          s.once('close', () => finish(undefined));
          s.once('error', () => undefined);
          s.write(request);
        }),
    ),
  );
  return { statuses, latencies: latencies.sort((a, b) => a - b), failed, wallMs: performance.now() - t0 };
}

const finds = (c: StoreCalls) => Object.entries(c).filter(([k]) => k.startsWith('find')).reduce((s, [, n]) => s + n, 0);
const diff = (a: StoreCalls, b: StoreCalls) => Object.fromEntries(Object.entries(b).map(([k, n]) => [k, n - (a[k] ?? 0)]).filter(([, n]) => n !== 0));

export async function stampedeSection(ctx: BenchContext): Promise<SectionResult> {
  const t0 = performance.now();
  const started: Target[] = [];
  try {
    const upstream = await launchServer('upstream', { kind: 'upstream' });
    started.push(upstream);
    const dir = join(ctx.tmp, 'stampede');
    mkdirSync(dir, { recursive: true });
    await seedAcme(dir);
    const config = gatewayConfig({ mode: 'route', upstream: upstream.url, dir, logLevel: ctx.logLevel });
    const gw = await launchGateway('tenant-gate route, counted store', { config, countingStore: { delayMs: STORE_DELAY_MS } });
    started.push(gw);
    const calls = async () => (await gw.handle.stats<{ storeCalls: StoreCalls }>()).storeCalls;

    const rows: string[][] = [];
    const checks: Check[] = [];
    const run = async (label: string, host: string, expect: number, queries: number) => {
      const before = await calls();
      const w = await wave(gw.port, host, REQUESTS);
      const made = diff(before, await calls());
      const ok = w.statuses[String(expect)] ?? 0;
      const pct = (p: number) => w.latencies[Math.min(w.latencies.length - 1, Math.floor(p * w.latencies.length))];
      rows.push([
        label,
        `${ok} × ${expect}${w.failed ? `, ${w.failed} failed` : ''}`,
        fmt(finds(made)),
        JSON.stringify(made).replace(/"/g, ''),
        `${fmt(pct(0), 0)} / ${fmt(pct(0.5), 0)} / ${fmt(pct(1), 0)}`,
      ]);
      checks.push({ what: `${label}: store queries`, measured: `${finds(made)} (${ok}/${REQUESTS} answered ${expect})`, target: `exactly ${queries}`, pass: finds(made) === queries && ok === REQUESTS });
    };
    await run(`${REQUESTS} concurrent, uncached tenant (${TENANT_HOST})`, TENANT_HOST, 200, 1);
    await run(`${REQUESTS} concurrent, same tenant, now cached`, TENANT_HOST, 200, 0);
    await run(`${REQUESTS} concurrent, unknown tenant (nobody.${BASE_DOMAIN})`, `nobody.${BASE_DOMAIN}`, 421, 1);

    return {
      id: 'stampede',
      title: '4. Stampede',
      about: `All ${REQUESTS} connections are open before the first request is written; the requests then go out in the same tick. The store answers each query after ${STORE_DELAY_MS} ms, so every request arrives while the first one's query is in flight: they must all wait for that one query (no thundering herd on the database).`,
      tables: [{ columns: ['wave', 'answers', 'store queries', 'store calls by method', 'first / median / last answer ms'], rows }],
      checks,
      notes: [`Route mode, GET /projects/all (not a navigation, so proxied to the upstream on success). The tenant was written into the SQLite file before the gateway started, so its cache starts empty.`],
      profiles: [],
      elapsedS: since(t0),
    };
  } finally {
    for (const t of started.reverse()) await t.stop().catch(() => undefined);
  }
}
