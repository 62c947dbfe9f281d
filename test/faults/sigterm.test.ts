import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { startUpstream, tempDir } from '../helpers/gateway.js';

const CLI = fileURLToPath(new URL('./cli.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const IN_FLIGHT = 40;
const UPSTREAM_DELAY_MS = 1500;

function get(port: number, path: string, agent?: http.Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { host: 'ml.example.com', accept: 'application/json' }, ...(agent ? { agent } : { agent: false }) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(15_000, () => req.destroy(new Error('client timeout')));
    req.end();
  });
}

async function waitFor(what: string, cond: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('SIGTERM under load: every in-flight request completes with 200, new ones are turned away, the process exits 0', async (t) => {
  const upstream = await startUpstream(t, (_req, res) => {
    setTimeout(() => {
      res.setHeader('content-type', 'application/json');
      res.end('{"upstream":true,"slow":true}');
    }, UPSTREAM_DELAY_MS).unref();
    return true;
  });
  const dir = tempDir(t);
  const config = join(dir, 'tenant-gate.yaml');
  writeFileSync(
    config,
    [
      'mode: route',
      'public: { host: 127.0.0.1, port: 0, url: "https://ml.example.com" }',
      'admin: { host: 127.0.0.1, port: 0, credentials: [{ key: admin, secret: "admin-secret-value" }] }',
      `upstreams: { webapp: "${upstream.url}", timeoutMs: 10000 }`,
      'tenancy: { baseDomain: ml.example.com }',
      `store: { url: "sqlite:${join(dir, 'directory.db')}" }`,
      'log: { level: info }',
      '',
    ].join('\n'),
  );

  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve', '--config', config], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TENANT_GATE_CONFIG: '' } });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));

  await waitFor('the gateway to listen', () => /tenant-gate listening/.test(stdout) || child.exitCode !== null, 30_000);
  const started = stdout.split('\n').find((l) => l.includes('tenant-gate listening'));
  t.ok(started, 'the gateway started');
  if (!started) {
    t.comment(stderr.slice(0, 2000));
    return;
  }
  const port = (JSON.parse(started) as { public: { port: number } }).public.port;

  // An idle keep-alive client must not hold the shutdown up.
  const keepAlive = new http.Agent({ keepAlive: true });
  t.teardown(() => keepAlive.destroy());
  upstream.seen.length = 0;
  const warm = await get(port, '/warm', keepAlive);
  t.equal(warm.status, 200, 'served before the load');

  const inFlight = Array.from({ length: IN_FLIGHT }, (_, i) => get(port, `/slow/${i}`).then((r) => r, (err: Error) => ({ status: 0, body: err.message })));
  await waitFor('every request to reach the upstream', () => upstream.seen.length >= IN_FLIGHT + 1, 10_000);
  const signalled = Date.now();
  child.kill('SIGTERM');

  await new Promise((r) => setTimeout(r, 200));
  const late = await get(port, '/late').then(
    (r) => `status ${r.status}`,
    (err: NodeJS.ErrnoException) => err.code ?? err.message,
  );
  t.match(late, /^(ECONNREFUSED|ECONNRESET|status 503)$/, `a request after SIGTERM is turned away (${late})`);

  const results = await Promise.all(inFlight);
  const statuses = results.map((r) => r.status);
  t.same([...new Set(statuses)], [200], `all ${IN_FLIGHT} in-flight requests completed with 200`);
  t.ok(results.every((r) => r.body.includes('"slow":true')), 'each with the upstream answer');

  const exit = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000).unref())]);
  t.not(exit, 'hung', 'the process exits by itself');
  if (exit !== 'hung') {
    t.equal(exit.code, 0, 'with code 0');
    t.equal(exit.signal, null, 'not killed by the signal');
  }
  const tookMs = Date.now() - signalled;
  t.ok(tookMs < UPSTREAM_DELAY_MS + 3000, `shutdown took ${tookMs} ms: the in-flight requests, not the idle connection`);
  t.match(stdout, /shutting down: finishing in-flight requests/, 'the shutdown is logged');
  t.notMatch(stdout + stderr, /"level":(50|60)/, 'no error logged');
});
