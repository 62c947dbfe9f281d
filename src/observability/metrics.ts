/**
 * Prometheus metrics of one gateway instance, on a registry of its own (no globals).
 */
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';
import type { DirectoryCounters, LookupKind } from '../directory/cached-directory.js';

/** Every metric the gateway exports. */
export interface Metrics {
  readonly registry: Registry;
  readonly directory: DirectoryCounters;
  /** A callback refused before reaching the webapp, by reason. */
  callbackRefused(reason: string, tenant?: string): void;
  /** A login decision in authenticate mode. */
  loginOutcome(tenant: string, outcome: 'success' | 'refused' | 'error', reason: string): void;
  /** A request refused because its Host names nothing the gateway serves. */
  unknownHost(): void;
  /** An email discovery attempt, found or not. */
  discovery(outcome: 'found' | 'unknown' | 'invalid'): void;
  /** A back- or front-channel logout request, by tenant (empty when unknown) and outcome (`ok` or the refusal reason). */
  channelLogout(channel: 'backchannel' | 'frontchannel', tenant: string, outcome: string): void;
  /** Sessions that ended, by cause. */
  sessionsEnded(cause: SessionEndCause, count: number): void;
}

/** Why sessions end. */
export type SessionEndCause = 'logout' | 'backchannel' | 'frontchannel' | 'revoked' | 'tenant_deleted' | 'expired';

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
  const channelLogouts = new Counter({
    name: 'tenant_gate_channel_logouts_total',
    help: 'Back-channel and front-channel logout requests received, by channel, tenant and outcome',
    labelNames: ['channel', 'tenant', 'outcome'] as const,
    registers: [registry],
  });
  const ended = new Counter({
    name: 'tenant_gate_sessions_ended_total',
    help: 'Sessions ended, by cause (logout, backchannel, frontchannel, revoked, tenant_deleted, expired)',
    labelNames: ['cause'] as const,
    registers: [registry],
  });
  const kinds: LookupKind[] = ['tenant', 'domain', 'host', 'client'];
  const count = (result: string) => {
    const children = new Map(kinds.map((kind) => [kind, lookups.labels({ kind, result })]));
    return (kind: LookupKind) => children.get(kind)!.inc();
  };
  return {
    registry,
    directory: { hit: count('hit'), miss: count('miss'), stale: count('stale'), storeError: count('store_error') },
    callbackRefused: (reason, tenant) => refused.inc({ reason, tenant: tenant ?? '' }),
    loginOutcome: (tenant, outcome, reason) => logins.inc({ tenant, outcome, reason }),
    unknownHost: () => unknownHosts.inc(),
    channelLogout: (channel, tenant, outcome) => channelLogouts.inc({ channel, tenant, outcome }),
    sessionsEnded: (cause, count) => {
      if (count > 0) ended.inc({ cause }, count);
    },
    discovery: (() => {
      const byOutcome = new Map((['found', 'unknown', 'invalid'] as const).map((o) => [o, discoveries.labels({ outcome: o })]));
      return (outcome: 'found' | 'unknown' | 'invalid') => byOutcome.get(outcome)!.inc();
    })(),
  };
}
