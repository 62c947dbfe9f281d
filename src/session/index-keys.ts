/**
 * How the session index is keyed, shared by every store.
 *
 * Rules: tenants are keyed by `tenantKey` (ASCII case folding only, as everywhere);
 * a session has entries for its company, its tenant, its (tenant, sub) and, with a
 * provider session id, its (tenant, sid); a query reads the narrowest entry it names
 * and every field it gives must then match.
 */
import { tenantKey } from '../tenancy/tenant-id.js';
import type { SessionData, SessionQuery } from './types.js';

/** Whether a session matches every field a query gives. Tenants compare case-insensitively. */
export function matchesQuery(data: SessionData, query: SessionQuery): boolean {
  if (query.company !== undefined && data.company !== query.company) return false;
  if (query.tenant !== undefined && tenantKey(data.tenant) !== tenantKey(query.tenant)) return false;
  if (query.clientId !== undefined && data.clientId !== query.clientId) return false;
  if (query.sub !== undefined && data.identity.subject !== query.sub) return false;
  if (query.sid !== undefined && data.sid !== query.sid) return false;
  return true;
}

/**
 * The index entries of a session, and the one a query reads: a query by `sid` reads
 * the (tenant, sid) entry, by `sub` the (tenant, sub) entry, else the tenant's or the
 * company's. Names are opaque strings; stores prefix them.
 */
export function indexNamesOf(data: Pick<SessionData, 'tenant' | 'company' | 'sid' | 'identity'>): string[] {
  const tenant = tenantKey(data.tenant);
  const names = [`company:${data.company}`, `tenant:${tenant}`, `sub:${tenant}:${data.identity.subject}`];
  if (data.sid !== undefined) names.push(`sid:${tenant}:${data.sid}`);
  return names;
}

/** The index entry a query reads (see {@link indexNamesOf}). */
export function indexNameFor(query: SessionQuery): string {
  if (query.tenant !== undefined) {
    const tenant = tenantKey(query.tenant);
    if (query.sid !== undefined) return `sid:${tenant}:${query.sid}`;
    if (query.sub !== undefined) return `sub:${tenant}:${query.sub}`;
    return `tenant:${tenant}`;
  }
  return `company:${query.company}`;
}
