/**
 * Results: tables on the console, and BENCHMARKS.md.
 *
 * BENCHMARKS.md keeps everything outside the generated block (between the
 * `bench:results` markers) as it is, so the analysis written under the results
 * survives a new run.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import type { ProfileComparison, ProfileSummary } from './profile.js';

/** A table of one measurement. */
export interface Table {
  title?: string;
  columns: string[];
  rows: string[][];
}

/** A target and how the run did against it; `pass` undefined: not measured or no target. */
export interface Check {
  what: string;
  measured: string;
  target: string;
  pass: boolean | undefined;
}

/** What a section reports. */
export interface SectionResult {
  id: string;
  title: string;
  /** What the ratios mean, in a sentence or two. */
  about: string;
  tables: Table[];
  checks: Check[];
  notes: string[];
  profiles: ProfileSummary[];
  /** Target profiles against their reference's, per request. */
  comparisons?: ProfileComparison[];
  elapsedS: number;
}

/** A number with a fixed count of decimals and thousands separators. */
export function fmt(n: number | undefined, digits = 0): string {
  if (n === undefined || !Number.isFinite(n)) return '–';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A ratio as `0.93`. */
export const ratio = (n: number) => fmt(n, 2);

/** A ratio checked against a target, as `0.896`: two decimals could round a miss up to the target. */
export const ratio3 = (n: number) => fmt(n, 3);

const verdict = (pass: boolean | undefined) => (pass === undefined ? '–' : pass ? 'PASS' : 'MISS');

/** A table as aligned text. */
export function textTable(t: Table): string {
  const widths = t.columns.map((c, i) => Math.max(c.length, ...t.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(t.columns), widths.map((w) => '-'.repeat(w)).join('  '), ...t.rows.map(line)].join('\n');
}

function checksTable(checks: Check[]): Table {
  return { columns: ['target', 'measured', 'wanted', 'result'], rows: checks.map((c) => [c.what, c.measured, c.target, verdict(c.pass)]) };
}

/** The tables of one profile summary. */
export function profileTables(p: ProfileSummary): Table[] {
  const per = p.busyUsPerReq !== undefined ? `, ${fmt(p.busyUsPerReq, 1)} µs busy per request` : '';
  return [
    { title: `${p.label}: busy time by area (${fmt(p.busyMs)} ms sampled${per})`, columns: ['area', '% busy'], rows: p.areas.map((l) => [l.name, fmt(l.pct, 1)]) },
    { title: `${p.label}: top self time`, columns: ['function', 'where', '% busy'], rows: p.topSelf.map((l) => [l.name, l.where, fmt(l.pct, 1)]) },
    { title: `${p.label}: tenant-gate functions, inclusive time`, columns: ['function', 'where', '% busy'], rows: p.srcInclusive.map((l) => [l.name, l.where, fmt(l.pct, 1)]) },
  ];
}

/** The tables of a comparison of two profiles. */
export function comparisonTables(c: ProfileComparison): Table[] {
  const row = (l: { name: string; where: string; referenceUs: number; targetUs: number }, withWhere: boolean) => [
    l.name,
    ...(withWhere ? [l.where] : []),
    fmt(l.referenceUs, 1),
    fmt(l.targetUs, 1),
    fmt(l.targetUs - l.referenceUs, 1),
  ];
  return [
    {
      title: `${c.label} vs ${c.reference}: sampled time per request by area, µs`,
      columns: ['area', c.reference, c.label, 'extra'],
      rows: c.areas.map((l) => row(l, false)),
    },
    {
      title: `${c.label} vs ${c.reference}: functions with the most extra self time per request, µs`,
      columns: ['function', 'where', 'reference', 'target', 'extra'],
      rows: c.functions.map((l) => row(l, true)),
    },
  ];
}

/** Prints a section to the console. */
export function printSection(s: SectionResult): void {
  const out: string[] = ['', `=== ${s.title} (${fmt(s.elapsedS)} s) ===`];
  for (const t of s.tables) {
    if (t.title) out.push('', t.title);
    out.push(textTable(t));
  }
  if (s.checks.length > 0) out.push('', textTable(checksTable(s.checks)));
  for (const n of s.notes) out.push(`note: ${n}`);
  for (const p of s.profiles) for (const t of profileTables(p)) out.push('', t.title ?? '', textTable(t));
  for (const c of s.comparisons ?? []) for (const t of comparisonTables(c)) out.push('', t.title ?? '', textTable(t));
  console.log(out.join('\n'));
}

const esc = (s: string) => s.replace(/\|/g, '\\|');

/** Figures such as `1,234`, `0.93`, `30.0 ms`, `12%`, `2,486 / 2,042` or `–`. */
const NUMERIC = /^(–|-?[\d.,]+( ?(ms|µs|MB|s|%))?( \/ -?[\d.,]+)*)$/;

function mdTable(t: Table): string {
  const head = `| ${t.columns.map(esc).join(' | ')} |`;
  const numeric = t.columns.map((_, i) => i > 0 && t.rows.length > 0 && t.rows.every((r) => NUMERIC.test(r[i] ?? '–')));
  const sep = `| ${numeric.map((n) => (n ? '---:' : '---')).join(' | ')} |`;
  return [head, sep, ...t.rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}

function version(pkg: string): string {
  try {
    return (JSON.parse(readFileSync(new URL(`../node_modules/${pkg}/package.json`, import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

/** The machine and software the run used. */
export function environment(nginx: string | undefined): Table {
  const cpus = os.cpus();
  let nproc = String(os.availableParallelism());
  try {
    nproc = execFileSync('nproc', { encoding: 'utf8' }).trim();
  } catch {
    // os.availableParallelism() already says it
  }
  return {
    columns: ['what', 'value'],
    rows: [
      ['cores (`nproc`)', nproc],
      ['CPU model', `${cpus[0]?.model ?? 'unknown'} (${cpus.length} logical CPUs)`],
      ['memory', `${fmt(os.totalmem() / 2 ** 30, 1)} GiB`],
      ['kernel', `${os.type()} ${os.release()}`],
      ['node', process.version],
      ['fastify', version('fastify')],
      ['@fastify/http-proxy', version('@fastify/http-proxy')],
      ['@fastify/reply-from', version('@fastify/reply-from')],
      ['undici', version('undici')],
      ['autocannon', version('autocannon')],
      ['oidc-provider', version('oidc-provider')],
      ['better-sqlite3', version('better-sqlite3')],
      ['pg', version('pg')],
      ['nginx', nginx ?? 'not installed'],
    ],
  };
}

const BEGIN = '<!-- bench:results:begin (written by `npm run bench`; edit outside these markers) -->';
const END = '<!-- bench:results:end -->';

/** Options of {@link writeBenchmarks}. */
export interface RunInfo {
  startedAt: Date;
  elapsedS: number;
  command: string;
  /** How to run it, one line each. */
  commands: string[];
  settings: string[];
  env: Table;
}

/** Rewrites the generated block of BENCHMARKS.md; the rest of the file is kept. */
export function writeBenchmarks(file: string, run: RunInfo, sections: SectionResult[]): void {
  const parts: string[] = [BEGIN, ''];
  parts.push(`Last full run: ${run.startedAt.toISOString()}, took ${fmt(run.elapsedS)} s (\`${run.command}\`).`, '');
  parts.push('### Machine and versions', '', mdTable(run.env), '');
  parts.push('### Commands', '', '```sh', ...run.commands, '```', '');
  parts.push('### Settings of this run', '', ...run.settings.map((s) => `- ${s}`), '');
  const misses = sections.flatMap((s) => s.checks.filter((c) => c.pass === false).map((c) => `${s.title}: ${c.what}`));
  const all = sections.flatMap((s) => s.checks.map((c) => ({ ...c, what: `${s.id}: ${c.what}` })));
  parts.push('### Summary', '', mdTable(checksTable(all)), '');
  parts.push(misses.length === 0 ? 'Every target was met.' : `Missed: ${misses.join('; ')}.`, '');
  for (const s of sections) {
    parts.push(`### ${s.title}`, '', s.about, '');
    for (const t of s.tables) {
      if (t.title) parts.push(`${t.title}:`, '');
      parts.push(mdTable(t), '');
    }
    if (s.checks.length > 0) parts.push(mdTable(checksTable(s.checks)), '');
    for (const n of s.notes) parts.push(`- ${n}`);
    if (s.notes.length > 0) parts.push('');
    // The full tables of each profile are on the console; here the per-request
    // comparison with the reference, and where tenant-gate's own time goes.
    for (const p of s.profiles) {
      const compared = (s.comparisons ?? []).some((c) => c.label === p.label);
      const tables = profileTables(p);
      for (const t of compared ? tables.slice(2) : tables) parts.push(`${t.title}:`, '', mdTable(t), '');
    }
    for (const c of s.comparisons ?? []) {
      for (const t of comparisonTables(c)) parts.push(`${t.title}:`, '', mdTable(t), '');
    }
    parts.push(`(${fmt(s.elapsedS)} s)`, '');
  }
  parts.push(END);
  const block = parts.join('\n');

  const intro = `# Benchmarks

\`npm run bench\` measures tenant-gate on loopback against references measured in the
same run, and reports ratios, so results from different machines compare. Everything
runs on this one machine: the load generator (autocannon, in the orchestrating
process) shares the cores with the servers it measures.

`;
  const current = existsSync(file) ? readFileSync(file, 'utf8') : `${intro}${BEGIN}\n${END}\n`;
  const start = current.indexOf(BEGIN);
  const end = current.indexOf(END);
  const next = start >= 0 && end > start ? current.slice(0, start) + block + current.slice(end + END.length) : `${current.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, next);
}
