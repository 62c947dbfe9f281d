import t from 'tap';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from '../helpers/free-port.js';
import { adminCall, ADMIN_KEY, ADMIN_SECRET, publicRequest, startUpstream, tempDir } from '../helpers/gateway.js';

async function waitFor(fn: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn().catch(() => false)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

t.test('two workers share the ports, agree on the directory, and stop cleanly', async (t) => {
  const dir = tempDir(t);
  const upstream = await startUpstream(t);
  const [port, adminPort] = [await freePort(), await freePort()];
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    stringify({
      workers: 2,
      public: { host: '127.0.0.1', port, url: 'https://ml.example.com' },
      admin: { host: '127.0.0.1', port: adminPort, credentials: [{ key: ADMIN_KEY, secret: ADMIN_SECRET }] },
      upstreams: { webapp: upstream.url },
      tenancy: { baseDomain: 'ml.example.com' },
      store: { url: `sqlite:${join(dir, 'db.sqlite')}` },
      cache: { ttlSeconds: 3600, negativeTtlSeconds: 3600 },
      log: { level: 'warn' },
    }),
  );
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/run-cli.ts', 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  let stdout = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  t.teardown(() => {
    if (!t.passing()) t.comment(`gateway output:\n${stdout}${stderr}`.slice(-4000));
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const up = await waitFor(async () => (await fetch(`http://127.0.0.1:${adminPort}/healthz`)).ok, 60_000);
  t.ok(up, `the gateway came up ${stderr}`);
  await waitFor(async () => (await publicRequest(port, { path: '/healthz' })).status === 200, 5000);

  for (let i = 0; i < 30; i++) t.equal((await publicRequest(port, { path: '/', host: 'acme.ml.example.com'})).status, 421);
  const r = await adminCall(`http://127.0.0.1:${adminPort}`, 'system.update_company_sso_config', { company: 'c', sso: { tenant: 'acme' } });
  t.equal(r.status, 200);
  await new Promise((res) => setTimeout(res, 300));
  const statuses = new Set<number>();
  for (let i = 0; i < 30; i++) statuses.add((await publicRequest(port, { path: '/x', host: 'acme.ml.example.com', headers: { accept: 'application/json' } })).status);
  t.same([...statuses], [200], 'every worker sees the new tenant at once, despite its cached "not found"');

  child.kill('SIGTERM');
  t.equal(await exited, 0, 'exits 0 after SIGTERM');
});
