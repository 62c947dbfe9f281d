/**
 * `/healthz` (the process answers) and `/readyz` (every dependency answers), on both
 * listeners. Readiness names the failing check but never its error text.
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/** A named readiness check; it throws when the dependency is not usable. */
export interface ReadinessCheck {
  name: string;
  check: () => Promise<void>;
}

/** Options: the checks `/readyz` runs and how long each may take. */
interface HealthOptions {
  checks: ReadinessCheck[];
  timeoutMs?: number;
}

async function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

async function health(app: FastifyInstance, opts: HealthOptions): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 2000;
  app.get('/healthz', { logLevel: 'warn' }, async (_req, reply) => reply.header('cache-control', 'no-store').send({ status: 'ok' }));
  app.get('/readyz', { logLevel: 'warn' }, async (req, reply) => {
    const results = await Promise.all(
      opts.checks.map(async (c) => {
        try {
          await withTimeout(c.check(), timeoutMs);
          return [c.name, 'ok'] as const;
        } catch (err) {
          req.log.warn({ check: c.name, err: (err as Error).message }, 'readiness check failed');
          return [c.name, 'failing'] as const;
        }
      }),
    );
    const ready = results.every(([, r]) => r === 'ok');
    return reply
      .code(ready ? 200 : 503)
      .header('cache-control', 'no-store')
      .send({ status: ready ? 'ready' : 'not ready', checks: Object.fromEntries(results) });
  });
}

/** Registers `/healthz` and `/readyz`. */
export default fp(health, { name: 'tenant-gate-health', fastify: '5.x' });
