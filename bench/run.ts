/**
 * `npm run bench`: tenant-gate's benchmarks, as ratios against references measured in
 * the same run, on loopback only.
 *
 *   npm run bench                         builds dist/, then every section; writes BENCHMARKS.md
 *   npm run bench -- --quick              shorter runs, smaller directory (console only)
 *   npm run bench -- --only proxy         one section (console only); repeatable
 *   npm run bench -- --profile            profile every gateway scenario (default: only misses)
 *   npm run bench -- --no-profile         never profile
 *   npm run bench -- --log-level info     gateway and fastify references log at info
 *   npm run bench -- --write              write BENCHMARKS.md even with --quick/--only
 *   npm run bench -- --no-wait            start each section even when other processes keep the CPUs busy
 *
 * Sections: proxy, decisions, directory, stampede, logins, workers, forward-auth.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { machineBusy } from './child-process.js';
import { since, type BenchContext } from './context.js';
import { environment, printSection, writeBenchmarks, type SectionResult } from './report.js';
import { nginxBinary, nginxVersion } from './servers.js';
import { decisionsSection } from './sections/decisions.js';
import { directorySection } from './sections/directory.js';
import { forwardAuthSection } from './sections/forward-auth.js';
import { loginsSection } from './sections/logins.js';
import { proxySection } from './sections/proxy.js';
import { stampedeSection } from './sections/stampede.js';
import { workersSection } from './sections/workers.js';

const USAGE = [
  'npm run bench                          # builds dist/, runs every section, writes BENCHMARKS.md (about 12 minutes)',
  'npm run bench -- --quick               # shorter runs, smaller directory, console only',
  'npm run bench -- --only proxy          # one section: proxy, decisions, directory, stampede, logins, workers, forward-auth',
  'npm run bench -- --profile             # CPU-profile every gateway scenario (default: only those that miss)',
  'npm run bench -- --log-level info      # gateway and fastify references both at info',
  'npx tsx bench/inspect-profile.ts P --reference R   # a kept CPU profile against its reference, per request',
  'npx tsc -p bench/tsconfig.json         # type-check the benchmarks',
];

const SECTIONS: Record<string, (ctx: BenchContext) => Promise<SectionResult>> = {
  proxy: proxySection,
  decisions: decisionsSection,
  directory: directorySection,
  stampede: stampedeSection,
  logins: loginsSection,
  workers: workersSection,
  'forward-auth': forwardAuthSection,
};

/** A machine busier than this (share of all cores) before a section is waited for... */
const QUIET_BUSY = 0.25;
/** ...for at most this long over the whole run. */
const MAX_WAIT_MS = 60_000;

/** No run may take longer than this, whatever hangs. */
const HARD_LIMIT_MS = 15 * 60_000;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string', multiple: true },
      quick: { type: 'boolean', default: false },
      profile: { type: 'boolean' },
      'no-profile': { type: 'boolean', default: false },
      'log-level': { type: 'string', default: 'warn' },
      write: { type: 'boolean', default: false },
      'no-wait': { type: 'boolean', default: false },
    },
  });
  const only = values.only ?? [];
  for (const name of only) if (!SECTIONS[name]) throw new Error(`unknown section "${name}"; sections: ${Object.keys(SECTIONS).join(', ')}`);
  const logLevel = values['log-level'];
  if (logLevel !== 'warn' && logLevel !== 'info') throw new Error('--log-level must be warn or info');
  const quick = values.quick ?? false;
  // tmpfs when there is one: SQLite files there cost no fsync.
  const tmpRoot = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const nginx = nginxBinary();
  const ctx: BenchContext = {
    quick,
    timing: quick ? { warmupS: 1, durationS: 3 } : { warmupS: 2, durationS: 6 },
    rounds: quick ? 1 : 3,
    connections: 50,
    logLevel,
    profile: values['no-profile'] ? 'never' : values.profile ? 'always' : 'auto',
    tmp: mkdtempSync(join(tmpRoot, 'tenant-gate-bench-')),
    tenants: quick ? 20_000 : 100_000,
    logins: quick ? 40 : 200,
    ...(nginx ? { nginx } : {}),
  };
  const hardStop = setTimeout(() => {
    console.error(`bench: still running after ${HARD_LIMIT_MS / 60_000} minutes, giving up`);
    process.exit(2);
  }, HARD_LIMIT_MS);
  hardStop.unref();

  const startedAt = new Date();
  const t0 = performance.now();
  const results: SectionResult[] = [];
  let failed = false;
  let waitedMs = 0;
  // Other processes on the machine distort every figure: wait (a bounded time) for quiet.
  const quiet = async (): Promise<number> => {
    let busy = await machineBusy(2000);
    while (busy > QUIET_BUSY && !values['no-wait'] && waitedMs < MAX_WAIT_MS) {
      console.log(`  the CPUs are ${(busy * 100).toFixed(0)}% busy with other work: waiting`);
      const t = performance.now();
      busy = await machineBusy(5000);
      waitedMs += performance.now() - t;
    }
    return busy;
  };
  try {
    for (const [name, section] of Object.entries(SECTIONS)) {
      if (only.length > 0 && !only.includes(name)) continue;
      console.log(`\n--- ${name} ---`);
      try {
        const busy = await quiet();
        const r = await section(ctx);
        r.notes.push(`CPUs busy with other work just before this section: ${(busy * 100).toFixed(0)}% (of all cores, over 2 s).`);
        results.push(r);
        printSection(r);
      } catch (err) {
        failed = true;
        console.error(`section ${name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      }
    }
  } finally {
    rmSync(ctx.tmp, { recursive: true, force: true });
  }
  const elapsedS = since(t0);
  console.log(`\nbench finished in ${elapsedS.toFixed(0)} s`);
  const full = only.length === 0 && !quick;
  if ((full && !failed) || values.write) {
    const file = fileURLToPath(new URL('../BENCHMARKS.md', import.meta.url));
    const args = process.argv.slice(2).join(' ');
    writeBenchmarks(
      file,
      {
        startedAt,
        elapsedS,
        command: `npm run bench${args ? ` -- ${args}` : ''}`,
        commands: USAGE,
        settings: [
          `Log level of tenant-gate (\`log.level\`) and of the fastify references: \`${ctx.logLevel}\`.`,
          `Load: autocannon ${ctx.connections} connections, ${ctx.timing.warmupS} s warm-up (1 s in later rounds) + ${ctx.timing.durationS} s per run, ${ctx.rounds} round(s), references alternating with targets; a run during which other processes used more than 25% of the machine is repeated once.`,
          'Every server runs in a process of its own; the load generator runs in the orchestrating process; all of them share the same cores.',
          `Directory: ${ctx.tenants.toLocaleString('en-US')} tenants; logins: ${ctx.logins}.`,
        ],
        env: environment(nginx ? nginxVersion(nginx) : undefined),
      },
      results,
    );
    console.log(`results written to ${file}`);
  } else if (!full) {
    console.log('BENCHMARKS.md not written (partial or quick run; --write forces it)');
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(2);
  },
);
