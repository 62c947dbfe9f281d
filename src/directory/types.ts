/**
 * The tenant directory's records and the store interface every backend implements.
 *
 * A company is a ClearML company tied to at most one external tenant (usually a
 * Keycloak realm). Providers are the identity provider configurations saved with
 * `sso.save_provider_configuration`; they belong to a company.
 *
 * Normal forms, enforced by the admin API before anything reaches a store:
 * - `tenant` keeps the case it was saved with; lookups compare it lower-cased
 *   (`tenantKey`).
 * - `domains` and `hosts` are stored lower-case, IDN names in their ASCII (punycode)
 *   form, without a trailing dot or port.
 */

/** Translation of IdP group names to ClearML group names; one IdP group may give several. */
type GroupMapping = Record<string, string | string[]>;

/** A company's SSO settings: the seed's `sso` object plus the gateway's extensions. */
export interface CompanySso {
  /** External tenant ID as saved (1-63 of letters, digits, `-`, `_`, `.`). */
  tenant: string;
  group_mapping: GroupMapping;
  admin_groups: string[];
  /** Extra ClearML groups that exist in the tenant besides the values of `group_mapping`. */
  groups: string[];
  /** Work email domains that discover this tenant. */
  domains: string[];
  /** Custom vanity hosts of this tenant. */
  hosts: string[];
  /** Name shown on the gateway's pages. */
  display_name?: string;
  /** `aud` of the signed identity assertion, instead of the tenant's origin. */
  assertion_audience?: string;
}

/** One ClearML company with its SSO settings. */
export interface Company {
  company: string;
  sso: CompanySso;
  /** Milliseconds since the epoch, set by the store. */
  updatedAt?: number;
}

/** The seed's provider `configuration`, plus `issuer`, `jwks_uri` and the gateway's extensions. */
export interface ProviderConfiguration {
  id: string;
  display_name?: string;
  client_id: string;
  client_secret?: string;
  authorization_endpoint?: string;
  token_endpoint?: string;
  revocation_endpoint?: string;
  end_session_endpoint?: string;
  userinfo_endpoint?: string;
  issuer?: string;
  jwks_uri?: string;
  logout_from_provider?: boolean;
  /** Accept `GET /frontchannel-logout_<client_id>` from this provider. */
  frontchannel_logout?: boolean;
  claim_tenant?: string;
  claim_name?: string;
  claim_email?: string;
  group_enabled?: boolean;
  claim_groups?: string;
  group_prohibit_user_login_if_not_in_group?: boolean;
  scope?: string;
  /** How the gateway authenticates at the token endpoint; default: the first of basic, post, private_key_jwt, none that discovery announces and the gateway can do. */
  token_endpoint_auth_method?: TokenEndpointAuthMethod;
  /** Where identity claims come from (default `both`: the ID token, then userinfo for claims it lacks). */
  claims_source?: ClaimsSource;
  /** The ID token signing algorithm, when the provider needs one pinned; `HS256` (keyed by the client secret) only this way. */
  id_token_signed_response_alg?: string;
  /** Take the email even without `email_verified: true` (the operator vouches for the IdP). */
  trust_unverified_email?: boolean;
}

/** Client authentication methods at the token endpoint. */
export type TokenEndpointAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none';

/** Where identity claims are read. */
type ClaimsSource = 'id_token' | 'userinfo' | 'both';

/** A saved identity provider of a company. */
export interface Provider {
  company: string;
  /** The seed's `provider` field, e.g. `keycloak`. */
  provider: string;
  configuration: ProviderConfiguration;
  updatedAt?: number;
}

/** A tenant as the gateway uses it: the company and all of its providers. */
export interface TenantRecord {
  company: Company;
  providers: Provider[];
}

/** A provider found by client_id, with the external tenant of its company when it has one. */
export interface ClientRecord {
  provider: Provider;
  /** External tenant ID of the provider's company, or undefined when the company has no tenant. */
  tenant?: string;
}

/**
 * A key the gateway signs identity assertions with (X-Auth-Request-Jwt), kept in the
 * directory so every replica signs with the same one.
 */
export interface SigningKey {
  /** Key id, the JWT header's `kid`. */
  kid: string;
  /** JWS algorithm, e.g. `ES256`. */
  alg: string;
  /** Private key as a JWK (never leaves the gateway). */
  privateJwk: Record<string, unknown>;
  /** Public key as a JWK, published at /.well-known/jwks.json. */
  publicJwk: Record<string, unknown>;
  /** Milliseconds since the epoch. */
  createdAt: number;
  /** When it stopped signing (a newer key took over); absent for the current key. */
  retiredAt?: number;
}

/** What a write changed, so caches can invalidate exactly the affected keys. */
export interface WriteResult<T> {
  previous?: T;
  current?: T;
}

/**
 * Persistent tenant directory. Every method is async so a network database fits.
 *
 * Rules every implementation keeps (the contract suite in test/directory checks them):
 * - a tenant (case-insensitive), a domain, a host and a client_id each belong to at
 *   most one company (a client_id to one provider); a write that would break this rejects with a `ConflictError`
 *   (src/errors.ts) and changes nothing;
 * - each write is atomic: all of it or none of it;
 * - `putCompany` and `putProvider` replace the whole record they are given (the admin
 *   API merges partial updates before calling them);
 * - deleting a company keeps its providers (they then belong to no tenant).
 */
export interface TenantStore {
  /** Human-readable backend name, e.g. `sqlite`. */
  readonly kind: string;
  /** Opens the store and applies pending migrations. */
  init(): Promise<void>;
  /** Throws when the store cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;

  getCompany(company: string): Promise<Company | undefined>;
  listCompanies(): Promise<Company[]>;
  putCompany(company: Company): Promise<WriteResult<Company>>;
  /**
   * Reads the company and writes what `next` makes of it, in one transaction: a
   * read-merge-write that no concurrent writer (in this or another process) can
   * interleave with. `next` is synchronous and may throw to abort.
   */
  updateCompany(company: string, next: (previous: Company | undefined) => Company): Promise<WriteResult<Company>>;
  deleteCompany(company: string): Promise<WriteResult<Company>>;

  getProvider(company: string, id: string): Promise<Provider | undefined>;
  listProviders(company?: string): Promise<Provider[]>;
  putProvider(provider: Provider): Promise<WriteResult<Provider>>;
  /** Like `updateCompany`, for one provider of a company. */
  updateProvider(company: string, id: string, next: (previous: Provider | undefined) => Provider): Promise<WriteResult<Provider>>;
  deleteProvider(company: string, id: string): Promise<WriteResult<Provider>>;

  /** The company whose tenant equals `tenant` case-insensitively, with its providers. One query. */
  findTenant(tenant: string): Promise<TenantRecord | undefined>;
  /** External tenant ID owning a (normalised) email domain. */
  findTenantByDomain(domain: string): Promise<string | undefined>;
  /** External tenant ID owning a (normalised) custom host. */
  findTenantByHost(host: string): Promise<string | undefined>;
  /** The provider with this exact client_id, and its company's tenant. */
  findClient(clientId: string): Promise<ClientRecord | undefined>;

  /** Every assertion signing key, the current one (no `retiredAt`) first, then newest first. */
  listSigningKeys(): Promise<SigningKey[]>;
  /**
   * Stores `key` as the current signing key unless there is one already, in one
   * transaction (replicas starting together agree on one key); returns the current key.
   */
  ensureSigningKey(key: SigningKey): Promise<SigningKey>;
  /**
   * Makes `key` the current signing key, in one transaction: the previous current key
   * gets `retiredAt = key.createdAt`, and keys retired before `dropRetiredBefore` are deleted.
   */
  rotateSigningKey(key: SigningKey, dropRetiredBefore: number): Promise<void>;
}
