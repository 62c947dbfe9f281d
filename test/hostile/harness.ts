/**
 * The live stacks the hostile suites replay their corpora against, and the invariants
 * every answer must keep.
 *
 * - Route mode: a gateway over a real echoing upstream, tenants `acme` (custom host
 *   `ml.acme.com`, domain `acme.com`) and `Globex` (domain `globex.com`), each with a
 *   provider (client ids `acme-webapp`, `globex-webapp`).
 * - Authenticate mode: the two-tenant stack (acme and globex, each with its own real
 *   identity provider).
 *
 * Invariants checked on every exchange: an answer arrives in time; no 5xx; every
 * Location stays on the host the request named (or, for a redirect to an identity
 * provider, goes to that tenant's provider); every page the gateway renders is
 * `Cache-Control: no-store`; a request reached the upstream exactly
 * when the upstream's answer came back; and whatever reached the upstream carries the
 * gateway's own X-Forwarded-For/-Proto/-Host and identity headers, and none of the
 * client's forwarding or identity claims.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { normalizeHost } from '../../src/tenancy/host.js';
import { BASE_DOMAIN, publicRequest, seedRouteTenants, startGateway, startUpstream, type Seen } from '../helpers/gateway.js';
import { Browser, twoTenants } from '../helpers/two-tenants.js';
import { printable, readFixture, type FixtureEntry } from '../tenancy/fixture-reader.js';
import { mapLimit, rawExchange, rawRequestBytes, type RawExchange, type RawResponse } from './raw-http.js';

type Test = import('tap').Test;

/** Headers of a top-level page navigation. */
export const NAV: Array<[string, string]> = [
  ['Accept', 'text/html,application/xhtml+xml'],
  ['Sec-Fetch-Mode', 'navigate'],
  ['Sec-Fetch-Dest', 'document'],
];
/** Headers of a script call. */
export const API: Array<[string, string]> = [['Accept', 'application/json']];

/** Limits high enough that a corpus replay is never rate limited (rate limits have their own tests). */
const NO_RATE_LIMITS = { rateLimit: { discoveryPerMinute: 1_000_000, loginPerMinute: 1_000_000, callbackPerMinute: 1_000_000 } };

/** One hostile request. */
export interface Probe {
  /** What the assertion messages call it. */
  label: string;
  method?: string;
  /** The request target exactly as sent. */
  target: string;
  /** Host header value; `null` sends none. Default: the base host. */
  host?: string | null;
  /** Extra headers, in order, exactly as sent. */
  headers?: Array<[string, string]>;
  body?: string | Buffer;
  /** How the request line and headers are written (default utf8). */
  encoding?: 'latin1' | 'utf8';
  /** Leaves out the `X-Probe` marker (for probes about header counts or order). */
  unmarked?: boolean;
}

/** What one probe produced. */
export interface Outcome {
  probe: Probe;
  id: string;
  exchange: RawExchange;
  /** The first response, when there was one. */
  first?: RawResponse;
  /** What the upstream received for this probe. */
  reached: Seen[];
  /** Some response on the connection came from the upstream. */
  answeredByUpstream: boolean;
}

/** A running gateway with its upstream, as the hostile suites see it. */
export interface Stack {
  mode: 'route' | 'authenticate';
  port: number;
  adminUrl: string;
  /** Every request the webapp upstream received. */
  upstream: Seen[];
  logs: { lines: string[]; text(): string };
  /** Public scheme (route mode: https, authenticate mode: http). */
  scheme: 'http' | 'https';
  /** Normalised hosts the gateway serves, with the tenant each names (undefined: base host). */
  hosts: Map<string, string | undefined>;
  /** Tenant (lower case) -> origin of its identity provider. */
  idps: Map<string, string>;
  /** A session cookie header for bob (acme), authenticate mode only. */
  session?: string;
  /** Asserts that the gateway still serves normally. */
  healthy(t: Test): Promise<void>;
  seq: number;
}

/** The route-mode stack. */
export async function routeStack(t: Test, overrides: Record<string, unknown> = {}): Promise<Stack> {
  const upstream = await startUpstream(t);
  const gw = await startGateway(t, { upstreams: { webapp: upstream.url, timeoutMs: 3000 }, ...NO_RATE_LIMITS, ...overrides });
  await seedRouteTenants(gw.adminUrl);
  const stack: Stack = {
    mode: 'route',
    port: gw.publicPort,
    adminUrl: gw.adminUrl,
    upstream: upstream.seen,
    logs: gw.logs,
    scheme: 'https',
    hosts: new Map([
      [BASE_DOMAIN, undefined],
      ['acme.ml.example.com', 'acme'],
      ['ml.acme.com', 'acme'],
      ['globex.ml.example.com', 'globex'],
    ]),
    idps: new Map(),
    seq: 0,
    async healthy(t) {
      const req = (o: Parameters<typeof publicRequest>[1]) => publicRequest(gw.publicPort, o);
      t.equal((await req({ path: '/healthz' })).status, 200, 'still alive');
      t.equal((await req({ path: '/readyz' })).status, 200, 'still ready');
      const page = await req({ path: '/projects?after=corpus', headers: { accept: 'application/json' } });
      t.equal(page.status, 200, 'a normal request is still proxied');
      t.equal((JSON.parse(page.body) as { url: string }).url, '/projects?after=corpus');
      const nav = await req({ path: '/projects', host: 'acme.ml.example.com', headers: Object.fromEntries(NAV) });
      t.equal(nav.headers.location, '/login/acme?redirect=%2Fprojects', 'vanity redirect still works');
      const found = await req({ path: '/login', method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'email=a%40acme.com' });
      t.equal(found.headers.location, '/login/acme?login_hint=a%40acme.com', 'discovery still works');
    },
  };
  return stack;
}

/** The authenticate-mode stack, with bob (acme) logged in. */
export async function authStack(t: Test, overrides: Record<string, unknown> = {}): Promise<Stack & { tt: Awaited<ReturnType<typeof twoTenants>> }> {
  const s = await twoTenants(t, { ...NO_RATE_LIMITS, ...overrides });
  const bob = await s.login('bob');
  if (bob.callback?.status !== 302) throw new Error(`the authenticate-mode stack could not log in (${bob.callback?.status})`);
  const session = bob.browser.header()!;
  return {
    mode: 'authenticate',
    port: s.publicPort,
    adminUrl: s.adminUrl,
    upstream: s.upstream.seen,
    logs: s.logs,
    scheme: 'http',
    hosts: new Map([
      [BASE_DOMAIN, undefined],
      ['acme.ml.example.com', 'acme'],
      ['globex.ml.example.com', 'globex'],
    ]),
    idps: new Map([
      ['acme', new URL(s.acmeIdp.issuer).origin],
      ['globex', new URL(s.globexIdp.issuer).origin],
    ]),
    session,
    tt: s,
    seq: 0,
    async healthy(t) {
      t.equal((await s.req({ path: '/healthz' })).status, 200, 'still alive');
      t.equal((await s.req({ path: '/readyz' })).status, 200, 'still ready');
      const again = await s.login('alice');
      t.equal(again.callback?.status, 302, 'a login still completes');
      const page = await s.req({ path: '/projects?after=corpus', host: 'acme.ml.example.com', headers: { accept: 'application/json' } }, again.browser);
      t.equal(page.status, 200, 'a signed-in request is still proxied');
      t.equal(s.upstream.seen.at(-1)?.headers['x-auth-request-user'], 'alice@acme.com', 'with the verified identity');
      const anon = await s.req({ path: '/projects', host: 'acme.ml.example.com', headers: Object.fromEntries(NAV) });
      t.equal(anon.headers.location, '/login/acme?redirect=%2Fprojects', 'a page without a session still goes to the login');
    },
  };
}

/** Reads a corpus whose lines are `<tag> <value>`. */
export function readTagged(name: string): Array<FixtureEntry & { tag: string }> {
  return readFixture(name).map((e) => {
    const sp = e.value.indexOf(' ');
    if (sp <= 0) throw new Error(`${name}:${e.line}: expected "<tag> <value>"`);
    return { ...e, tag: e.value.slice(0, sp), value: e.value.slice(sp + 1) };
  });
}

/** Sends every probe (a few at a time) and matches what the upstream received to each. */
export async function replay(stack: Stack, probes: readonly Probe[], opts: { concurrency?: number; timeoutMs?: number } = {}): Promise<Outcome[]> {
  const outcomes = await mapLimit(probes, opts.concurrency ?? 8, async (probe) => {
    const id = `p${++stack.seq}-${Math.random().toString(36).slice(2, 8)}`;
    const headers: Array<[string, string]> = [];
    if (probe.host !== null) headers.push(['Host', probe.host ?? BASE_DOMAIN]);
    if (!probe.unmarked) headers.push(['X-Probe', id]);
    headers.push(...(probe.headers ?? []));
    if (!headers.some(([k]) => k.toLowerCase() === 'connection')) headers.push(['Connection', 'close']);
    if (probe.body !== undefined && !headers.some(([k]) => /^(content-length|transfer-encoding)$/i.test(k))) {
      headers.push(['Content-Length', String(Buffer.byteLength(probe.body))]);
    }
    const bytes = rawRequestBytes({ method: probe.method ?? 'GET', target: probe.target, headers, ...(probe.body !== undefined ? { body: probe.body } : {}), encoding: probe.encoding ?? 'utf8' });
    const exchange = await rawExchange(stack.port, bytes, { timeoutMs: opts.timeoutMs ?? 5000, headRequest: probe.method === 'HEAD' });
    return { probe, id, exchange, ...(exchange.responses[0] ? { first: exchange.responses[0] } : {}), reached: [] as Seen[], answeredByUpstream: exchange.responses.some(fromUpstream) };
  });
  const byId = new Map(outcomes.map((o) => [o.id, o]));
  for (const seen of stack.upstream) {
    const id = seen.headers['x-probe'];
    if (typeof id === 'string') byId.get(id)?.reached.push(seen);
  }
  return outcomes;
}

/** An answer the echoing upstream wrote. */
function fromUpstream(r: RawResponse): boolean {
  return r.body.subarray(0, 40).toString('latin1').startsWith('{"upstream":true');
}

/** The decoded text of a response body. */
export function bodyText(r: RawResponse | undefined): string {
  return r ? r.body.toString('utf8') : '';
}

/**
 * Where a Location may point: a path on the host the request named (written
 * `/<not slash or backslash>...`, no whitespace or controls), an absolute URL on one
 * of the gateway's hosts, or the identity provider of the tenant the request is about
 * (any tenant's on the base host).
 */
function locationProblem(stack: Stack, hostHeader: string | null | undefined, location: string): string | undefined {
  if (/[\u0000-\u0020\u007f-\u00a0\\]/.test(location)) return 'control, space or backslash';
  if (location.startsWith('/')) {
    if (location.startsWith('//')) return 'network-path reference';
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    return 'neither a path nor an absolute URL';
  }
  if (url.username || url.password) return 'userinfo';
  const host = hostHeader ? normalizeHost(hostHeader) : undefined;
  const tenant = host !== undefined ? stack.hosts.get(host) : undefined;
  if (url.protocol === `${stack.scheme}:` && stack.hosts.has(url.hostname)) return undefined;
  for (const [idpTenant, origin] of stack.idps) {
    if (url.origin === origin && (tenant === undefined || tenant === idpTenant)) return undefined;
  }
  return `outside the gateway's hosts and the tenant's identity provider (${url.origin})`;
}

/** Asserts the invariants on every outcome; `extra` adds per-corpus expectations. */
export function checkOutcomes(t: Test, stack: Stack, outcomes: readonly Outcome[], extra?: (o: Outcome, label: string) => void): void {
  let failures = 0;
  const fail = (label: string, what: string, detail?: unknown) => {
    failures++;
    t.fail(`${label}: ${what}`, detail === undefined ? {} : { found: detail });
  };
  for (const o of outcomes) {
    const label = o.probe.label;
    const { exchange } = o;
    if (exchange.timedOut) fail(label, 'no answer in time (hang)');
    else if (exchange.responses.length === 0) fail(label, 'connection closed without an answer', exchange.error);
    for (const r of exchange.responses) {
      if (r.status >= 500) fail(label, `answered ${r.status}`, bodyText(r).slice(0, 300));
      // A page the gateway renders must never be stored by a shared cache.
      if (!fromUpstream(r) && bodyText(r).startsWith('<!doctype html>') && !/no-store/.test(r.headers['cache-control']?.join(',') ?? '')) fail(label, `a ${r.status} page without Cache-Control: no-store`);
      for (const loc of r.headers.location ?? []) {
        const problem = locationProblem(stack, o.probe.host === undefined ? BASE_DOMAIN : o.probe.host, loc);
        if (problem) fail(label, `Location ${printable(loc)}: ${problem}`);
      }
    }
    if (o.reached.length > 0 && !o.answeredByUpstream) fail(label, 'reached the upstream but the gateway answered it', o.reached.map((s) => `${s.method} ${s.url}`));
    if (o.answeredByUpstream && o.reached.length === 0 && !o.probe.unmarked) fail(label, 'answered by the upstream without the probe marker');
    extra?.(o, label);
  }
  t.equal(failures, 0, `${outcomes.length} hostile requests: every invariant held`);
}

/** One layer of percent-decoding that keeps malformed escapes as they are. */
function decodeOnce(s: string): string {
  return s.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run;
    }
  });
}

/** Backslashes as slashes, empty and `.` segments dropped, `..` resolved, lower case. */
function normalizePath(path: string): string {
  const out: string[] = [];
  for (const seg of path.replace(/\\/g, '/').split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return `/${out.join('/')}`.toLowerCase();
}

/**
 * Whether a router that percent-decodes the path `decodings` times and then normalises
 * it (backslashes, empty and dot segments, case) reads this request target as a
 * `/callback_...` request. The gateway itself judges after one decoding.
 */
export function readsAsCallback(target: string, decodings: readonly number[]): boolean {
  const q = target.search(/[?#]/);
  let path = q < 0 ? target : target.slice(0, q);
  for (let i = 0; i <= Math.max(...decodings); i++) {
    if (decodings.includes(i) && normalizePath(path).startsWith('/callback_')) return true;
    path = decodeOnce(path);
  }
  return false;
}

/** Forwarding and identity headers upstreams trust, which the gateway never passes on from a client. */
const CLIENT_CLAIM = /^(forwarded|x-real-ip|x-client-ip|true-client-ip|cf-connecting-ip|fastly-client-ip|x-cluster-client-ip|x-original-(url|uri|host)|x-rewrite-url|remote-user|x-remote-.+|x-user|x-host|x-forwarded-(?!(for|proto|host)$).+)$/;

/** Checks what reached the upstream: only the gateway's own forwarding and identity headers. */
export function checkUpstreamRecords(t: Test, stack: Stack, from = 0): void {
  const records = stack.upstream.slice(from);
  let failures = 0;
  const fail = (what: string, seen: Seen) => {
    failures++;
    t.fail(what, { found: `${seen.method} ${seen.url.slice(0, 200)}`, headers: pick(seen.headers) });
  };
  for (const seen of records) {
    const h = seen.headers;
    const xfh = h['x-forwarded-host'];
    if (typeof xfh !== 'string' || !stack.hosts.has(xfh)) fail(`X-Forwarded-Host is not one of the gateway's hosts: ${printable(String(xfh))}`, seen);
    if (h['x-forwarded-proto'] !== stack.scheme) fail(`X-Forwarded-Proto is not ${stack.scheme}: ${printable(String(h['x-forwarded-proto']))}`, seen);
    if (h['x-forwarded-for'] !== '127.0.0.1') fail(`X-Forwarded-For is not the client address: ${printable(String(h['x-forwarded-for']))}`, seen);
    for (const name of Object.keys(h)) {
      if (name.includes('_')) fail(`a header spelled with an underscore reached the upstream: ${name}`, seen);
      if (CLIENT_CLAIM.test(name)) fail(`a forwarding or identity claim of the client reached the upstream: ${name}`, seen);
    }
    const cookie = String(h.cookie ?? '');
    if (/(^|;\s*)tg_session(_tx)?=/.test(cookie)) fail("the gateway's own cookie reached the upstream", seen);
    if (stack.mode === 'route') {
      for (const name of Object.keys(h)) if (name.startsWith('x-auth-request-')) fail(`identity header ${name} reached the upstream in route mode`, seen);
    } else {
      const tenant = h['x-auth-request-tenant'];
      if (tenant !== 'acme' && tenant !== 'globex') fail('reached the upstream without a verified identity', seen);
      else if (typeof xfh === 'string' && stack.hosts.get(xfh) !== undefined && stack.hosts.get(xfh) !== tenant) fail(`identity of tenant ${tenant} on host ${xfh}`, seen);
      const user = h['x-auth-request-user'];
      if (user !== 'bob@acme.com' && user !== 'alice@acme.com' && user !== 'gina@globex.com') fail(`unexpected identity ${printable(String(user))}`, seen);
    }
  }
  t.equal(failures, 0, `${records.length} requests reached the upstream, each with the gateway's own headers only`);
}

function pick(h: IncomingHttpHeaders): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(h)) if (k.startsWith('x-') || k === 'cookie' || k === 'forwarded') out[k] = typeof v === 'string' ? v.slice(0, 120) : v;
  return out;
}

/** Asserts that no error was logged: every refusal is a handled, expected outcome. */
export function checkNoErrorLogs(t: Test, stack: Stack, from = 0): void {
  const errors = stack.logs.lines.slice(from).filter((l) => /"level":(50|60)/.test(l));
  t.same(errors.map((l) => l.slice(0, 400)), [], 'no error was logged while replaying the corpus');
}

export { Browser };
