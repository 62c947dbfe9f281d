/**
 * 5. Logins: complete OpenID Connect logins through the gateway (authenticate mode)
 * against a local oidc-provider, a bounded number at a fixed concurrency, and the
 * CPU time each process spends per login.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { processCpuMs } from '../child-process.js';
import { since, type BenchContext } from '../context.js';
import { ACME_IDP, UNLIMITED, addAcme, gatewayConfig, launchGateway, loginThroughGateway } from '../gateways.js';
import { fmt, type SectionResult } from '../report.js';
import { launchServer, type Target } from '../servers.js';

const CONCURRENCY = 8;
const WARMUP_LOGINS = 8;
const DEADLINE_MS = 120_000;

export async function loginsSection(ctx: BenchContext): Promise<SectionResult> {
  const t0 = performance.now();
  const started: Target[] = [];
  try {
    const upstream = await launchServer('upstream', { kind: 'upstream' });
    started.push(upstream);
    const idp = await launchServer('identity provider', { kind: 'idp', ...ACME_IDP });
    started.push(idp);
    const dir = join(ctx.tmp, 'logins');
    mkdirSync(dir, { recursive: true });
    const gw = await launchGateway('tenant-gate authenticate', { config: gatewayConfig({ mode: 'authenticate', upstream: upstream.url, dir, logLevel: ctx.logLevel, unlimited: true }) });
    started.push(gw);
    await addAcme(gw.adminUrl, String(idp.handle.info.issuer));

    for (let i = 0; i < WARMUP_LOGINS; i++) await loginThroughGateway(gw.port);

    const cpu = () => ({ gateway: processCpuMs(gw.handle.pid), idp: processCpuMs(idp.handle.pid), driver: process.cpuUsage() });
    const before = cpu();
    const tStart = performance.now();
    let next = 0;
    let done = 0;
    const failures: string[] = [];
    const worker = async () => {
      while (next < ctx.logins && performance.now() - tStart < DEADLINE_MS) {
        next++;
        try {
          await loginThroughGateway(gw.port);
          done++;
        } catch (err) {
          failures.push((err as Error).message.split('\n')[0]!);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const wallS = (performance.now() - tStart) / 1000;
    const after = cpu();
    const driverMs = (after.driver.user - before.driver.user + after.driver.system - before.driver.system) / 1000;
    const per = (ms: number) => fmt(ms / Math.max(1, done), 2);
    const gatewayMs = after.gateway - before.gateway;

    return {
      id: 'logins',
      title: '5. Logins',
      about:
        'A login is what a browser does: GET /login/acme on the gateway (302 to the provider with PKCE, state, nonce and a sealed transaction cookie), the provider\'s login and consent pages, then the callback on the gateway (code exchange, ID token validation, claims to identity, session). CPU per login is each process\'s own CPU time (from /proc for the gateway and the provider, process.cpuUsage for the scripted browsers) divided by the completed logins.',
      tables: [
        {
          columns: ['logins', 'failed', 'concurrency', 'wall s', 'logins/s', 'gateway CPU ms/login', 'provider CPU ms/login', 'browser scripts CPU ms/login'],
          rows: [[fmt(done), fmt(failures.length), String(CONCURRENCY), fmt(wallS, 1), fmt(done / wallS, 1), per(gatewayMs), per(after.idp - before.idp), per(driverMs)]],
        },
      ],
      checks: [{ what: 'logins completed', measured: `${done}/${ctx.logins}`, target: 'all', pass: done === ctx.logins }],
      notes: [
        `rateLimit.loginPerMinute and callbackPerMinute set to ${UNLIMITED.toLocaleString('en-US')}: every login comes from 127.0.0.1. ${WARMUP_LOGINS} logins first, not counted (provider discovery, JWKS fetch, JIT). The gateway runs alone in its process: its CPU figure is the gateway's work per login (two requests), whatever the provider and the scripted browsers cost.`,
        ...(failures.length > 0 ? [`first failure: ${failures[0]}`] : []),
        `The gateway would sustain about ${fmt(1000 / Math.max(0.001, gatewayMs / Math.max(1, done)))} logins per second per core if the provider and browsers ran elsewhere.`,
      ],
      profiles: [],
      elapsedS: since(t0),
    };
  } finally {
    for (const t of started.reverse()) await t.stop().catch(() => undefined);
  }
}
