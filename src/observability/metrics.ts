/**
 * Prometheus metrics of one gateway instance, on a registry of its own (no globals).
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { AdminAuthMetrics } from '../admin/basic-auth.js';
import type { DirectoryCounters, LookupKind } from '../directory/cached-directory.js';

/** Every metric the gateway exports. */
export interface Metrics {
  readonly registry: Registry;
  readonly directory: DirectoryCounters;
  /** Admin authentication lockouts, and the addresses locked out now. */
  readonly adminAuth: AdminAuthMetrics;
  /** A callback refused before reaching the webapp, by reason. */
  callbackRefused(reason: string, tenant?: string): void;
  /** A login decision in authenticate mode. */
  loginOutcome(tenant: string, outcome: 'success' | 'refused' | 'error', reason: string): void;
  /** A request refused because its Host names nothing the gateway serves. */
  unknownHost(): void;
  /** An email discovery attempt, found or not. */
  discovery(outcome: 'found' | 'unknown' | 'invalid'): void;
}

/** Creates the metrics on a fresh registry, with Node's process metrics. */
export function createMetrics(opts: { processMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry });
  const lookups = new Counter({
    name: 'tenant_gate_directory_lookups_total',
    help: 'Tenant directory lookups by kind and result (hit, miss, stale, store_error)',
    labelNames: ['kind', 'result'] as const,
    registers: [registry],
  });
  const refused = new Counter({
    name: 'tenant_gate_callback_refused_total',
    help: 'Callbacks refused before reaching the webapp, by reason',
    labelNames: ['reason', 'tenant'] as const,
    registers: [registry],
  });
  const logins = new Counter({
    name: 'tenant_gate_logins_total',
    help: 'Login decisions by tenant, outcome and reason',
    labelNames: ['tenant', 'outcome', 'reason'] as const,
    registers: [registry],
  });
  const unknownHosts = new Counter({
    name: 'tenant_gate_unknown_host_total',
    help: 'Requests refused because the Host is not served by the gateway',
    registers: [registry],
  });
  const discoveries = new Counter({
    name: 'tenant_gate_email_discovery_total',
    help: 'Email discovery submissions by outcome',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const lockouts = new Counter({
    name: 'tenant_gate_admin_lockouts_total',
    help: 'Client addresses (IPv6: /64) locked out of the admin API after repeated authentication failures',
    registers: [registry],
  });
  let lockedNow: () => number = () => 0;
  new Gauge({
    name: 'tenant_gate_admin_locked_addresses',
    help: 'Client addresses (IPv6: /64) locked out of the admin API right now',
    registers: [registry],
    collect() {
      this.set(lockedNow());
    },
  });
  const kinds: LookupKind[] = ['tenant', 'domain', 'host', 'client'];
  const count = (result: string) => {
    const children = new Map(kinds.map((kind) => [kind, lookups.labels({ kind, result })]));
    return (kind: LookupKind) => children.get(kind)!.inc();
  };
  return {
    registry,
    directory: { hit: count('hit'), miss: count('miss'), stale: count('stale'), storeError: count('store_error') },
    adminAuth: {
      lockout: () => lockouts.inc(),
      watchLocked: (count) => {
        lockedNow = count;
      },
    },
    callbackRefused: (reason, tenant) => refused.inc({ reason, tenant: tenant ?? '' }),
    loginOutcome: (tenant, outcome, reason) => logins.inc({ tenant, outcome, reason }),
    unknownHost: () => unknownHosts.inc(),
    discovery: (() => {
      const byOutcome = new Map((['found', 'unknown', 'invalid'] as const).map((o) => [o, discoveries.labels({ outcome: o })]));
      return (outcome: 'found' | 'unknown' | 'invalid') => byOutcome.get(outcome)!.inc();
    })(),
  };
}
