import { normalizeHost } from '../../src/tenancy/host.ts';
import { MemorySessionStore } from '../../src/session/memory-store.ts';
import { identityHeaders } from '../../src/oidc/authenticate.ts';
import { createLogger } from '../../src/logger.ts';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { percentDecode } from '../../src/tenancy/percent.ts';
const time = (label: string, n: number, f: (i: number) => unknown) => {
  for (let i = 0; i < n / 10; i++) f(i);
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) f(i);
  const ns = Number(process.hrtime.bigint() - t) / n;
  console.log(label.padEnd(60), (ns / 1000).toFixed(2), 'µs');
};
time('normalizeHost(acme.ml.example.com)', 200000, () => normalizeHost('acme.ml.example.com'));
time('normalizeHost(acme.ml.example.com:8080)', 200000, () => normalizeHost('acme.ml.example.com:8080'));
const sessions = new MemorySessionStore();
const id = await sessions.create({ identity: { subject: 'alice', email: 'alice@acme.com', name: 'Alice Admin', groups: ['Admins', 'Users'], admin: true }, tenant: 'acme', company: 'c-acme', clientId: 'acme-web', idToken: 'x'.repeat(900), accessToken: 'y'.repeat(700), refreshToken: 'z'.repeat(300), createdAt: Date.now(), lastSeenAt: Date.now(), expiresAt: Date.now() + 1e7 } as never, 3600);
let p: Promise<unknown> = Promise.resolve();
const t0 = process.hrtime.bigint(); const N = 100000;
for (let i = 0; i < N; i++) await sessions.get(id);
console.log('MemorySessionStore.get (awaited)'.padEnd(60), (Number(process.hrtime.bigint() - t0) / N / 1000).toFixed(2), 'µs');
const data = await sessions.get(id);
time('structuredClone(session)', 100000, () => structuredClone(data));
time('identityHeaders(session)', 100000, () => identityHeaders(data as never));
const sink = new Writable({ write(_c, _e, cb) { cb(); } });
const tg = createLogger('warn', sink).child({ listener: 'public' });
const plain = pino({ level: 'warn' }, sink as never).child({ listener: 'public' });
time('tenant-gate logger .child({reqId}) (fastify does this per request)', 100000, (i) => tg.child({ reqId: `req-${i}` }));
time('plain pino .child({reqId})', 100000, (i) => plain.child({ reqId: `req-${i}` }));
const looseCanonical = (path: string) => {
  const decoded = (percentDecode(path, 'lenient') ?? path).replace(/\\/g, '/');
  const out: string[] = [];
  for (const seg of decoded.split('/')) { if (seg === '' || seg === '.') continue; if (seg === '..') out.pop(); else out.push(seg); }
  return `/${out.join('/')}`.toLowerCase();
};
time('looseCanonical copy (/projects/all)', 200000, () => looseCanonical('/projects/all'));
time('new URLSearchParams + toString (loginPath)', 200000, () => { const q = new URLSearchParams(); q.set('redirect', '/projects/all'); return `/login/acme?${q.toString()}`; });
