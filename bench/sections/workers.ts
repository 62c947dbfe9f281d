/**
 * 6. Cores: the built gateway (`node bin/tenant-gate.js serve --config FILE`) in route
 * mode with `workers: 1` and then `workers: 2`, the same proxied request as in the
 * proxy section.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childPids, outputTail } from '../child-process.js';
import { since, type BenchContext } from '../context.js';
import { TENANT_HOST, gatewayConfig, seedAcme } from '../gateways.js';
import { measure, summarise, type Measurement } from '../measure.js';
import { fmt, ratio3, type SectionResult } from '../report.js';
import { freePort, launchServer, waitForPort, type Target } from '../servers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PATH = '/projects/all?page=1';
const HEADERS = { host: TENANT_HOST, accept: 'application/json', cookie: 'clearml_token_basic=webapp-session-token' };

function build(): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('npm', ['run', 'build'], { cwd: ROOT, timeout: 240_000 }, (err, stdout, stderr) => {
      resolve(err ? `${err.message.split('\n')[0]} ${`${stdout}${stderr}`.trim().split('\n').slice(-5).join(' ')}` : undefined);
    });
  });
}

interface Served extends Target {
  /** Node processes serving (the primary and its workers). */
  processes(): number[];
}

/** Starts the built CLI in its own process group, under `timeout`, and waits for its public port. */
async function serve(configFile: string, port: number): Promise<Served> {
  const tail = outputTail();
  const child = spawn('timeout', ['--signal=TERM', '--kill-after=5', '600', process.execPath, 'bin/tenant-gate.js', 'serve', '--config', configFile], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_ENV: 'production' },
  });
  child.stdout.on('data', tail.push);
  child.stderr.on('data', tail.push);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // already gone
    }
  };
  process.on('exit', () => killGroup('SIGKILL'));
  try {
    await Promise.race([
      waitForPort(port, 30_000),
      exited.then(() => {
        throw new Error(`tenant-gate exited: ${tail.text().slice(-600)}`);
      }),
    ]);
  } catch (err) {
    killGroup('SIGKILL');
    throw err;
  }
  const processes = () => childPids(child.pid!).flatMap((primary) => [primary, ...childPids(primary)]);
  return {
    name: 'tenant-gate serve',
    url: `http://127.0.0.1:${port}`,
    port,
    pids: processes,
    processes,
    async stop() {
      if (child.exitCode !== null) return;
      killGroup('SIGTERM');
      const killer = setTimeout(() => killGroup('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

export async function workersSection(ctx: BenchContext): Promise<SectionResult> {
  const t0 = performance.now();
  const notes: string[] = [];
  const started: Target[] = [];
  const about =
    'The ratio is requests per second with two worker processes divided by one, same run, same upstream. On a 2-core machine the load generator and the upstream need CPU too, so two workers cannot double the rate here; the figure shows whether the workers share the load.';
  const notMeasured = (why: string): SectionResult => ({
    id: 'workers',
    title: '6. Cores (workers)',
    about,
    tables: [],
    checks: [{ what: 'workers 2 vs 1, route mode', measured: `not measured: ${why}`, target: 'informational', pass: undefined }],
    notes,
    profiles: [],
    elapsedS: since(t0),
  });
  try {
    const failed = await build();
    if (failed) return notMeasured(`npm run build failed (${failed})`);
    const upstream = await launchServer('upstream', { kind: 'upstream' });
    started.push(upstream);
    const dir = join(ctx.tmp, 'workers');
    mkdirSync(dir, { recursive: true });
    await seedAcme(dir);

    const runs = new Map<number, Measurement[]>([[1, []], [2, []]]);
    const processCounts = new Map<number, number>();
    let unavailable: string | undefined;
    // One run each: a second round would need two more cluster starts for little gain.
    const order = [1, 2];
    for (const workers of order) {
      if (workers === 2 && unavailable) continue;
      const port = await freePort();
      const file = join(dir, `config-${workers}.yaml`);
      // JSON is YAML.
      const config = gatewayConfig({ mode: 'route', upstream: upstream.url, dir, logLevel: ctx.logLevel, workers, publicPort: port, adminPort: await freePort() });
      writeFileSync(file, JSON.stringify(config, null, 2));
      let server: Served;
      try {
        server = await serve(file, port);
      } catch (err) {
        if (workers === 1) throw err;
        unavailable = `tenant-gate did not start with workers: 2 (${(err as Error).message.split('\n')[0]})`;
        continue;
      }
      started.push(server);
      try {
        // Give a cluster the time to fork its workers before counting them.
        await new Promise((r) => setTimeout(r, 1500));
        const serving = server.processes().length;
        processCounts.set(workers, serving);
        if (workers === 2 && serving <= (processCounts.get(1) ?? 1)) {
          unavailable = `workers not available (one process serves with workers: 2)`;
          continue;
        }
        const m = await measure({ url: server.url + PATH, headers: HEADERS, connections: ctx.connections }, ctx.timing, 200, server.pids);
        runs.get(workers)!.push(m);
        console.log(`  workers ${workers}: ${fmt(m.rps)} req/s`);
      } finally {
        await server.stop();
        started.splice(started.indexOf(server), 1);
      }
    }
    const one = summarise(runs.get(1)!);
    const rows = [['1', String(processCounts.get(1) ?? '–'), fmt(one.rps), fmt(one.p50, 1), fmt(one.p99, 1), fmt(one.cpuUsPerReq, 1), `${fmt(one.foreign * 100)}%`]];
    let check;
    if (unavailable) {
      rows.push(['2', String(processCounts.get(2) ?? '–'), 'not measured', '', '', '', '']);
      check = { what: 'workers 2 vs 1, route mode', measured: `not measured: ${unavailable}`, target: 'informational', pass: undefined };
      console.log(`workers: not measured: ${unavailable}`);
    } else {
      const two = summarise(runs.get(2)!);
      rows.push(['2', String(processCounts.get(2) ?? '–'), fmt(two.rps), fmt(two.p50, 1), fmt(two.p99, 1), fmt(two.cpuUsPerReq, 1), `${fmt(two.foreign * 100)}%`]);
      check = { what: 'workers 2 vs 1, route mode req/s', measured: ratio3(two.rps / one.rps), target: 'informational', pass: undefined };
    }
    notes.push(
      `\`npm run build\`, then \`node bin/tenant-gate.js serve --config <tmp>/config-N.yaml\` (workers N, log.level ${ctx.logLevel}, public and admin on 127.0.0.1) in a process group of its own, stopped with SIGTERM. Processes counts the primary and the workers it forked.`,
      `Request as in the proxy section: GET ${PATH}, Host ${TENANT_HOST}, ${ctx.connections} connections, ${ctx.timing.warmupS} s warm-up + ${ctx.timing.durationS} s, one run each.`,
    );
    return {
      id: 'workers',
      title: '6. Cores (workers)',
      about,
      tables: [{ columns: ['workers', 'processes', 'req/s', 'p50 ms', 'p99 ms', 'server CPU µs/req', 'other load'], rows }],
      checks: [check],
      notes,
      profiles: [],
      elapsedS: since(t0),
    };
  } finally {
    for (const t of started.reverse()) await t.stop().catch(() => undefined);
  }
}
