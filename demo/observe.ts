/**
 * `npm run demo -- --observe`: Debian's Prometheus (when installed) scraping the demo
 * gateway with the repository's recording and alerting rules, on loopback.
 *
 * Rules: the server listens on 127.0.0.1 only; its config and data live in the demo's
 * temporary folder; it is stopped with the demo.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const RULES = resolve(import.meta.dirname, '../deploy/prometheus');

/** A running Prometheus of the demo. */
export interface DemoPrometheus {
  url: string;
  /** Stops the server (SIGTERM, then SIGKILL after 3 s). */
  close(): Promise<void>;
  /** Stops it at once (for a hurried exit). */
  kill(): void;
}

/** Path of the prometheus binary, or undefined when it is not installed. */
export function prometheusBinary(): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v prometheus'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
}

/** Starts Prometheus on 127.0.0.1:`port`, scraping `adminHost` (host:port) every 5 s. */
export async function startDemoPrometheus(opts: { binary: string; adminHost: string; port: number; dir: string }): Promise<DemoPrometheus> {
  const dir = join(opts.dir, 'prometheus');
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    JSON.stringify({
      global: { scrape_interval: '5s', evaluation_interval: '5s' },
      rule_files: [join(RULES, 'rules.yaml'), join(RULES, 'alerts.yaml')],
      scrape_configs: [{ job_name: 'tenant-gate', static_configs: [{ targets: [opts.adminHost] }] }],
    }),
  );
  const child = spawn(opts.binary, [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${opts.port}`, '--log.level=warn'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString('utf8')).slice(-2000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = `http://127.0.0.1:${opts.port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`prometheus exited: ${stderr.trim()}`);
    if (await fetch(`${url}/-/ready`).then((r) => r.ok, () => false)) break;
    if (i > 100) {
      child.kill('SIGKILL');
      throw new Error('prometheus did not become ready in 10 s');
    }
    await sleep(100);
  }
  return {
    url,
    kill: () => void child.kill('SIGKILL'),
    async close() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(3000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}
