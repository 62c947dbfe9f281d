/**
 * What an operator must change at a provider to make a claim appear, in that
 * provider's own words. Pure; used in refusal details (logs only).
 *
 * Rules: the provider kind is the saved `provider` field, matched loosely (case and
 * spelling variants); an unknown kind gets the generic advice; every hint also names
 * the gateway setting (`claim_tenant`, `claim_groups`) that could point elsewhere.
 */

/** Which claim is missing. */
export type HintedClaim = 'tenant' | 'groups';

type Kind = 'keycloak' | 'lemonldap' | 'entra' | 'okta' | 'google' | 'auth0' | 'authentik' | 'generic';

const KINDS: Array<[RegExp, Kind]> = [
  [/keycloak|rh-?sso/i, 'keycloak'],
  [/lemon|llng/i, 'lemonldap'],
  [/entra|azure|microsoft|aad/i, 'entra'],
  [/okta/i, 'okta'],
  [/google|workspace|gsuite/i, 'google'],
  [/auth0/i, 'auth0'],
  [/authentik/i, 'authentik'],
];

const HINTS: Record<Kind, Record<HintedClaim, string>> = {
  keycloak: {
    tenant: 'add a mapper (client scope > Add mapper > User Attribute or Hardcoded claim, "Add to ID token" on) that puts the external tenant ID in the ID token',
    groups: 'add a Group Membership mapper ("Add to ID token" on) to the client\'s dedicated scope',
  },
  lemonldap: {
    tenant: 'add the attribute to the relying party\'s exported claims (OpenID Connect Relying Parties > Exported attributes) and to a scope the gateway requests; turn on "Force claims to be returned in ID Token" or keep claims_source both so userinfo supplies it',
    groups: 'export the groups attribute in the relying party\'s exported claims (type "array") under a scope the gateway requests',
  },
  entra: {
    tenant: 'add an optional claim or a directory extension attribute to the ID token (App registrations > Token configuration), or use the built-in `tid` claim with claim_tenant',
    groups: 'add a groups claim (App registrations > Token configuration > Add groups claim, ID token); Entra sends group object IDs unless "Emit groups as role claims"/sAMAccountName is chosen',
  },
  okta: {
    tenant: 'add a claim to the authorization server (Security > API > Authorization Servers > Claims, token type ID Token, "Always"), or keep claims_source both so userinfo supplies it',
    groups: 'add a groups claim with a filter (authorization server Claims, or the app\'s "Groups claim filter" on the org server)',
  },
  google: {
    tenant: 'Google ID tokens carry no custom claims: set claim_tenant to `hd` (the Workspace domain) and use the domain as the tenant ID',
    groups: 'Google ID tokens carry no groups: turn off group_enabled or group_prohibit_user_login_if_not_in_group',
  },
  auth0: {
    tenant: 'add it with a post-login Action (api.idToken.setCustomClaim) under a namespaced name, and set claim_tenant to that name',
    groups: 'add the groups or roles with a post-login Action (api.idToken.setCustomClaim) and set claim_groups to its name',
  },
  authentik: {
    tenant: 'add a scope mapping (Customization > Property Mappings > Scope Mapping) that returns it, and select it on the OAuth2/OpenID provider',
    groups: 'authentik sends `groups` in the profile scope: check the provider\'s scope mappings include it',
  },
  generic: {
    tenant: 'make the provider put the external tenant ID in the ID token or userinfo',
    groups: 'make the provider put the user\'s groups (a list of names) in the ID token or userinfo',
  },
};

/** The advice for a missing claim at a provider of this kind. */
export function claimHint(providerKind: string | undefined, claim: HintedClaim): string {
  const kind = KINDS.find(([re]) => re.test(providerKind ?? ''))?.[1] ?? 'generic';
  const setting = claim === 'tenant' ? 'or set claim_tenant' : 'set claim_groups';
  return `${HINTS[kind][claim]}; ${setting}`;
}
