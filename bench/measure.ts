/**
 * One load measurement with autocannon: a warm-up that is thrown away, then a timed
 * run. Returns requests per second, latency percentiles, the status codes seen, and
 * the CPU time the server's processes spent during the timed run.
 */
import autocannon from 'autocannon';
import { availableParallelism } from 'node:os';
import { machineBusyMs, treeCpuMs } from './child-process.js';

/** The request a measurement repeats. */
export interface Load {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  connections: number;
}

/** How long to run, in seconds. */
export interface Timing {
  warmupS: number;
  durationS: number;
}

/** What one timed run gave. */
export interface Measurement {
  /** Mean of the per-second request counts. */
  rps: number;
  p50: number;
  p99: number;
  /** Responses in the timed run. */
  total: number;
  /** Responses whose status was not the expected one, plus errors and timeouts. */
  unexpected: number;
  statuses: Record<string, number>;
  /** CPU time of the server's processes per response, microseconds (undefined without pids). */
  cpuUsPerReq?: number;
  /** Server CPU over wall time during the run (1.0 = one core busy). */
  cpuCores?: number;
  /** Share of all cores used by processes outside this benchmark during the run, 0 to 1. */
  foreign: number;
}

async function run(load: Load, durationS: number) {
  return autocannon({
    url: load.url,
    connections: load.connections,
    duration: durationS,
    timeout: 10,
    method: load.method ?? 'GET',
    ...(load.headers ? { headers: load.headers } : {}),
    ...(load.body !== undefined ? { body: load.body } : {}),
  });
}

/** Other work above this share of the machine during a run makes the run be repeated (once). */
const FOREIGN_LIMIT = 0.25;
/** Repeats allowed over a whole benchmark run, so a busy machine cannot stretch it much. */
let repeatsLeft = 6;

async function timed(load: Load, durationS: number, expect: number, pids?: () => number[]): Promise<Measurement> {
  const serverCpu = () => (pids ? pids().reduce((s, p) => s + treeCpuMs(p, 0), 0) : 0);
  const cpuBefore = serverCpu();
  const machineBefore = machineBusyMs();
  const oursBefore = treeCpuMs(process.pid, 4);
  const started = performance.now();
  const r = await run(load, durationS);
  const wallMs = performance.now() - started;
  const cpuMs = pids ? serverCpu() - cpuBefore : undefined;
  const foreignMs = machineBusyMs() - machineBefore - (treeCpuMs(process.pid, 4) - oursBefore);
  const statuses: Record<string, number> = {};
  let total = 0;
  for (const [code, { count }] of Object.entries(r.statusCodeStats)) {
    statuses[code] = count;
    total += count;
  }
  const expected = statuses[String(expect)] ?? 0;
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    total,
    unexpected: total - expected + r.errors + r.timeouts,
    statuses,
    ...(cpuMs !== undefined && total > 0 ? { cpuUsPerReq: (cpuMs * 1000) / total, cpuCores: cpuMs / wallMs } : {}),
    foreign: Math.max(0, foreignMs / (wallMs * availableParallelism())),
  };
}

/**
 * Warms up, then measures. `expect` is the status every response should have;
 * `pids` are the server's processes whose CPU time is read around the timed run.
 * A run during which other processes kept the machine busy is repeated once (within
 * a budget for the whole benchmark run), and the quieter of the two is kept.
 */
export async function measure(load: Load, timing: Timing, expect: number, pids?: () => number[]): Promise<Measurement> {
  if (timing.warmupS > 0) await run(load, timing.warmupS);
  const first = await timed(load, timing.durationS, expect, pids);
  if (first.foreign <= FOREIGN_LIMIT || repeatsLeft <= 0) return first;
  repeatsLeft--;
  console.log(`  other processes used ${(first.foreign * 100).toFixed(0)}% of the machine during the run: repeating it`);
  const second = await timed(load, timing.durationS, expect, pids);
  return second.foreign < first.foreign ? second : first;
}

/** Several timed runs of one target, summarised. */
export interface Series {
  runs: Measurement[];
  rps: number;
  p50: number;
  p99: number;
  cpuUsPerReq?: number;
  unexpected: number;
  /** Largest share of the machine other processes used during one of the runs. */
  foreign: number;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** Means over the runs (rps, p50, p99 and CPU per request). */
export function summarise(runs: Measurement[]): Series {
  const cpu = runs.map((r) => r.cpuUsPerReq).filter((x): x is number => x !== undefined);
  return {
    runs,
    rps: mean(runs.map((r) => r.rps)),
    p50: mean(runs.map((r) => r.p50)),
    p99: mean(runs.map((r) => r.p99)),
    ...(cpu.length > 0 ? { cpuUsPerReq: mean(cpu) } : {}),
    unexpected: runs.reduce((s, r) => s + r.unexpected, 0),
    foreign: Math.max(0, ...runs.map((r) => r.foreign)),
  };
}

/** One target of an interleaved measurement. */
export interface InterleavedTarget {
  load: Load;
  pids?: () => number[];
  /** The status this target answers, when not the one of the whole measurement. */
  expect?: number;
}

/**
 * Measures several targets in turns: each is warmed up, then the timed duration is cut
 * into `slices` turns per target, the order reversed every other turn, and each
 * target's turns are added up (requests and CPU time; latency percentiles averaged
 * over the turns). The machine's speed drifts over seconds (other tenants of the
 * host): in turns, every target sees the same drift, so ratios between them hold.
 */
export async function measureInterleaved(targets: InterleavedTarget[], timing: Timing, expect: number, slices: number): Promise<Measurement[]> {
  for (const t of targets) if (timing.warmupS > 0) await run(t.load, timing.warmupS);
  const turns: Measurement[][] = targets.map(() => []);
  const sliceS = Math.max(1, Math.round(timing.durationS / slices));
  for (let s = 0; s < slices; s++) {
    const order = targets.map((_, i) => i);
    if (s % 2 === 1) order.reverse();
    for (const i of order) turns[i]!.push(await timed(targets[i]!.load, sliceS, targets[i]!.expect ?? expect, targets[i]!.pids));
  }
  return turns.map((ms) => {
    const total = ms.reduce((a, m) => a + m.total, 0);
    const cpuMs = ms.reduce((a, m) => a + ((m.cpuUsPerReq ?? 0) * m.total) / 1000, 0);
    const statuses: Record<string, number> = {};
    for (const m of ms) for (const [code, n] of Object.entries(m.statuses)) statuses[code] = (statuses[code] ?? 0) + n;
    const hasCpu = ms.every((m) => m.cpuUsPerReq !== undefined);
    return {
      rps: mean(ms.map((m) => m.rps)),
      p50: mean(ms.map((m) => m.p50)),
      p99: mean(ms.map((m) => m.p99)),
      total,
      unexpected: ms.reduce((a, m) => a + m.unexpected, 0),
      statuses,
      ...(hasCpu && total > 0 ? { cpuUsPerReq: (cpuMs * 1000) / total, cpuCores: mean(ms.map((m) => m.cpuCores ?? 0)) } : {}),
      foreign: Math.max(0, ...ms.map((m) => m.foreign)),
    };
  });
}
