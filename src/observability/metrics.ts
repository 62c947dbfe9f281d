/**
 * Prometheus metrics of one gateway instance, on a registry of its own (no globals).
 *
 * Rules:
 * - every label set is bounded: tenants past `tenantLabels` distinct values count as
 *   `other`, and only tenants the directory resolved ever become a label;
 * - latency histograms share one bucket list, 0.5 ms to 10 s, in seconds;
 * - the request path only calls pre-bound label children (no label objects per call);
 * - backend readiness and active sessions are read when Prometheus scrapes, never on
 *   the request path.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { AdminAuthMetrics } from '../admin/basic-auth.js';
import type { DirectoryCounters, LookupKind } from '../directory/cached-directory.js';
import { FastHistogram } from './fast-histogram.js';
import { CALLBACK_REFUSALS, type CallbackRefusalReason, type ChannelLogoutOutcome, type LoginOutcome, type LoginReason } from '../reasons.js';

/** Histogram buckets, in seconds, for a gateway: 0.5 ms … 10 s. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** What a public request was, for the request duration histogram. */
export type RequestClass = 'proxied' | 'login_start' | 'callback' | 'discovery' | 'page' | 'forward_auth' | 'other';
const REQUEST_CLASSES: readonly RequestClass[] = ['proxied', 'login_start', 'callback', 'discovery', 'page', 'forward_auth', 'other'];

/** Calls the gateway makes to an identity provider. */
export type ProviderCall = 'discovery' | 'jwks' | 'token' | 'userinfo' | 'revocation' | 'other';

/** How an upstream request ended: the upstream's status class, or no answer at all. */
export type UpstreamOutcome = '1xx' | '2xx' | '3xx' | '4xx' | '5xx' | 'unavailable' | 'timeout';


/** A dependency whose reachability is exported as `tenant_gate_backend_up`. */
interface BackendCheck {
  name: string;
  check: () => Promise<void>;
}

/** Directory counters plus the duration of each store query. */
type DirectoryMetrics = Required<DirectoryCounters>;

/** Every metric the gateway exports. */
export interface Metrics {
  readonly registry: Registry;
  readonly directory: DirectoryMetrics;
  /** Admin authentication lockouts, and the addresses locked out now. */
  readonly adminAuth: AdminAuthMetrics;
  /** A callback refused before reaching the webapp, by reason. */
  callbackRefused(reason: CallbackRefusalReason, tenant?: string): void;
  /** A login decision in authenticate mode. */
  loginOutcome(tenant: string, outcome: LoginOutcome, reason: LoginReason): void;
  /** A request refused because its Host names nothing the gateway serves. */
  unknownHost(): void;
  /** An email discovery attempt, found or not. */
  discovery(outcome: 'found' | 'unknown' | 'invalid'): void;
  /** A back- or front-channel logout request, by tenant (empty when unknown) and outcome (`ok` or the refusal reason). */
  channelLogout(channel: 'backchannel' | 'frontchannel', tenant: string, outcome: ChannelLogoutOutcome): void;
  /** Sessions that ended, by cause. */
  sessionsEnded(cause: SessionEndCause, count: number): void;
  /** A public request answered, with its duration; counts 429s as rate limited. */
  request(cls: RequestClass, tenant: string | undefined, seconds: number, status: number): void;
  /** An upstream request, from sending its headers to receiving the upstream's. */
  upstream(outcome: UpstreamOutcome, seconds: number): void;
  /** A request to an identity provider. */
  providerCall(tenant: string | undefined, call: ProviderCall, ok: boolean, seconds: number): void;
  /** An admin call whose credentials were missing or wrong. */
  adminAuthFailure(reason: 'missing' | 'bad'): void;
  /** Reports these dependencies as `tenant_gate_backend_up` on every scrape. */
  watchBackends(checks: readonly BackendCheck[]): void;
  /** Reports `count()` as `tenant_gate_sessions_active` on every scrape. */
  watchSessions(count: () => Promise<number>): void;
  /** Called with each refusal reason, e.g. to note it on the request's trace span. */
  onReason?: (reason: string) => void;
}

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  processMetrics?: boolean;
  /** Distinct tenant label values before the rest count as `other` (default 100). */
  tenantLabels?: number;
  /** Time each backend check may take on a scrape, in milliseconds (default 1000). */
  backendTimeoutMs?: number;
}

/** Maps tenants to label values, keeping at most `cap` distinct ones. */
export class TenantLabels {
  readonly #seen = new Set<string>();
  readonly #cap: number;
  constructor(cap: number) {
    this.#cap = cap;
  }
  /** The label value of a tenant: itself, `none` without one, `other` past the cap. */
  label(tenant: string | undefined): string {
    if (!tenant) return 'none';
    if (this.#seen.has(tenant)) return tenant;
    if (this.#seen.size >= this.#cap) return 'other';
    this.#seen.add(tenant);
    return tenant;
  }
}

/** Pre-bound children of a metric by one varying label, built on first use. */
function childrenBy<C>(make: (value: string) => C): (value: string) => C {
  const children = new Map<string, C>();
  return (value) => {
    let child = children.get(value);
    if (child === undefined) {
      child = make(value);
      children.set(value, child);
    }
    return child;
  };
}

function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), ms)))]).finally(() => clearTimeout(timer));
}

/** Why sessions end. */
export type SessionEndCause = 'logout' | 'backchannel' | 'frontchannel' | 'revoked' | 'tenant_deleted' | 'expired';

/** Creates the metrics on a fresh registry, with Node's process metrics. */
export function createMetrics(opts: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry });
  const tenants = new TenantLabels(opts.tenantLabels ?? 100);
  const backendTimeoutMs = opts.backendTimeoutMs ?? 1000;
  const registers = [registry];
  // Lookups happen on every request: counted as plain numbers, added to the counter on each scrape.
  const pendingLookups: { labels: { kind: LookupKind; result: string }; n: number }[] = [];
  const lookups = new Counter({
    name: 'tenant_gate_directory_lookups_total',
    help: 'Tenant directory lookups by kind and result (hit, miss, stale, store_error)',
    labelNames: ['kind', 'result'] as const,
    registers,
    collect() {
      for (const p of pendingLookups) {
        if (p.n === 0) continue;
        this.inc(p.labels, p.n);
        p.n = 0;
      }
    },
  });
  const queryDuration = new FastHistogram({
    name: 'tenant_gate_directory_query_duration_seconds',
    help: 'Tenant directory store queries (cache misses) by kind and outcome (found, not_found, error)',
    labelNames: ['kind', 'outcome'],
    buckets: LATENCY_BUCKETS,
    registry,
  });
  const refused = new Counter({
    name: 'tenant_gate_callback_refused_total',
    help: 'Callbacks refused before reaching the webapp, by reason',
    labelNames: ['reason', 'tenant'] as const,
    registers,
  });
  const logins = new Counter({
    name: 'tenant_gate_logins_total',
    help: 'Login decisions by tenant, outcome and reason',
    labelNames: ['tenant', 'outcome', 'reason'] as const,
    registers,
  });
  const unknownHosts = new Counter({
    name: 'tenant_gate_unknown_host_total',
    help: 'Requests refused because the Host is not served by the gateway',
    registers,
  });
  const discoveries = new Counter({
    name: 'tenant_gate_email_discovery_total',
    help: 'Email discovery submissions by outcome',
    labelNames: ['outcome'] as const,
    registers,
  });
  const channelLogouts = new Counter({
    name: 'tenant_gate_channel_logouts_total',
    help: 'Back-channel and front-channel logout requests received, by channel, tenant and outcome',
    labelNames: ['channel', 'tenant', 'outcome'] as const,
    registers,
  });
  const ended = new Counter({
    name: 'tenant_gate_sessions_ended_total',
    help: 'Sessions ended, by cause (logout, backchannel, frontchannel, revoked, tenant_deleted, expired)',
    labelNames: ['cause'] as const,
    registers,
  });
  for (const reason of CALLBACK_REFUSALS) refused.labels({ reason, tenant: '' });
  const requestDuration = new FastHistogram({
    name: 'tenant_gate_request_duration_seconds',
    help: 'Public requests from arrival to response by decision class and tenant (bounded; past the cap "other")',
    labelNames: ['class', 'tenant'],
    buckets: LATENCY_BUCKETS,
    registry,
  });
  const rateLimited = new Counter({
    name: 'tenant_gate_rate_limited_total',
    help: 'Public requests answered 429 by decision class',
    labelNames: ['class'] as const,
    registers,
  });
  const upstreamDuration = new FastHistogram({
    name: 'tenant_gate_upstream_duration_seconds',
    help: "Upstream requests until the upstream's response headers, by outcome (status class, unavailable, timeout)",
    labelNames: ['outcome'],
    buckets: LATENCY_BUCKETS,
    registry,
  });
  const providerDuration = new FastHistogram({
    name: 'tenant_gate_provider_request_duration_seconds',
    help: 'Requests to identity providers by tenant, call and outcome (error: no answer or a 5xx)',
    labelNames: ['tenant', 'call', 'outcome'],
    buckets: LATENCY_BUCKETS,
    registry,
  });
  const adminFailures = new Counter({
    name: 'tenant_gate_admin_auth_failures_total',
    help: 'Admin API calls refused for missing or wrong credentials',
    labelNames: ['reason'] as const,
    registers,
  });
  let backends: readonly BackendCheck[] = [];
  new Gauge({
    name: 'tenant_gate_backend_up',
    help: 'Whether each backend (store, sessions, redis, invalidation) answered its check at scrape time (1) or not (0)',
    labelNames: ['backend'] as const,
    registers,
    async collect() {
      const results = await Promise.all(backends.map((b) => withTimeout(b.check(), backendTimeoutMs).then(() => 1, () => 0)));
      backends.forEach((b, i) => this.set({ backend: b.name }, results[i]!));
    },
  });
  let countSessions: (() => Promise<number>) | undefined;
  new Gauge({
    name: 'tenant_gate_sessions_active',
    help: 'Sessions held by the session store (authenticate mode; stores that can count them)',
    registers,
    async collect() {
      if (countSessions) this.set(await countSessions().catch(() => NaN));
    },
  });

  const lockouts = new Counter({
    name: 'tenant_gate_admin_lockouts_total',
    help: 'Client addresses (IPv6: /64) locked out of the admin API after repeated authentication failures',
    registers,
  });
  let lockedNow: () => number = () => 0;
  new Gauge({
    name: 'tenant_gate_admin_locked_addresses',
    help: 'Client addresses (IPv6: /64) locked out of the admin API right now',
    registers,
    collect() {
      this.set(lockedNow());
    },
  });
  const kinds: LookupKind[] = ['tenant', 'domain', 'host', 'client'];
  const count = (result: string) => {
    const children = new Map(
      kinds.map((kind) => {
        const pending = { labels: { kind, result }, n: 0 };
        pendingLookups.push(pending);
        lookups.labels(pending.labels);
        return [kind, pending] as const;
      }),
    );
    return (kind: LookupKind) => {
      children.get(kind)!.n++;
    };
  };
  const queryChild = childrenBy((key) => {
    const [kind, outcome] = key.split(' ');
    return queryDuration.bind({ kind: kind!, outcome: outcome! });
  });
  const requestChildren = new Map(
    REQUEST_CLASSES.map((cls) => [cls, childrenBy((tenant) => requestDuration.bind({ class: cls, tenant }))] as const),
  );
  const limitedChildren = new Map(REQUEST_CLASSES.map((cls) => [cls, rateLimited.labels({ class: cls })] as const));
  const upstreamChild = childrenBy((outcome) => upstreamDuration.bind({ outcome }));
  const providerChild = childrenBy((key) => {
    const [tenant, call, outcome] = key.split('\n');
    return providerDuration.bind({ tenant: tenant!, call: call!, outcome: outcome! });
  });
  const metrics: Metrics = {
    registry,
    directory: {
      hit: count('hit'),
      miss: count('miss'),
      stale: count('stale'),
      storeError: count('store_error'),
      queried: (kind, outcome, seconds) => queryChild(`${kind} ${outcome}`)(seconds),
    },
    adminAuth: {
      lockout: () => lockouts.inc(),
      watchLocked: (count) => {
        lockedNow = count;
      },
    },
    callbackRefused: (reason, tenant) => {
      refused.inc({ reason, tenant: tenant ?? '' });
      metrics.onReason?.(reason);
    },
    loginOutcome: (tenant, outcome, reason) => {
      logins.inc({ tenant, outcome, reason });
      if (outcome !== 'success') metrics.onReason?.(reason);
    },
    unknownHost: () => unknownHosts.inc(),
    channelLogout: (channel, tenant, outcome) => channelLogouts.inc({ channel, tenant: tenants.label(tenant), outcome }),
    sessionsEnded: (cause, count) => {
      if (count > 0) ended.inc({ cause }, count);
    },
    discovery: (() => {
      const byOutcome = new Map((['found', 'unknown', 'invalid'] as const).map((o) => [o, discoveries.labels({ outcome: o })]));
      return (outcome: 'found' | 'unknown' | 'invalid') => byOutcome.get(outcome)!.inc();
    })(),
    request: (cls, tenant, seconds, status) => {
      requestChildren.get(cls)!(tenants.label(tenant))(seconds);
      if (status === 429) limitedChildren.get(cls)!.inc();
    },
    upstream: (outcome, seconds) => upstreamChild(outcome)(seconds),
    providerCall: (tenant, call, ok, seconds) => providerChild(`${tenants.label(tenant)}\n${call}\n${ok ? 'ok' : 'error'}`)(seconds),
    adminAuthFailure: (reason) => adminFailures.inc({ reason }),
    watchBackends: (checks) => {
      backends = checks;
    },
    watchSessions: (fn) => {
      countSessions = fn;
    },
  };
  return metrics;
}
