/**
 * What every benchmark section is given by the orchestrator.
 */
import type { Timing } from './measure.js';
import type { LogLevel } from './servers.js';

/** Settings of one run. */
export interface BenchContext {
  quick: boolean;
  /** Warm-up and timed run of every load measurement. */
  timing: Timing;
  /** Each load measurement is repeated this often, references alternating with targets. */
  rounds: number;
  /** Concurrent connections of the load generator. */
  connections: number;
  /** Log level of the gateway and of the fastify references alike. */
  logLevel: LogLevel;
  /** Profile a gateway scenario: only when it misses a target, always, or never. */
  profile: 'auto' | 'always' | 'never';
  /** A fresh folder for this run (removed at the end). */
  tmp: string;
  /** Tenants in the large directory. */
  tenants: number;
  /** Logins in the login measurement. */
  logins: number;
  /** Path of the installed nginx, when there is one. */
  nginx?: string;
}

/** Elapsed seconds since `t0` (from performance.now()). */
export const since = (t0: number) => (performance.now() - t0) / 1000;
