import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { redactUrl } from '../../src/config/load.js';
import { main } from '../../src/main.js';
import { tempDir } from '../helpers/gateway.js';

/** Runs the command line from source (test/helpers/run-cli.ts) with only the given environment. */
function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/run-cli.ts', ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

/** Runs the command line in this process (same code as run-cli.ts, faster). */
async function inProcess(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => void (out += s), err: (s) => void (err += s), env });
  return { code, out, err };
}

/** The ingress example: its configuration file, and the environment its Secret gives. */
function deployExample(dir: string) {
  const configMap = parse(readFileSync('deploy/kubernetes/ingress/configmap.yaml', 'utf8')) as { data: Record<string, string> };
  const file = join(dir, 'config.yaml');
  writeFileSync(file, configMap.data['config.yaml']!);
  const secret = parseAllDocuments(readFileSync('deploy/kubernetes/ingress/secret.yaml', 'utf8'))[0]!.toJS() as { stringData: Record<string, string> };
  const s = secret.stringData;
  return {
    file,
    env: {
      TENANT_GATE__store__url: s['store-url']!,
      TENANT_GATE__redis__url: s['redis-url']!,
      TENANT_GATE__session__secret: s['session-secret']!,
      TENANT_GATE_ADMIN_KEY: s['admin-key']!,
      TENANT_GATE_ADMIN_SECRET: s['admin-secret']!,
    },
  };
}

t.test('the deploy example with its placeholder Secret values does not pass check-config or start', async (t) => {
  const dir = tempDir(t);
  const { file, env } = deployExample(dir);
  const check = await cli(['check-config', '--config', file], env);
  t.equal(check.code, 2, 'check-config fails');
  t.match(check.err, /\/admin\/credentials\/0\/secret: is a placeholder/);
  t.match(check.err, /\/session\/secret: is a placeholder/);
  t.match(check.err, /\/store\/url \(password\): is a placeholder/);
  t.match(check.err, /not a loopback address/);
  t.notMatch(check.err, /REPLACE-with/, 'the values themselves are not shown');
  const serve = await cli(['serve', '--config', file], env);
  t.equal(serve.code, 2, 'serve refuses to start');
  t.match(serve.err, /\/admin\/credentials\/0\/secret/);
});

t.test('the default admin secret and short secrets stop a reachable admin listener; on loopback they warn', async (t) => {
  const dir = tempDir(t);
  const env = { TENANT_GATE__store__url: `sqlite:${join(dir, 'db.sqlite')}` };
  const open = await inProcess(['check-config', '--config', 'config/default.yaml'], { ...env, TENANT_GATE__admin__host: '0.0.0.0' });
  t.equal(open.code, 2, 'change-me-admin-secret on 0.0.0.0 is refused');
  t.match(open.err, /\/admin\/credentials\/0\/secret: is a placeholder value/);
  const serve = await cli(['serve', '--config', 'config/default.yaml'], { ...env, TENANT_GATE__admin__host: '::' });
  t.equal(serve.code, 2, 'and serve does not start on ::');

  const short = join(dir, 'short.yaml');
  writeFileSync(
    short,
    stringify({
      admin: { host: '10.1.2.3', credentials: [{ key: 'k', secret: 'Sh0rt-but-8' }] },
      upstreams: { webapp: 'http://127.0.0.1:3000' },
      tenancy: { baseDomain: 'ml.example.com' },
      store: { url: `sqlite:${join(dir, 'db.sqlite')}` },
    }),
  );
  const weak = await inProcess(['check-config', '--config', short]);
  t.equal(weak.code, 2);
  t.match(weak.err, /\/admin\/credentials\/0\/secret: is shorter than 16 characters/);

  const loopback = await inProcess(['check-config', '--config', 'config/default.yaml'], env);
  t.equal(loopback.code, 0, 'on loopback the default secret is accepted');
  t.match(loopback.err, /warning: \/admin\/credentials\/0\/secret: is a placeholder value/, 'with a warning');

  const strong = await inProcess(['check-config', '--config', 'config/default.yaml'], { ...env, TENANT_GATE__admin__host: '0.0.0.0', TENANT_GATE_ADMIN_SECRET: 'a-long-random-admin-secret-7f3k' });
  t.equal(strong.code, 0, 'a real secret is accepted anywhere');
  t.equal(strong.err, '', 'without a warning');
});

t.test('check-config --print redacts passwords in user-info and in URL queries', async (t) => {
  const dir = tempDir(t);
  const printed = await inProcess(['check-config', '--print', '--config', 'config/default.yaml'], {
    TENANT_GATE__store__url: 'postgres://tenant_gate@db.internal/tg?sslmode=require&password=S3cr3tPg',
    TENANT_GATE__redis__url: 'redis://user:R3disPw@redis.internal:6379/0',
    TENANT_GATE_ADMIN_SECRET: 'a-long-random-admin-secret-7f3k',
  });
  t.equal(printed.code, 0);
  t.notMatch(printed.out, /S3cr3tPg|R3disPw|7f3k/, 'no password is printed');
  t.match(printed.out, /password=\[redacted\]/);
  t.match(printed.out, /redis:\/\/user:\[redacted\]@redis\.internal/);
  t.equal(redactUrl('postgres://u:pw@h/db'), 'postgres://u:[redacted]@h/db');
  t.equal(redactUrl('redis://tok3n@h'), 'redis://[redacted]@h');
  t.equal(redactUrl('postgresql://h/db?user=u&PASSWORD=x&sslmode=require'), 'postgresql://h/db?user=u&PASSWORD=[redacted]&sslmode=require');
  t.ok(dir);
});
