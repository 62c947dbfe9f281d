/**
 * Debian's Prometheus for tests: find promtool and the server, start a server on a
 * free loopback port with a temporary config and storage, query its HTTP API.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './free-port.js';

type Test = import('tap').Test;

/** The repository's Prometheus files. */
export const PROMETHEUS_DIR = resolve(import.meta.dirname, '../../deploy/prometheus');

/** Absolute path of a program on PATH (or in /usr/bin), or undefined. */
export function findProgram(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const found = r.status === 0 ? r.stdout.trim() : '';
  if (found) return found;
  return existsSync(`/usr/bin/${name}`) ? `/usr/bin/${name}` : undefined;
}

/** A running Prometheus server; killed after the test. */
export interface PrometheusServer {
  url: string;
  /** Instant query; the result vector. */
  query(expr: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
}

/** Starts Prometheus scraping `targets` (host:port) every second, evaluating `ruleFiles` every second. */
export async function startPrometheus(t: Test, opts: { binary: string; targets: string[]; ruleFiles: string[] }): Promise<PrometheusServer> {
  const dir = mkdtempSync(join(tmpdir(), 'tenant-gate-prometheus-'));
  const port = await freePort();
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    JSON.stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s', scrape_timeout: '1s' },
      rule_files: opts.ruleFiles,
      scrape_configs: [{ job_name: 'tenant-gate', static_configs: [{ targets: opts.targets }] }],
    }),
  );
  const child = spawn(opts.binary, [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString('utf8')).slice(-4000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  t.teardown(async () => {
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`prometheus exited: ${stderr}`);
    const ready = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
    if (ready) break;
    if (i > 100) throw new Error(`prometheus did not become ready: ${stderr}`);
    await sleep(100);
  }
  return {
    url,
    async query(expr) {
      const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`);
      const body = (await res.json()) as { status: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
      if (body.status !== 'success') throw new Error(`query ${expr} failed: ${JSON.stringify(body)}`);
      return body.data.result;
    },
  };
}
