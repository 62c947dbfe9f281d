/**
 * ID token claims -> the identity the upstream sees, or a refusal. Pure.
 *
 * Rules:
 * - `sub` is required (a non-empty string).
 * - The tenant claim (`claim_tenant`, default `tenant_key`) must name the company's
 *   tenant (src/tenancy/isolation.ts: ASCII-only case folding, look-alikes never match). It may be a string or an array of exactly
 *   one string (Keycloak attribute mappers emit either); an array of several values
 *   is ambiguous and refused. There is no way to turn the check off.
 * - Display name from `claim_name` (default `name`), email from `claim_email`
 *   (default `email`); both only when they are non-empty strings. The email counts
 *   only when the token says `email_verified: true` (the boolean), unless the
 *   provider's configuration says `trust_unverified_email: true` (an operator
 *   vouching for an IdP that never sends the claim); a dropped email is reported in
 *   `emailDropped` for the audit log, and the login goes on without it.
 * - `issuer` is the token's `iss` (verified by the OIDC client), '' when absent.
 * - Claim names are looked up as given first; a name containing dots that is not a
 *   top-level claim is followed as a path into nested objects (`realm_access.roles`).
 * - With `group_enabled`, as the seed says: the IdP groups come from `claim_groups`
 *   (default `groups`), a string array or a single string, names kept exactly as
 *   given (Keycloak full paths such as `/admins` included) and compared
 *   case-sensitively. Each IdP group becomes its `group_mapping` value(s), or keeps
 *   its name when unmapped; the user's groups are those names that exist in the
 *   tenant (the values of `group_mapping` plus `sso.groups`), de-duplicated, in
 *   order. Admin when any IdP group, before translation, is in `admin_groups`.
 *   With `group_prohibit_user_login_if_not_in_group`, a missing groups claim or an
 *   empty result refuses the login, admins included.
 * - Without `group_enabled` the groups claim is not read: no groups, not admin.
 */
import type { CompanySso, ProviderConfiguration } from '../directory/types.js';
import type { Identity } from '../session/types.js';
import { tenantClaimMatches } from '../tenancy/isolation.js';
import { claimHint } from './provider-hints.js';

/** Claim names used when the provider configuration does not name them. */
export const DEFAULT_CLAIMS = {
  tenant: 'tenant_key',
  name: 'name',
  email: 'email',
  groups: 'groups',
} as const;

export type { Identity } from '../session/types.js';

/** Why a login is refused by policy. */
type LoginRefusalReason =
  | 'tenant_claim_missing'
  | 'tenant_mismatch'
  | 'groups_claim_missing'
  | 'no_group'
  | 'subject_missing';

/** A refused login: one message for the user, one for the operator's log. */
interface LoginRefusal {
  reason: LoginRefusalReason;
  /** Shown to the user. Names the tenant, never the user's claims. */
  message: string;
  /** Logged for the operator: which claim, which configuration key to fix. */
  detail: string;
}

/** Result of {@link claimsToIdentity}: the identity, the IdP groups it was derived from, and why an email was dropped. */
export type IdentityResult = { ok: true; identity: Identity; idpGroups: string[]; emailDropped?: string } | { ok: false; refusal: LoginRefusal };

const MAX_LISTED = 10;

/** A claim by name; a dotted name that is not a top-level claim is followed into nested objects. */
export function readClaim(claims: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(claims, name)) return claims[name];
  if (!name.includes('.')) return undefined;
  let node: unknown = claims;
  for (const part of name.split('.')) {
    if (typeof node !== 'object' || node === null || Array.isArray(node) || !Object.hasOwn(node, part)) {
      return undefined;
    }
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

function nonEmptyString(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

function list(names: string[]): string {
  const shown = names.slice(0, MAX_LISTED).map((n) => JSON.stringify(n));
  return names.length > MAX_LISTED ? `${shown.join(', ')} and ${names.length - MAX_LISTED} more` : shown.join(', ');
}

function refuse(reason: LoginRefusalReason, message: string, detail: string): IdentityResult {
  return { ok: false, refusal: { reason, message, detail } };
}

/** Why an email is not taken (undefined: it is). */
function unverifiedEmail(verified: unknown, provider: ProviderConfiguration): string | undefined {
  if (verified === true) return undefined;
  if (verified === false) return 'email_verified is false';
  if (provider.trust_unverified_email === true) return undefined;
  return verified === undefined
    ? 'no email_verified claim and the provider does not set trust_unverified_email'
    : `email_verified is ${JSON.stringify(verified)}, not true, and the provider does not set trust_unverified_email`;
}

/**
 * The tenant's ClearML groups: every value of `group_mapping` plus `sso.groups`.
 */
function tenantGroups(company: CompanySso): Set<string> {
  const groups = new Set<string>();
  for (const value of Object.values(company.group_mapping ?? {})) {
    for (const g of Array.isArray(value) ? value : [value]) if (typeof g === 'string') groups.add(g);
  }
  for (const g of company.groups ?? []) groups.add(g);
  return groups;
}

/**
 * Translates IdP group names through `group_mapping` (unmapped names kept), then
 * keeps the names that exist in the tenant, de-duplicated, in first-seen order.
 */
function translateGroups(idpGroups: string[], company: CompanySso): string[] {
  const mapping = company.group_mapping ?? {};
  const known = tenantGroups(company);
  const out = new Set<string>();
  for (const g of idpGroups) {
    const mapped = Object.hasOwn(mapping, g) ? mapping[g] : g;
    for (const name of Array.isArray(mapped) ? mapped : [mapped]) {
      if (typeof name === 'string' && known.has(name)) out.add(name);
    }
  }
  return [...out];
}

/**
 * Turns validated ID token claims into an {@link Identity}, or refuses the login.
 * @param claims the ID token's claims, already verified by the OIDC client.
 * @param provider the configuration of the provider that issued them.
 * @param company the SSO settings of the company the login is for.
 * @param providerKind the saved `provider` field (`keycloak`, `okta`, ...): refusal hints use its terms.
 */
export function claimsToIdentity(
  claims: Record<string, unknown>,
  provider: ProviderConfiguration,
  company: CompanySso,
  providerKind?: string,
): IdentityResult {
  const tenant = company.tenant;
  const from = `the ID token from provider ${JSON.stringify(provider.id)} (client_id ${JSON.stringify(provider.client_id)})`;
  const notInTenant = `can't log in to tenant ${tenant}: the user isn't part of this tenant`;

  const subject = nonEmptyString(claims['sub']);
  if (subject === undefined) {
    return refuse(
      'subject_missing',
      `can't log in to tenant ${tenant}: the identity provider did not identify the user`,
      `no \`sub\` claim in ${from}`,
    );
  }

  const tenantClaim = provider.claim_tenant || DEFAULT_CLAIMS.tenant;
  const rawTenant = readClaim(claims, tenantClaim);
  if (rawTenant === undefined || rawTenant === null || rawTenant === '' || (Array.isArray(rawTenant) && rawTenant.length === 0)) {
    return refuse(
      'tenant_claim_missing',
      notInTenant,
      `no \`${tenantClaim}\` claim in ${from}${provider.claims_source === 'id_token' ? '' : ' or its userinfo'}: ${claimHint(providerKind, 'tenant')}`,
    );
  }
  const single: unknown = Array.isArray(rawTenant) && rawTenant.length === 1 ? rawTenant[0] : rawTenant;
  if (typeof single !== 'string') {
    return refuse(
      'tenant_mismatch',
      notInTenant,
      Array.isArray(single)
        ? `the \`${tenantClaim}\` claim in ${from} has ${single.length} values; exactly one tenant is required`
        : `the \`${tenantClaim}\` claim in ${from} is a ${single === null ? 'null' : typeof single}, not a string`,
    );
  }
  if (!tenantClaimMatches(single, tenant)) {
    return refuse(
      'tenant_mismatch',
      notInTenant,
      `the \`${tenantClaim}\` claim in ${from} is ${JSON.stringify(single)}, not ${JSON.stringify(tenant)}`,
    );
  }

  const identity: Identity = { subject, issuer: nonEmptyString(claims['iss']) ?? '', tenant, groups: [], admin: false };
  const name = nonEmptyString(readClaim(claims, provider.claim_name || DEFAULT_CLAIMS.name));
  if (name !== undefined) identity.name = name;
  const email = nonEmptyString(readClaim(claims, provider.claim_email || DEFAULT_CLAIMS.email));
  const emailDropped = email === undefined ? undefined : unverifiedEmail(claims['email_verified'], provider);
  if (email !== undefined && emailDropped === undefined) identity.email = email;
  const accepted = (idpGroups: string[]): IdentityResult => ({ ok: true, identity, idpGroups, ...(emailDropped ? { emailDropped } : {}) });

  if (!provider.group_enabled) return accepted([]);

  const prohibit = provider.group_prohibit_user_login_if_not_in_group === true;
  const groupsClaim = provider.claim_groups || DEFAULT_CLAIMS.groups;
  const rawGroups = readClaim(claims, groupsClaim);
  let idpGroups: string[];
  if (typeof rawGroups === 'string') idpGroups = [rawGroups];
  else if (Array.isArray(rawGroups)) idpGroups = rawGroups.filter((g): g is string => typeof g === 'string');
  else {
    if (prohibit) {
      return refuse(
        'groups_claim_missing',
        `can't log in to tenant ${tenant}: the user's groups are unknown`,
        `no \`${groupsClaim}\` claim (a list of group names) in ${from}: ${claimHint(providerKind, 'groups')}, ` +
          'or turn off group_prohibit_user_login_if_not_in_group',
      );
    }
    idpGroups = [];
  }

  identity.groups = translateGroups(idpGroups, company);
  identity.admin = isAdmin(idpGroups, company);

  if (prohibit && identity.groups.length === 0) {
    const known = [...tenantGroups(company)];
    return refuse(
      'no_group',
      `can't log in to tenant ${tenant}: the user isn't in any group of this tenant`,
      `none of the user's ${idpGroups.length} IdP groups (\`${groupsClaim}\`${idpGroups.length ? `: ${list(idpGroups)}` : ''}) ` +
        `is a group of tenant ${JSON.stringify(tenant)} after group_mapping` +
        (known.length ? ` (tenant groups: ${list(known)})` : ' (the tenant has no groups: set group_mapping or sso.groups)') +
        (identity.admin ? '; the user is in an admin group, which alone does not admit a login' : ''),
    );
  }
  return accepted(idpGroups);
}

function isAdmin(idpGroups: readonly string[], company: CompanySso): boolean {
  const adminGroups = new Set(company.admin_groups ?? []);
  return idpGroups.some((g) => adminGroups.has(g));
}

/**
 * A live session's groups and admin flag under the company's current settings,
 * recomputed from the IdP groups kept at login; undefined when the user maps to no
 * group any more and the provider refuses such users.
 */
export function regroup(identity: Identity, idpGroups: readonly string[], provider: ProviderConfiguration, company: CompanySso): Identity | undefined {
  if (!provider.group_enabled) return identity.groups.length === 0 && !identity.admin ? identity : { ...identity, groups: [], admin: false };
  const groups = translateGroups([...idpGroups], company);
  if (provider.group_prohibit_user_login_if_not_in_group === true && groups.length === 0) return undefined;
  return { ...identity, groups, admin: isAdmin(idpGroups, company) };
}
