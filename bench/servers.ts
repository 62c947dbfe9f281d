/**
 * The reference servers of the benchmarks, each in a process of its own: a tiny
 * node:http upstream, a bare fastify + @fastify/http-proxy, a fastify hello-world,
 * nginx with one worker, and a test identity provider. Everything listens on
 * 127.0.0.1 only.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { freePort } from '../test/helpers/free-port.js';
import { join } from 'node:path';
import { childPids, outputTail, spawnChild, type ChildHandle, type ChildService } from './child-process.js';

/** A server under test or reference, wherever it runs. */
export interface Target {
  name: string;
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Processes whose CPU time counts for this target. */
  pids(): number[];
  stop(): Promise<void>;
}

/** Log level of the fastify references; the gateway is configured with the same. */
export type LogLevel = 'warn' | 'info';

/** Jobs understood by server-child.ts. */
export type ServerJob =
  | { kind: 'upstream' }
  | { kind: 'bare-proxy'; upstream: string; logLevel: LogLevel }
  | { kind: 'hello'; logLevel: LogLevel }
  | { kind: 'auth-ok' }
  | { kind: 'idp'; clients: unknown[]; users: Record<string, Record<string, unknown>> };

const UPSTREAM_BODY = JSON.stringify({ ok: true, app: 'webapp' });

async function listenLoopback(server: http.Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

/** Starts the tiny upstream: answers every request with a small JSON body. Runs in a child. */
export async function serveUpstream(): Promise<ChildService> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(UPSTREAM_BODY) });
      res.end(UPSTREAM_BODY);
    });
  });
  server.keepAliveTimeout = 65_000;
  const port = await listenLoopback(server);
  return {
    info: { port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Starts the do-nothing auth service: 200 with an empty body to every request. Runs in a child. */
export async function serveAuthOk(): Promise<ChildService> {
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-length': 0 });
    res.end();
  });
  server.keepAliveTimeout = 65_000;
  const port = await listenLoopback(server);
  return {
    info: { port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Starts fastify with nothing but @fastify/http-proxy to `upstream`. Runs in a child. */
export async function serveBareProxy(upstream: string, logLevel: LogLevel): Promise<ChildService> {
  const { default: Fastify } = await import('fastify');
  const { default: httpProxy } = await import('@fastify/http-proxy');
  const app = Fastify({ logger: { level: logLevel } });
  await app.register(httpProxy, { upstream, prefix: '/' });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { info: { port: (app.server.address() as AddressInfo).port }, close: () => app.close() };
}

/**
 * Starts a fastify hello-world on `GET /`, and on `POST /login` the smallest form
 * handler of the same shape as email discovery (@fastify/formbody, 303 to a login
 * URL). Runs in a child.
 */
export async function serveHello(logLevel: LogLevel): Promise<ChildService> {
  const { default: Fastify } = await import('fastify');
  const { default: formbody } = await import('@fastify/formbody');
  const app = Fastify({ logger: { level: logLevel } });
  await app.register(formbody);
  app.get('/', async () => ({ hello: 'world' }));
  app.post('/login', async (req, reply) => {
    const email = String((req.body as Record<string, unknown> | undefined)?.email ?? '');
    return reply.redirect(`/login/acme?login_hint=${encodeURIComponent(email)}`, 303);
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { info: { port: (app.server.address() as AddressInfo).port }, close: () => app.close() };
}

/** Starts the test identity provider (oidc-provider). Runs in a child. */
export async function serveIdp(job: Extract<ServerJob, { kind: 'idp' }>): Promise<ChildService> {
  const { startIdp } = await import('../test/helpers/idp.js');
  const idp = await startIdp({ clients: job.clients as never, users: job.users });
  return { info: { issuer: idp.issuer, port: Number(new URL(idp.issuer).port) }, close: () => idp.close() };
}

const SERVER_CHILD = new URL('./server-child.ts', import.meta.url);

function childTarget(name: string, handle: ChildHandle): Target & { handle: ChildHandle } {
  const port = Number(handle.info.port);
  return { name, url: `http://127.0.0.1:${port}`, port, pids: () => [handle.pid], stop: () => handle.stop(), handle };
}

/** Launches a reference server in its own process. */
export async function launchServer(name: string, job: ServerJob, nodeArgs: string[] = []) {
  const handle = await spawnChild(name, SERVER_CHILD, job as Record<string, unknown>, { nodeArgs });
  return childTarget(name, handle);
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export { freePort };

/** Waits until something accepts connections on 127.0.0.1:port; bounded. */
export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; attempt < 1000 && Date.now() < deadline; attempt++) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

/** The installed nginx binary, or undefined. */
export function nginxBinary(): string | undefined {
  try {
    const out = execFileSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).trim();
    return out || undefined;
  } catch {
    return undefined;
  }
}

/** `nginx version: nginx/1.22.1` -> `1.22.1` (nginx -v writes to stderr). */
export function nginxVersion(binary: string): string {
  const r = spawnSync(binary, ['-v'], { encoding: 'utf8' });
  const text = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  return /nginx\/(\S+)/.exec(text)?.[1] ?? 'unknown';
}

/**
 * Starts nginx (one worker, proxy_pass with upstream keep-alive, no access log) in the
 * foreground from a configuration generated in `dir`. It runs under `timeout`, so it
 * stops by itself even if the orchestrator dies.
 */
export async function startNginx(binary: string, upstreamPort: number, dir: string): Promise<Target> {
  const port = await freePort();
  return startNginxHttp(binary, dir, port, `  upstream webapp {
    server 127.0.0.1:${upstreamPort};
    keepalive 128;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://webapp;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }`);
}

/**
 * Starts nginx (one worker, no access log) with `httpBody` inside its http block, in
 * the foreground, under `timeout`; `port` is one it listens on (waited for).
 */
export async function startNginxHttp(binary: string, dir: string, port: number, httpBody: string): Promise<Target> {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  const user = process.getuid?.() === 0 ? 'user www-data nogroup;\n' : '';
  const conf = `${user}worker_processes 1;
daemon off;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'client_body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  keepalive_requests 1000000;
${httpBody}
}
`;
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, conf);
  const tail = outputTail();
  const child = spawn('timeout', ['--signal=TERM', '--kill-after=5', '900', binary, '-e', join(dir, 'error.log'), '-p', dir, '-c', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', tail.push);
  child.stderr.on('data', tail.push);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.on('exit', () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  try {
    await Promise.race([
      waitForPort(port),
      exited.then(() => {
        throw new Error(`nginx exited at start: ${tail.text()}`);
      }),
    ]);
  } catch (err) {
    child.kill('SIGTERM');
    throw err;
  }
  return {
    name: 'nginx',
    url: `http://127.0.0.1:${port}`,
    port,
    // timeout -> nginx master -> worker
    pids: () => childPids(child.pid!).flatMap((master) => [master, ...childPids(master)]),
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 8000);
      await exited;
      clearTimeout(killer);
    },
  };
}
