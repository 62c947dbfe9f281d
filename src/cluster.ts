/**
 * `workers` > 1: a primary process forks that many workers, each serving both
 * listeners on the shared ports, relays cache invalidations between them, replaces
 * a worker that dies, and on SIGTERM/SIGINT lets every worker finish its in-flight
 * requests before exiting.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { isInvalidationMessage } from './directory/cluster-invalidation-bus.js';

/** Runs the primary; resolves to the exit code once every worker has stopped. */
export function runPrimary(workers: number, logger: Logger): Promise<number> {
  let stopping = false;
  let restarts = 0;
  const fork = (): Worker => {
    const worker = cluster.fork();
    worker.on('message', (m: unknown) => {
      if (!isInvalidationMessage(m)) return;
      for (const other of Object.values(cluster.workers ?? {})) {
        if (other && other.id !== worker.id && other.isConnected()) other.send(m);
      }
    });
    return worker;
  };
  for (let i = 0; i < workers; i++) fork();
  logger.info({ workers }, 'tenant-gate primary started');

  return new Promise<number>((resolve) => {
    cluster.on('exit', (worker, code, signal) => {
      if (stopping) {
        if (Object.keys(cluster.workers ?? {}).length === 0) resolve(0);
        return;
      }
      restarts++;
      logger.error({ worker: worker.id, code, signal }, 'worker exited; starting a new one');
      const delay = Math.min(5000, 100 * 2 ** Math.min(restarts, 6));
      setTimeout(() => {
        if (!stopping) fork();
      }, delay).unref();
    });
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down workers');
      const alive = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
      if (alive.length === 0) resolve(0);
      for (const w of alive) w.process.kill('SIGTERM');
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
