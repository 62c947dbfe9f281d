/**
 * The rules that keep tenants apart, each in one function. Every caller uses these;
 * none compares tenants in its own way.
 *
 * Rules:
 * - two tenant IDs name the same tenant only when both are well-formed tenant IDs and
 *   they are equal after ASCII-only case folding: Unicode case mapping is never applied,
 *   so KELVIN SIGN, dotless i, full-width letters or a trailing dot never match;
 * - an ID token's tenant claim must name the tenant the login was routed to;
 * - a callback belongs to the host's tenant (on a tenant host) and to a provider of
 *   some tenant (unless settings providers are allowed);
 * - a session is valid on its own tenant's hosts and on the base host, and only while
 *   its company still owns its tenant and its provider (client_id) still belongs to
 *   that company: a deleted company or provider, or a tenant handed to another
 *   company, ends its acceptance;
 * - a login transaction completes only on the host it started on, for the same client
 *   and tenant.
 */
import type { Provider, TenantRecord } from '../directory/types.js';
import { sameTenant } from './tenant-id.js';

export { sameTenant };

/** Whether the value of an ID token's tenant claim names the routed tenant. */
export function tenantClaimMatches(claim: string, routedTenant: string): boolean {
  return sameTenant(claim, routedTenant);
}

/**
 * Whether a callback for a client of `clientTenant` may complete on a host of
 * `hostTenant` (undefined: the base host).
 */
export function callbackBelongsToHost(clientTenant: string | undefined, hostTenant: string | undefined): boolean {
  if (hostTenant === undefined) return true;
  return clientTenant !== undefined && sameTenant(clientTenant, hostTenant);
}

/** Whether a session of `sessionTenant` is valid on a host of `hostTenant` (undefined: the base host). */
export function sessionValidOnHost(sessionTenant: string, hostTenant: string | undefined): boolean {
  return hostTenant === undefined || sameTenant(sessionTenant, hostTenant);
}

/** Where a login transaction was started. */
export interface TransactionBinding {
  clientId: string;
  host: string;
  tenant: string;
}

/** Whether a callback arriving for `actual` may complete the transaction started as `started`. */
export function transactionMatches(started: TransactionBinding, actual: TransactionBinding): boolean {
  return started.clientId === actual.clientId && started.host === actual.host && sameTenant(started.tenant, actual.tenant);
}

/** Whether `/login/<requested>` may be served on a host of `hostTenant` (undefined: the base host). */
export function loginAllowedOnHost(requested: string, hostTenant: string | undefined): boolean {
  return hostTenant === undefined || sameTenant(requested, hostTenant);
}

/** What a session was issued for. */
export interface SessionBinding {
  tenant: string;
  company: string;
  clientId: string;
}

/**
 * The provider a session still stands on: its tenant's current record must name the
 * same tenant and company and still hold the session's client_id; undefined otherwise.
 */
export function providerOfSession(session: SessionBinding, current: TenantRecord | undefined): Provider | undefined {
  if (!current || current.company.company !== session.company || !sameTenant(session.tenant, current.company.sso.tenant)) return undefined;
  return current.providers.find((p) => p.configuration.client_id === session.clientId);
}
