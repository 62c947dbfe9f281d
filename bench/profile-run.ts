/**
 * Profiles a scenario: a server process (a gateway or a reference) started with
 * `--cpu-prof`, the same load as in the measurement, and a summary of the samples
 * taken during the load only.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchContext } from './context.js';
import type { ChildHandle } from './child-process.js';
import { measure, type Load } from './measure.js';
import { cpuProfArgs, findProfile, summariseProfile, type ProfileSummary } from './profile.js';

/** Where profiles are kept after the run, for a closer look (e.g. in Chrome DevTools). */
const PROFILE_DIR = join(tmpdir(), 'tenant-gate-bench-profiles');

/** A server process started for profiling, with the load to put on it. */
export interface ProfiledScenario {
  server: { handle: ChildHandle; stop(): Promise<void> };
  load: Load;
  expect: number;
}

/** Starts the scenario with profiling on, loads it for `seconds`, and summarises the profile. */
export async function profileScenario(
  ctx: BenchContext,
  label: string,
  start: (nodeArgs: string[]) => Promise<ProfiledScenario>,
  seconds = 4,
): Promise<ProfileSummary> {
  const slug = label.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  const dir = join(ctx.tmp, `profile-${slug}`);
  mkdirSync(dir, { recursive: true });
  const { server, load, expect } = await start(cpuProfArgs(dir));
  let requests = 0;
  let window: { fromUs: number; toUs: number };
  try {
    await measure(load, { warmupS: 0, durationS: 1 }, expect);
    const fromUs = await server.handle.clock();
    const m = await measure(load, { warmupS: 0, durationS: seconds }, expect);
    window = { fromUs, toUs: await server.handle.clock() };
    requests = m.total;
  } finally {
    await server.stop();
  }
  const file = findProfile(dir);
  if (!file) throw new Error(`${label}: no CPU profile was written`);
  mkdirSync(PROFILE_DIR, { recursive: true });
  const kept = join(PROFILE_DIR, `${slug}.cpuprofile`);
  copyFileSync(file, kept);
  // What bench/inspect-profile.ts needs to look at the same samples again.
  writeFileSync(`${kept}.json`, JSON.stringify({ label, requests, window }, null, 2));
  console.log(`profile of ${label}: ${kept} (npx tsx bench/inspect-profile.ts ${kept})`);
  return summariseProfile(file, label, { requests, window });
}
