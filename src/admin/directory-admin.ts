/**
 * What the admin API does to the directory, independent of HTTP.
 *
 * Rules enforced before anything reaches the store:
 * - a tenant ID is 1-63 of letters, digits, `-`, `_`, `.`;
 * - domains and hosts are normalised (lower case, punycode, no trailing dot or port);
 *   a custom host may not be a base host nor lie under `tenancy.baseDomain` (those are
 *   vanity hosts already);
 * - identity provider URLs are https on public addresses (http, loopback, private and
 *   link-local only with `oidc.insecureAllowPrivateProviders`); no credentials or fragments;
 * - a provider needs an `issuer` or an `authorization_endpoint`; in authenticate mode the
 *   issuer must be readable or derivable (a Keycloak `authorization_endpoint`);
 * - `token_endpoint_auth_method` must be one the gateway can do with what is saved
 *   (a client secret for basic and post, `oidc.clientAssertionKeyFile` for private_key_jwt);
 *   `id_token_signed_response_alg` HS256 needs a client secret;
 * - `system.update_company_sso_config` merges: keys given replace, keys absent stay;
 *   merges run inside the store's write transaction, so concurrent writers on any
 *   replica never lose each other's keys;
 * - re-saving a provider without `client_secret` keeps the stored secret;
 * - every write returns the cache keys it affects.
 */
import type { Company, CompanySso, Provider, ProviderConfiguration, TenantStore } from '../directory/types.js';
import { keysForCompanyWrite, keysForProviderWrite } from '../directory/invalidation.js';
import { MissingFieldsError, NotFoundError, ValidationError } from '../errors.js';
import { normalizeDomain } from '../tenancy/host.js';
import type { Config } from '../config/schema.js';
import { deriveIssuer } from '../oidc/client-registry.js';
import { checkProviderUrl } from '../tenancy/provider-url.js';
import { isValidTenantId } from '../tenancy/tenant-id.js';
import type { SaveProviderBody, UpdateCompanySsoBody } from './payloads.js';

/** What the admin layer needs to know about the deployment. */
export interface DirectoryAdminOptions {
  store: TenantStore;
  /** Hosts that are never a tenant's custom host (public.url's host, baseDomain). */
  baseHosts: ReadonlySet<string>;
  baseDomain: string;
  /** Called with the cache keys a committed write affects. */
  onWrite: (keys: string[]) => void;
  /** How strictly provider configurations are checked (default: the secure rules, route mode). */
  providerRules?: ProviderRules;
}

/** What a provider configuration is checked against. */
export interface ProviderRules {
  /** `oidc.insecureAllowPrivateProviders`. */
  insecureAllowPrivateProviders: boolean;
  /** Authenticate mode: the issuer must be readable or derivable. */
  requireIssuer: boolean;
  /** The gateway holds a key for private_key_jwt (`oidc.clientAssertionKeyFile`). */
  holdsClientAssertionKey: boolean;
}

/** The secure defaults: https on public addresses, issuer not required (route mode). */
const DEFAULT_PROVIDER_RULES: ProviderRules = { insecureAllowPrivateProviders: false, requireIssuer: false, holdsClientAssertionKey: false };

/** The provider rules of a configuration. */
export function providerRulesOf(config: Config): ProviderRules {
  return {
    insecureAllowPrivateProviders: config.oidc.insecureAllowPrivateProviders,
    requireIssuer: config.mode === 'authenticate',
    holdsClientAssertionKey: config.oidc.clientAssertionKeyFile !== undefined,
  };
}

const URL_FIELDS = [
  'authorization_endpoint',
  'token_endpoint',
  'revocation_endpoint',
  'end_session_endpoint',
  'userinfo_endpoint',
  'issuer',
  'jwks_uri',
] as const satisfies ReadonlyArray<keyof ProviderConfiguration>;

function normalizeList(values: string[], field: string, check?: (v: string) => string | undefined): string[] {
  const out: string[] = [];
  values.forEach((raw, i) => {
    const v = normalizeDomain(raw);
    if (v === undefined) throw new ValidationError(`${field}.${i}`, `${field}.${i} is not a valid domain name`);
    const problem = check?.(v);
    if (problem) throw new ValidationError(`${field}.${i}`, `${field}.${i} ${problem}`);
    if (!out.includes(v)) out.push(v);
  });
  return out;
}

/**
 * Checks a provider configuration's URLs, that an issuer can be found, and the key
 * private_key_jwt needs; returns a copy. See {@link checkClientSecretNeeds} for the secret.
 */
function checkProviderConfiguration(input: ProviderConfiguration, rules: ProviderRules = DEFAULT_PROVIDER_RULES): ProviderConfiguration {
  const cfg: ProviderConfiguration = { ...input };
  const policy = { insecureAllowPrivate: rules.insecureAllowPrivateProviders };
  for (const f of URL_FIELDS) {
    const v = cfg[f];
    const problem = v === undefined ? undefined : checkProviderUrl(v, policy);
    if (problem) throw new ValidationError(`configuration.${f}`, `configuration.${f} ${problem}`);
  }
  if (cfg.issuer === undefined && cfg.authorization_endpoint === undefined) {
    throw new MissingFieldsError(['configuration.issuer', 'configuration.authorization_endpoint']);
  }
  if (rules.requireIssuer && deriveIssuer(cfg) === undefined) {
    throw new ValidationError(
      'configuration.issuer',
      "configuration.issuer is required: it cannot be derived from configuration.authorization_endpoint (only Keycloak's .../realms/<realm>/protocol/openid-connect/auth can be)",
    );
  }
  if (cfg.token_endpoint_auth_method === 'private_key_jwt' && !rules.holdsClientAssertionKey) {
    throw new ValidationError('configuration.token_endpoint_auth_method', 'configuration.token_endpoint_auth_method private_key_jwt needs a key the gateway holds: set oidc.clientAssertionKeyFile');
  }
  return cfg;
}

/** Refuses a configuration whose client authentication or HS256 needs a secret it does not have (saved or kept). */
function checkClientSecretNeeds(cfg: ProviderConfiguration, secret: string | undefined): void {
  const method = cfg.token_endpoint_auth_method;
  if ((method === 'client_secret_basic' || method === 'client_secret_post') && !secret) {
    throw new ValidationError('configuration.token_endpoint_auth_method', `configuration.token_endpoint_auth_method ${method} needs configuration.client_secret`);
  }
  if (cfg.id_token_signed_response_alg === 'HS256' && !secret) {
    throw new ValidationError('configuration.id_token_signed_response_alg', 'configuration.id_token_signed_response_alg HS256 needs configuration.client_secret (its key)');
  }
}

/** Drops `client_secret` and adds `has_client_secret`: the only shape a provider leaves the gateway in. */
export function providerView(p: Provider): Record<string, unknown> {
  const { client_secret: secret, ...configuration } = p.configuration;
  return {
    provider: p.provider,
    company: p.company,
    configuration: { ...configuration, has_client_secret: typeof secret === 'string' && secret.length > 0 },
    ...(p.updatedAt !== undefined ? { last_update: new Date(p.updatedAt).toISOString() } : {}),
  };
}

/** The company's sso settings as the API returns them. */
export function companyView(c: Company): Record<string, unknown> {
  return {
    company: c.company,
    sso: { ...c.sso },
    ...(c.updatedAt !== undefined ? { last_update: new Date(c.updatedAt).toISOString() } : {}),
  };
}

/** Directory operations behind the admin endpoints. */
export class DirectoryAdmin {
  readonly #o: DirectoryAdminOptions;
  constructor(opts: DirectoryAdminOptions) {
    this.#o = opts;
  }

  /** Checks a provider configuration with this deployment's rules. */
  checkProvider(cfg: ProviderConfiguration): ProviderConfiguration {
    const checked = checkProviderConfiguration(cfg, this.#o.providerRules ?? DEFAULT_PROVIDER_RULES);
    checkClientSecretNeeds(checked, checked.client_secret);
    return checked;
  }

  #checkHost = (host: string): string | undefined => {
    const base = this.#o.baseDomain;
    if (this.#o.baseHosts.has(host) || host === base) return 'is the base host';
    if (host.endsWith(`.${base}`)) return `lies under tenancy.baseDomain (${base}): it is a vanity host already`;
    return undefined;
  };

  /**
   * Validates and normalises sso settings, merged over the stored ones: what
   * `system.update_company_sso_config` would store. Throws the admin API's errors.
   */
  mergeSso(input: UpdateCompanySsoBody['sso'], stored: CompanySso | undefined): CompanySso {
    const tenant = input.tenant ?? stored?.tenant;
    if (tenant === undefined) throw new MissingFieldsError(['sso.tenant']);
    if (!isValidTenantId(tenant)) {
      throw new ValidationError('sso.tenant', 'sso.tenant must be 1 to 63 letters, digits, "-", "_" or "."');
    }
    const base: CompanySso = stored ?? { tenant, group_mapping: {}, admin_groups: [], groups: [], domains: [], hosts: [] };
    const sso: CompanySso = {
      tenant,
      group_mapping: input.group_mapping ?? base.group_mapping,
      admin_groups: input.admin_groups ?? base.admin_groups,
      groups: input.groups ?? base.groups,
      domains: input.domains ? normalizeList(input.domains, 'sso.domains') : base.domains,
      hosts: input.hosts ? normalizeList(input.hosts, 'sso.hosts', this.#checkHost) : base.hosts,
    };
    const displayName = input.display_name ?? base.display_name;
    if (displayName !== undefined && displayName !== '') sso.display_name = displayName;
    const audience = input.assertion_audience ?? base.assertion_audience;
    if (audience !== undefined && audience !== '') {
      if (audience.includes(':') && !URL.canParse(audience)) {
        throw new ValidationError('sso.assertion_audience', 'sso.assertion_audience must be a URL or a name without ":" (RFC 7519 StringOrURI)');
      }
      sso.assertion_audience = audience;
    }
    return sso;
  }

  /** `system.update_company_sso_config`: creates or merges a company's sso settings. */
  async updateCompanySso(body: UpdateCompanySsoBody): Promise<Company> {
    const result = await this.#o.store.updateCompany(body.company, (previous) => ({ company: body.company, sso: this.mergeSso(body.sso, previous?.sso) }));
    const providers = await this.#o.store.listProviders(body.company);
    this.#o.onWrite(keysForCompanyWrite(result, providers));
    return result.current!;
  }

  /** `system.get_company_sso_config`. */
  async getCompanySso(company: string): Promise<Company> {
    const c = await this.#o.store.getCompany(company);
    if (!c) throw new NotFoundError(`company "${company}" has no sso configuration`);
    return c;
  }

  /** `system.delete_company_sso_config`; the company's providers stay, tenantless. */
  async deleteCompanySso(company: string): Promise<void> {
    const result = await this.#o.store.deleteCompany(company);
    if (!result.previous) throw new NotFoundError(`company "${company}" has no sso configuration`);
    const providers = await this.#o.store.listProviders(company);
    this.#o.onWrite(keysForCompanyWrite(result, providers));
  }

  /** `sso.save_provider_configuration`: creates or replaces one provider of a company. */
  async saveProvider(body: SaveProviderBody): Promise<Provider> {
    const rules = this.#o.providerRules ?? DEFAULT_PROVIDER_RULES;
    const cfg = checkProviderConfiguration(body.configuration, rules);
    const result = await this.#o.store.updateProvider(body.company, cfg.id, (previous) => {
      const secret = cfg.client_secret ?? previous?.configuration.client_secret;
      checkClientSecretNeeds(cfg, secret);
      return { company: body.company, provider: body.provider, configuration: { ...cfg, ...(secret !== undefined ? { client_secret: secret } : {}) } };
    });
    const company = await this.#o.store.getCompany(body.company);
    this.#o.onWrite(keysForProviderWrite(result, company?.sso.tenant));
    return result.current!;
  }

  /** `sso.get_provider_configuration`. */
  async getProvider(company: string, id: string): Promise<Provider> {
    const p = await this.#o.store.getProvider(company, id);
    if (!p) throw new NotFoundError(`company "${company}" has no provider "${id}"`);
    return p;
  }

  /** `sso.get_all_provider_configurations`. */
  listProviders(company?: string): Promise<Provider[]> {
    return this.#o.store.listProviders(company);
  }

  /** `sso.delete_provider_configuration`. */
  async deleteProvider(company: string, id: string): Promise<void> {
    const result = await this.#o.store.deleteProvider(company, id);
    if (!result.previous) throw new NotFoundError(`company "${company}" has no provider "${id}"`);
    const c = await this.#o.store.getCompany(company);
    this.#o.onWrite(keysForProviderWrite(result, c?.sso.tenant));
  }
}
