/**
 * Looks at a CPU profile written by `npm run bench` (kept in the folder it prints),
 * alone or against a reference profile, per request:
 *
 *   npx tsx bench/inspect-profile.ts PROFILE [--reference PROFILE] [--area NAME] [--top N]
 *
 * `--area` keeps only the samples of one area (`tenant-gate src/`, `fastify`,
 * `node: internals`, `(native)`, a package name). The `.json` file written beside
 * each profile gives the window of samples taken under load and the request count.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { compareProfiles, summariseProfile, type ProfileWindow } from './profile.js';
import { comparisonTables, profileTables, textTable } from './report.js';

interface Sidecar {
  label?: string;
  requests?: number;
  window?: ProfileWindow;
}

function load(file: string, area: string | undefined, n: number) {
  const side: Sidecar = existsSync(`${file}.json`) ? (JSON.parse(readFileSync(`${file}.json`, 'utf8')) as Sidecar) : {};
  return summariseProfile(file, side.label ?? file, {
    ...(side.requests ? { requests: side.requests } : {}),
    ...(side.window ? { window: side.window } : {}),
    ...(area !== undefined ? { area } : {}),
    n,
  });
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { reference: { type: 'string' }, area: { type: 'string' }, top: { type: 'string', default: '20' } },
});
const file = positionals[0];
if (!file) {
  console.error('usage: npx tsx bench/inspect-profile.ts PROFILE [--reference PROFILE] [--area NAME] [--top N]');
  process.exit(2);
}
const n = Number(values.top);
const target = load(file, values.area, n);
const tables = values.reference
  ? (() => {
      const c = compareProfiles(load(values.reference, values.area, n), target, n);
      if (!c) throw new Error('both profiles need a request count (their .json files)');
      return comparisonTables(c);
    })()
  : profileTables(target);
for (const t of tables) console.log(`\n${t.title ?? ''}\n${textTable(t)}`);
