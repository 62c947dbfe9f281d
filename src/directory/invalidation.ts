/**
 * Which cache keys a directory write affects. Both the record before and after the
 * write count: a tenant renamed away, a domain dropped or a client_id moved must stop
 * resolving at once, and the new owners must resolve at once.
 */
import { directoryKey } from './cached-directory.js';
import type { Company, Provider, WriteResult } from './types.js';

function companyKeys(c: Company | undefined, out: Set<string>): void {
  if (!c) return;
  out.add(directoryKey('tenant', c.sso.tenant));
  for (const d of c.sso.domains) out.add(directoryKey('domain', d));
  for (const h of c.sso.hosts) out.add(directoryKey('host', h));
}

/**
 * Keys affected by a company write. `providers` are the company's providers: their
 * client lookups carry the company's tenant, so they change with it.
 */
export function keysForCompanyWrite(result: WriteResult<Company>, providers: Provider[]): string[] {
  const out = new Set<string>();
  companyKeys(result.previous, out);
  companyKeys(result.current, out);
  for (const p of providers) out.add(directoryKey('client', p.configuration.client_id));
  return [...out];
}

/** Keys affected by a provider write; `tenant` is its company's external tenant, if any. */
export function keysForProviderWrite(result: WriteResult<Provider>, tenant: string | undefined): string[] {
  const out = new Set<string>();
  for (const p of [result.previous, result.current]) {
    if (p) out.add(directoryKey('client', p.configuration.client_id));
  }
  if (tenant !== undefined) out.add(directoryKey('tenant', tenant));
  return [...out];
}

/** The client_ids whose provider configuration these keys drop (their OIDC clients must be rebuilt). */
export function clientIdsOfKeys(keys: readonly string[]): string[] {
  const prefix = directoryKey('client', '');
  return keys.filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
}
