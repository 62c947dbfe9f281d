/**
 * Reading V8 CPU profiles (`node --cpu-prof`) of a gateway under load: where its busy
 * time goes, by function (self time), by area (tenant-gate's src/, each package, Node
 * internals, garbage collection), and which tenant-gate functions sit above the most
 * time (inclusive).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A frame of a V8 CPU profile. */
interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** One line of a profile table. */
interface ProfileLine {
  name: string;
  where: string;
  /** Share of busy (non-idle) time, percent. */
  pct: number;
}

/** What a profile says about one scenario. */
export interface ProfileSummary {
  label: string;
  busyMs: number;
  /** Busy time per request, microseconds, when the request count is known. */
  busyUsPerReq?: number;
  topSelf: ProfileLine[];
  areas: ProfileLine[];
  srcInclusive: ProfileLine[];
  /** Responses during the sampled window. */
  requests?: number;
  /** Self time in µs by function key, and by area, over the sampled window. */
  selfUs: Record<string, number>;
  areaUs: Record<string, number>;
}

/** One line of a comparison: microseconds per request in the reference and in the target. */
interface ProfileDiffLine {
  name: string;
  where: string;
  referenceUs: number;
  targetUs: number;
}

/** Where a target spends more per request than its reference. */
export interface ProfileComparison {
  label: string;
  reference: string;
  areas: ProfileDiffLine[];
  functions: ProfileDiffLine[];
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Where a frame's code lives: a path under the project, a package path, or a node: module. */
function where(frame: CallFrame): string {
  const { url } = frame;
  if (!url) return '';
  if (url.startsWith('node:')) return url;
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const nm = path.lastIndexOf('node_modules/');
  if (nm >= 0) return path.slice(nm + 'node_modules/'.length);
  return relative(ROOT, path);
}

/** The area a frame belongs to: tenant-gate's src/, a package, Node internals, GC... */
function area(frame: CallFrame): string {
  const name = frame.functionName;
  if (name === '(garbage collector)' || name === '(program)' || name === '(idle)' || name === '(root)') return name;
  const w = where(frame);
  if (!w) return '(native)';
  if (w.startsWith('node:')) return 'node: internals';
  if (w.startsWith('src/')) return 'tenant-gate src/';
  if (w.startsWith('bench/') || w.startsWith('test/')) return 'bench harness';
  if (!frame.url.includes('node_modules/')) return w;
  const parts = w.split('/');
  return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

/** Function name and place; line numbers of transpiled sources are not the .ts lines, so they are left out there. */
const key = (f: CallFrame) => {
  const w = where(f);
  const line = w && !w.endsWith('.ts') && f.lineNumber >= 0 ? `:${f.lineNumber + 1}` : '';
  return `${f.functionName || '(anonymous)'}\u0000${w}${line}`;
};

function top(map: Map<string, number>, busy: number, n: number, split = true): ProfileLine[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, us]) => {
      const [name, at] = split ? k.split('\u0000') : [k, ''];
      return { name: name!, where: at ?? '', pct: (100 * us) / busy };
    });
}

/** Which samples count: those taken between two readings of the profiled process's monotonic clock (µs). */
export interface ProfileWindow {
  fromUs: number;
  toUs: number;
}

/**
 * Summarises one .cpuprofile file: only the samples inside `window` when one is
 * given, only those of one area (e.g. `fastify`) when `area` is.
 */
export function summariseProfile(
  file: string,
  label: string,
  opts: { requests?: number; window?: ProfileWindow; n?: number; area?: string } = {},
): ProfileSummary {
  const { requests, window, n = 15 } = opts;
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const c of node.children ?? []) parent.set(c, node.id);

  const self = new Map<string, number>();
  const areas = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let busy = 0;
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    if (window && (at < window.fromUs || at > window.toUs)) continue;
    const node = byId.get(profile.samples[i]!);
    if (!node) continue;
    const us = profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0;
    if (node.callFrame.functionName === '(idle)') continue;
    const a = area(node.callFrame);
    if (opts.area !== undefined && a !== opts.area) continue;
    busy += us;
    self.set(key(node.callFrame), (self.get(key(node.callFrame)) ?? 0) + us);
    areas.set(a, (areas.get(a) ?? 0) + us);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id, depth = 0; id !== undefined && depth < 500; id = parent.get(id), depth++) {
      const frame = byId.get(id)!.callFrame;
      if (where(frame).startsWith('src/')) seen.add(key(frame));
    }
    for (const k of seen) inclusive.set(k, (inclusive.get(k) ?? 0) + us);
  }
  return {
    label,
    busyMs: busy / 1000,
    ...(requests ? { busyUsPerReq: busy / requests } : {}),
    topSelf: top(self, busy, n),
    areas: top(areas, busy, 12, false),
    srcInclusive: top(inclusive, busy, n),
    ...(requests ? { requests } : {}),
    selfUs: Object.fromEntries(self),
    areaUs: Object.fromEntries(areas),
  };
}

function diff(ref: Record<string, number>, refReqs: number, tgt: Record<string, number>, tgtReqs: number, n: number): ProfileDiffLine[] {
  const keys = new Set([...Object.keys(ref), ...Object.keys(tgt)]);
  return [...keys]
    .map((k) => {
      const [name, at] = k.split('\u0000');
      return { name: name!, where: at ?? '', referenceUs: (ref[k] ?? 0) / refReqs, targetUs: (tgt[k] ?? 0) / tgtReqs };
    })
    .sort((a, b) => b.targetUs - b.referenceUs - (a.targetUs - a.referenceUs))
    .slice(0, n);
}

/** Per request, the areas and the functions where `target` spends more time than `reference`. */
export function compareProfiles(reference: ProfileSummary, target: ProfileSummary, n = 15): ProfileComparison | undefined {
  if (!reference.requests || !target.requests) return undefined;
  return {
    label: target.label,
    reference: reference.label,
    areas: diff(reference.areaUs, reference.requests, target.areaUs, target.requests, 14),
    functions: diff(reference.selfUs, reference.requests, target.selfUs, target.requests, n),
  };
}

/**
 * The main thread's profile in a folder. Node writes one file per thread
 * (`CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile`); module loader hooks run on a
 * thread of their own, the requests on thread 0.
 */
export function findProfile(dir: string): string | undefined {
  const files = readdirSync(dir).filter((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f));
  const biggest = files.map((f) => ({ f, size: statSync(join(dir, f)).size })).sort((a, b) => b.size - a.size)[0];
  return biggest ? join(dir, biggest.f) : undefined;
}

/** Node options that make a process write its CPU profile into `dir` when it exits. */
export function cpuProfArgs(dir: string): string[] {
  return ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', '500'];
}
