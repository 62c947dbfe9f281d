/**
 * How every store checks and flattens records before writing them: shared by the
 * SQLite and PostgreSQL stores so both store exactly the same shape.
 */
import { ValidationError } from '../errors.js';
import type { Company, CompanySso, Provider, SigningKey, WriteResult } from './types.js';
import { tenantKey } from '../tenancy/tenant-id.js';

/** The sso settings stored as one JSON document (tenant, domains and hosts have columns of their own). */
export type SsoSettings = Omit<CompanySso, 'tenant' | 'domains' | 'hosts'>;

/** A company ready to be written. */
export interface CompanyRow {
  tenant: string;
  tenantKey: string;
  domains: string[];
  hosts: string[];
  settings: SsoSettings;
}

/** A non-empty string, or a ValidationError naming the field. */
export function requireText(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '') throw new ValidationError(field, `${field} must be a non-empty string`);
  return value;
}

/** Lower-cased, without duplicates, first occurrence kept. */
function normaliseNames(names: readonly string[] | undefined, field: string): string[] {
  const out: string[] = [];
  for (const name of names ?? []) {
    const lower = requireText(name, field).toLowerCase();
    if (!out.includes(lower)) out.push(lower);
  }
  return out;
}

/** Checks a company for writing and splits it into what the stores keep. */
export function companyRow(input: Company): CompanyRow {
  const tenant = requireText(input.sso?.tenant, 'sso.tenant');
  const { tenant: _t, domains: _d, hosts: _h, ...rest } = input.sso;
  return {
    tenant,
    tenantKey: tenantKey(tenant),
    domains: normaliseNames(input.sso.domains, 'sso.domains'),
    hosts: normaliseNames(input.sso.hosts, 'sso.hosts'),
    settings: { ...rest, group_mapping: rest.group_mapping ?? {}, admin_groups: rest.admin_groups ?? [], groups: rest.groups ?? [] },
  };
}

/** Checks a provider for writing under (company, id): the fields every store keys on. */
export function providerRow(input: Provider, company: string, id: string): { provider: string; clientId: string; configuration: string } {
  if (input?.company !== company || input.configuration?.id !== id) {
    throw new ValidationError('configuration.id', 'an update may not change the company or provider id');
  }
  return {
    provider: requireText(input.provider, 'provider'),
    clientId: requireText(input.configuration.client_id, 'configuration.client_id'),
    configuration: JSON.stringify(input.configuration),
  };
}

/** A WriteResult without `undefined` members. */
export function writeResult<T>(previous: T | undefined, current: T | undefined): WriteResult<T> {
  const result: WriteResult<T> = {};
  if (previous !== undefined) result.previous = previous;
  if (current !== undefined) result.current = current;
  return result;
}

/** The key as stored when it becomes the current one: without `retiredAt`. */
export function currentKey(key: SigningKey): SigningKey {
  const { retiredAt: _r, ...rest } = key;
  return rest;
}
