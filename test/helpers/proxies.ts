/**
 * Test helpers: Debian's nginx and Caddy run on free loopback ports with configurations
 * generated from the shipped ones in deploy/, a raw client that can choose its source
 * address, and a websocket handshake without a library.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http, { type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { freePort } from './free-port.js';

type Test = import('tap').Test;

/** The path of a binary, or undefined when it is not installed. */
export function findBinary(name: string, candidates: string[]): string | undefined {
  for (const c of candidates) if (existsSync(c)) return c;
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p ? p : undefined;
}

async function waitForPort(port: number, child: ChildProcess, logs: () => string): Promise<void> {
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`proxy exited (${child.exitCode}): ${logs()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/', method: 'HEAD', agent: false, headers: { host: 'probe.invalid' } }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on('error', () => resolve(false));
      req.setTimeout(500, () => req.destroy());
      req.end();
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`proxy did not listen on ${port}: ${logs()}`);
}

function startProcess(t: Test, bin: string, args: string[], port: number, env?: NodeJS.ProcessEnv) {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env: { ...process.env, ...env } } : {}) });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  );
  return { child, logs: () => out, ready: () => waitForPort(port, child, () => out) };
}

/** Starts nginx with deploy/nginx/tenant-gate.conf, its upstreams and port replaced. */
export async function startNginx(t: Test, bin: string, dir: string, opts: { gateway: string; webapp: string }) {
  const port = await freePort();
  const shipped = readFileSync(join(import.meta.dirname, '../../deploy/nginx/tenant-gate.conf'), 'utf8');
  const site = shipped
    .replace('server tenant-gate:8080;', `server ${opts.gateway};`)
    .replace('server webapp:3000;', `server ${opts.webapp};`)
    .replace(/listen 80;/, `listen 127.0.0.1:${port};`);
  if (site === shipped) throw new Error('the shipped nginx configuration changed shape');
  const prefix = join(dir, 'nginx');
  mkdirSync(join(prefix, 'logs'), { recursive: true });
  writeFileSync(join(prefix, 'site.conf'), site);
  writeFileSync(
    join(prefix, 'nginx.conf'),
    `daemon off;
master_process off;
worker_processes 1;
pid ${join(prefix, 'nginx.pid')};
error_log stderr warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${join(prefix, 'body')};
  proxy_temp_path ${join(prefix, 'proxy')};
  fastcgi_temp_path ${join(prefix, 'fastcgi')};
  uwsgi_temp_path ${join(prefix, 'uwsgi')};
  scgi_temp_path ${join(prefix, 'scgi')};
  include ${join(prefix, 'site.conf')};
}
`,
  );
  const p = startProcess(t, bin, ['-p', prefix, '-c', join(prefix, 'nginx.conf')], port);
  await p.ready();
  return { port, logs: p.logs };
}

/** Starts Caddy with deploy/caddy/Caddyfile, its addresses replaced (no admin endpoint, no automatic HTTPS). */
export async function startCaddy(t: Test, bin: string, dir: string, opts: { gateway: string; webapp: string }) {
  const port = await freePort();
  const shipped = readFileSync(join(import.meta.dirname, '../../deploy/caddy/Caddyfile'), 'utf8');
  const site = shipped
    .replaceAll('tenant-gate:8080', opts.gateway)
    .replaceAll('webapp:3000', opts.webapp)
    .replace(/^https:\/\/ml\.example\.com, https:\/\/\*\.ml\.example\.com \{$/m, `http://ml.example.com:${port}, http://*.ml.example.com:${port} {`);
  if (!site.includes(`:${port} {`)) throw new Error('the shipped Caddyfile changed shape');
  const home = join(dir, 'caddy');
  mkdirSync(home, { recursive: true });
  const file = join(home, 'Caddyfile');
  writeFileSync(file, `{\n\tadmin off\n\tauto_https off\n\tdefault_bind 127.0.0.1\n}\n\n${site}`);
  const child = startProcess(t, bin, ['run', '--config', file, '--adapter', 'caddyfile'], port, { HOME: home, XDG_DATA_HOME: home, XDG_CONFIG_HOME: home });
  await child.ready();
  return { port, logs: child.logs };
}

/** What a raw request returned. */
export interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A request to a loopback port with any Host and path (sent as is), optionally from another loopback source address. */
export function rawRequest(port: number, o: { path: string; host: string; method?: string; headers?: Record<string, string>; localAddress?: string; body?: string }): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: o.path, method: o.method ?? 'GET', headers: { host: o.host, ...o.headers }, setHost: false, agent: false, ...(o.localAddress ? { localAddress: o.localAddress } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

/** Answers websocket upgrades on an upstream: records the headers, completes the handshake, echoes bytes. */
export function echoWebsockets(server: http.Server): IncomingHttpHeaders[] {
  const seen: IncomingHttpHeaders[] = [];
  const sockets = new Set<Duplex>();
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  const close = server.close.bind(server);
  server.close = (cb?: (err?: Error) => void) => {
    sockets.forEach((s) => s.destroy());
    server.closeAllConnections();
    return close(cb);
  };
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => {
    seen.push(req.headers);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const accept = createHash('sha1').update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.on('data', (d: Buffer) => socket.write(d));
    socket.on('error', () => undefined);
  });
  return seen;
}

/** Opens a websocket through a proxy and checks that bytes come back; resolves with the status when refused. */
export function websocketRoundTrip(port: number, host: string, headers: Record<string, string> = {}): Promise<{ upgraded: boolean; status?: number; echoed?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      path: '/ws',
      setHost: false,
      agent: false,
      headers: { host, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64'), ...headers },
    });
    req.on('upgrade', (_res, socket) => {
      socket.once('data', (d: Buffer) => {
        socket.destroy();
        resolve({ upgraded: true, echoed: d.toString('utf8') });
      });
      socket.write('ping-through-proxy');
    });
    req.on('response', (res) => {
      res.resume();
      resolve({ upgraded: false, status: res.statusCode ?? 0 });
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('websocket timed out')));
    req.end();
  });
}
