/**
 * Servers under test run in child processes of their own, so the load generator (in
 * the orchestrating process) never shares an event loop with what it measures.
 *
 * Rules:
 * - a child gets its job as JSON in `BENCH_CHILD_JOB` and answers over IPC: `ready`
 *   with what it serves, then replies to `stats`, `clock` and `stop`;
 * - a child stops by itself when its parent goes away (IPC disconnect) and in any
 *   case after `maxLifetimeMs`; `stop` closes its servers and exits normally, which
 *   is when `--cpu-prof` writes its profile;
 * - the parent waits a bounded time for every answer and kills what does not stop.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** What a child serves, as returned by its start function. */
export interface ChildService {
  info: Record<string, unknown>;
  stats?(): unknown;
  close(): Promise<void>;
}

interface ChildMessage {
  type: 'ready' | 'reply' | 'failed';
  id?: number;
  info?: Record<string, unknown>;
  data?: unknown;
  message?: string;
}

/** Default lifetime of a child, whatever happens to its parent. */
const MAX_LIFETIME_MS = 15 * 60_000;

/** Runs inside a child: starts the service described by the job and serves IPC requests. */
export function runChild<J extends { maxLifetimeMs?: number }>(start: (job: J) => Promise<ChildService>): void {
  const job = JSON.parse(process.env.BENCH_CHILD_JOB ?? '{}') as J;
  const send = (m: ChildMessage) => {
    if (process.connected) process.send?.(m);
  };
  setTimeout(() => process.exit(3), job.maxLifetimeMs ?? MAX_LIFETIME_MS).unref();
  let service: ChildService | undefined;
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => process.exit(code), 5000);
    force.unref();
    try {
      await service?.close();
    } finally {
      process.exit(code);
    }
  };
  process.on('disconnect', () => void stop(0));
  process.on('message', (raw: { id: number; cmd: string }) => {
    if (raw.cmd === 'stop') {
      send({ type: 'reply', id: raw.id, data: null });
      void stop(0);
    } else if (raw.cmd === 'clock') {
      send({ type: 'reply', id: raw.id, data: Number(process.hrtime.bigint() / 1000n) });
    } else if (raw.cmd === 'stats') {
      send({ type: 'reply', id: raw.id, data: service?.stats?.() ?? null });
    }
  });
  start(job).then(
    (s) => {
      service = s;
      send({ type: 'ready', info: s.info });
    },
    (err: unknown) => {
      send({ type: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      void stop(1);
    },
  );
}

/** A running child process, as the orchestrator sees it. */
export interface ChildHandle {
  readonly name: string;
  readonly pid: number;
  readonly info: Record<string, unknown>;
  /** Recent output of the child, for error messages. */
  tail(): string;
  stats<T>(): Promise<T>;
  /** The child's monotonic clock in microseconds (the clock of its CPU profile). */
  clock(): Promise<number>;
  /** Asks the child to stop; kills it when it has not exited in time. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
let cleanupInstalled = false;

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', () => {
    for (const child of live) if (child.exitCode === null && child.pid !== undefined) child.kill('SIGKILL');
  });
}

/** Collects the last lines a process wrote. */
export function outputTail(max = 40) {
  const lines: string[] = [];
  return {
    push(chunk: Buffer) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      if (lines.length > max) lines.splice(0, lines.length - max);
    },
    text: () => lines.join('\n'),
  };
}

const TSX_LOADER = import.meta.resolve('tsx');

/** Starts `entry` (a TypeScript file under bench/) with tsx and waits until it is ready. */
export async function spawnChild(
  name: string,
  entry: URL,
  job: Record<string, unknown>,
  opts: { nodeArgs?: string[]; readyTimeoutMs?: number } = {},
): Promise<ChildHandle> {
  installCleanup();
  // Log lines (stdout) go to /dev/null: at level info a loaded server writes two per
  // request, which this process would otherwise have to read while it generates load.
  const child = spawn(process.execPath, ['--import', TSX_LOADER, ...(opts.nodeArgs ?? []), fileURLToPath(entry)], {
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    env: { ...process.env, BENCH_CHILD_JOB: JSON.stringify(job), NODE_ENV: 'production' },
  });
  live.add(child);
  const tail = outputTail();
  child.stderr!.on('data', tail.push);
  let nextId = 1;
  const pending = new Map<number, (data: unknown) => void>();
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      live.delete(child);
      resolve();
    }),
  );

  const info = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: not ready after ${opts.readyTimeoutMs ?? 60_000} ms\n${tail.text()}`)), opts.readyTimeoutMs ?? 60_000);
    child.on('message', (m: ChildMessage) => {
      if (m.type === 'ready') {
        clearTimeout(timer);
        resolve(m.info ?? {});
      } else if (m.type === 'failed') {
        clearTimeout(timer);
        reject(new Error(`${name} failed to start: ${m.message ?? ''}`));
      } else if (m.type === 'reply' && m.id !== undefined) {
        pending.get(m.id)?.(m.data);
        pending.delete(m.id);
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${String(child.exitCode)} before it was ready\n${tail.text()}`));
    });
  }).catch(async (err: unknown) => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
    throw err;
  });

  const request = <T>(cmd: string, timeoutMs = 10_000) =>
    new Promise<T>((resolve, reject) => {
      if (!child.connected) {
        reject(new Error(`${name} is not running`));
        return;
      }
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${name}: no answer to ${cmd}`));
      }, timeoutMs);
      pending.set(id, (data) => {
        clearTimeout(timer);
        resolve(data as T);
      });
      child.send({ id, cmd });
    });

  return {
    name,
    pid: child.pid!,
    info,
    tail: tail.text,
    stats: <T>() => request<T>('stats'),
    clock: () => request<number>('clock'),
    async stop() {
      if (child.exitCode !== null) return;
      await request('stop', 3000).catch(() => undefined);
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

let clockTicks: number | undefined;

function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** CPU time (user + system, all threads) a process has used so far, in milliseconds; from /proc. */
export function processCpuMs(pid: number): number {
  const clockTicks = ticksPerSecond();
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / clockTicks;
}

/** The direct children of a process (Linux). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** CPU time of a process and all its descendants, in milliseconds. */
export function treeCpuMs(pid: number, depth = 3): number {
  let total = 0;
  try {
    total += processCpuMs(pid);
  } catch {
    return 0;
  }
  if (depth > 0) for (const c of childPids(pid)) total += treeCpuMs(c, depth - 1);
  return total;
}

function cpuTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Busy CPU time of the whole machine so far (all cores), in milliseconds. */
export function machineBusyMs(): number {
  return (cpuTicks().busy * 1000) / ticksPerSecond();
}

/** Share of the machine's CPU time (all cores) spent busy over the next `ms`, 0 to 1. */
export async function machineBusy(ms: number): Promise<number> {
  const a = cpuTicks();
  await new Promise((r) => setTimeout(r, ms));
  const b = cpuTicks();
  return b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : 0;
}
