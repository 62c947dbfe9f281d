/**
 * One OpenID Connect client per saved provider, discovered once and shared: its
 * openid-client configuration, its signing keys, its client authentication.
 *
 * Rules:
 * - The issuer is `configuration.issuer`, else derived from a Keycloak
 *   `authorization_endpoint` (`.../realms/R/protocol/openid-connect/auth` -> `.../realms/R`);
 *   without one the provider cannot be used (ID tokens could not be checked).
 * - Every request to a provider goes through {@link createProviderFetch}: https on
 *   public addresses (checked after DNS resolution), http and private addresses only
 *   with `insecureAllowPrivateProviders`; nothing is requested from a URL that breaks this.
 * - Endpoints saved with the provider win over discovered ones. A discovered endpoint
 *   must be on the issuer's origin; one that is not is refused with a log line naming
 *   it (the login fails for a required endpoint, an optional one is dropped) unless the
 *   provider configuration lists it.
 * - Client authentication: `token_endpoint_auth_method` when configured, else the
 *   first of client_secret_basic, client_secret_post, private_key_jwt, none that the
 *   provider announces (basic when it announces nothing) and the gateway can do.
 *   Basic credentials leave the unreserved characters (`-`, `.`, `_`, `~`) as they are.
 * - ID tokens are verified against the provider's JWKS ({@link ProviderKeys}, kept
 *   per provider across rediscoveries while `jwks_uri` is unchanged).
 * - A client is cached per client_id until the provider record changes
 *   (`updatedAt` or any configuration field) or `invalidate` is called; it is
 *   rediscovered in the background after `refreshSeconds`, the old one serving
 *   meanwhile and for as long as the provider fails.
 * - A failing provider is retried with exponential backoff (1 s, 2 s, 4 s, ... up to
 *   `retryMaxSeconds`); in between, `get` fails at once without a request. Concurrent
 *   calls for one provider share one discovery. Every request has `httpTimeoutMs`.
 * - Failures surface as `GatewayError(PROVIDER_UNAVAILABLE, 503)`, or
 *   `PROVIDER_MISCONFIGURED` (502) when the saved configuration cannot work; the cause
 *   is only in `detail`. The client secret never appears in errors or logs.
 */
import { createHash } from 'node:crypto';
import * as oidc from 'openid-client';
import type { Provider, ProviderConfiguration, TokenEndpointAuthMethod } from '../directory/types.js';
import { ErrorCodes, GatewayError } from '../errors.js';
import type { ProviderCall } from '../observability/metrics.js';
import type { ProviderFetchHook } from '../observability/provider-calls.js';
import { checkProviderUrl } from '../tenancy/provider-url.js';
import { ASYMMETRIC_ALGORITHMS, ProviderKeys } from './jwks.js';
import { createProviderFetch, oidcFetch } from './provider-fetch.js';

/** A key the gateway holds for `private_key_jwt` client authentication. */
export interface ClientAssertionKey {
  key: CryptoKey;
  kid: string;
}

/** Options of {@link ClientRegistry}. */
export interface ClientRegistryOptions {
  /** Timeout of each request to an identity provider, in milliseconds. */
  httpTimeoutMs: number;
  /** Longest wait between discovery retries of a failing provider, in seconds. */
  retryMaxSeconds: number;
  /** Age after which a working configuration is rediscovered in the background, in seconds (default 3600). */
  refreshSeconds?: number;
  /** `oidc.insecureAllowPrivateProviders`: http and loopback/private/link-local providers (default false). */
  insecureAllowPrivateProviders?: boolean;
  /** The key for `private_key_jwt`, when the gateway holds one. */
  clientAssertionKey?: ClientAssertionKey;
  /** Least time between two JWKS refetches caused by an unknown `kid` (default 30 s). */
  jwksRefetchCooldownMs?: number;
  /** Clock in milliseconds since the epoch (default `Date.now`). */
  now?: () => number;
  log?: { warn(obj: object, msg: string): void };
  /** Fetch implementation for every request to identity providers (default: a guarded undici fetch). */
  fetch?: typeof fetch;
  /** Observes every request to identity providers (metrics, traces). */
  instrument?: ProviderFetchHook;
}

/** A provider ready for logins. */
export interface ProviderClient {
  config: oidc.Configuration;
  /** The saved configuration this client was built from. */
  provider: ProviderConfiguration;
  issuer: string;
  keys: ProviderKeys;
  authMethod: TokenEndpointAuthMethod;
  /** Algorithms an ID token may be signed with. */
  idTokenAlgorithms: readonly string[];
}

/** Server metadata fields that a saved provider may set, and that must be safe URLs. */
const ENDPOINTS = [
  'authorization_endpoint',
  'token_endpoint',
  'userinfo_endpoint',
  'jwks_uri',
  'revocation_endpoint',
  'end_session_endpoint',
] as const;
const REQUIRED_ENDPOINTS: ReadonlyArray<(typeof ENDPOINTS)[number]> = ['authorization_endpoint', 'token_endpoint', 'jwks_uri'];

/** Order in which a client authentication method is picked from what discovery announces. */
export const AUTH_METHOD_PREFERENCE: readonly TokenEndpointAuthMethod[] = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'];

/**
 * The client authentication method for a provider: the configured one, else the
 * first of {@link AUTH_METHOD_PREFERENCE} the provider announces (basic when it
 * announces nothing) that the gateway can do. Pure.
 */
export function chooseAuthMethod(
  cfg: Pick<ProviderConfiguration, 'token_endpoint_auth_method' | 'client_secret'>,
  announced: readonly string[] | undefined,
  holdsKey: boolean,
): TokenEndpointAuthMethod {
  if (cfg.token_endpoint_auth_method) return cfg.token_endpoint_auth_method;
  const can = (m: TokenEndpointAuthMethod) => (m === 'private_key_jwt' ? holdsKey : m === 'none' ? !cfg.client_secret : !!cfg.client_secret);
  const offered = announced && announced.length ? announced : ['client_secret_basic'];
  return AUTH_METHOD_PREFERENCE.find((m) => offered.includes(m) && can(m)) ?? (cfg.client_secret ? 'client_secret_basic' : holdsKey ? 'private_key_jwt' : 'none');
}

/**
 * Encodes a client_id or secret for HTTP Basic (RFC 6749 2.3.1): every character but
 * the unreserved `A-Z a-z 0-9 - . _ ~` percent-encoded, so `umbrella-client` stays
 * `umbrella-client` for providers that do not decode.
 */
export function encodeBasicCredential(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function clientSecretBasic(clientId: string, secret: string): oidc.ClientAuth {
  const value = `Basic ${Buffer.from(`${encodeBasicCredential(clientId)}:${encodeBasicCredential(secret)}`).toString('base64')}`;
  return (_as, _client, _body, headers) => {
    headers.set('authorization', value);
  };
}

const KEYCLOAK_AUTH = /^(.*\/realms\/[^/]+)\/protocol\/openid-connect\/auth\/?$/;

/**
 * The issuer of a provider: `issuer` when saved, else derived from a Keycloak
 * `authorization_endpoint`; `undefined` when neither gives one. Pure.
 */
export function deriveIssuer(cfg: Pick<ProviderConfiguration, 'issuer' | 'authorization_endpoint'>): string | undefined {
  if (cfg.issuer) return cfg.issuer;
  if (!cfg.authorization_endpoint) return undefined;
  let url: URL;
  try {
    url = new URL(cfg.authorization_endpoint);
  } catch {
    return undefined;
  }
  const match = KEYCLOAK_AUTH.exec(url.pathname);
  if (!match || url.search || url.hash) return undefined;
  return `${url.origin}${match[1]}`;
}

interface Entry {
  fingerprint: string;
  client?: ProviderClient;
  keys?: ProviderKeys;
  configuredAt: number;
  pending?: Promise<ProviderClient>;
  failures: number;
  retryAt: number;
  error?: GatewayError;
  /** External tenant of the provider, for metrics and traces. */
  tenant?: string;
}

/** Metadata endpoints and the call each one is. */
const CALLS: ReadonlyArray<[keyof oidc.ServerMetadata, ProviderCall]> = [
  ['token_endpoint', 'token'],
  ['userinfo_endpoint', 'userinfo'],
  ['jwks_uri', 'jwks'],
  ['revocation_endpoint', 'revocation'],
];

/** A fetch that reports each request to `hook`: discovery until the endpoints are known, then the call its URL is. */
function instrumentedFetch(impl: typeof fetch, hook: ProviderFetchHook, entry: Entry, calls: Map<string, ProviderCall>): typeof fetch {
  return ((url: string | URL, init: RequestInit = {}) => {
    const href = String(url);
    const q = href.indexOf('?');
    const call = calls.size === 0 ? 'discovery' : (calls.get(q < 0 ? href : href.slice(0, q)) ?? 'other');
    return hook(entry.tenant, call, href, init, (sent) => impl(url, sent));
  }) as typeof fetch;
}

function fingerprint(provider: Provider): string {
  return createHash('sha256')
    .update(JSON.stringify([provider.company, provider.provider, provider.updatedAt ?? null, provider.configuration]))
    .digest('base64url');
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const parts = [err.message];
  let cause: unknown = err.cause;
  for (let depth = 0; cause instanceof Error && depth < 3; depth++) {
    const code = (cause as { code?: unknown }).code;
    parts.push(typeof code === 'string' ? `${cause.message} (${code})` : cause.message);
    cause = cause.cause;
  }
  return parts.join(': ');
}

function unavailable(detail: string, cause?: unknown): GatewayError {
  return new GatewayError(ErrorCodes.PROVIDER_UNAVAILABLE, 503, "the tenant's identity provider is unavailable", {
    detail,
    cause,
  });
}

/** The saved configuration cannot work whatever the provider does: an operator must fix it. */
function misconfigured(detail: string, cause?: unknown): GatewayError {
  return new GatewayError(ErrorCodes.PROVIDER_MISCONFIGURED, 502, "the organisation's sign-in is misconfigured", { detail, cause });
}

/** Per-provider OpenID Connect clients, discovered lazily and cached. */
export class ClientRegistry {
  readonly #entries = new Map<string, Entry>();
  readonly #timeoutMs: number;
  readonly #retryMaxMs: number;
  readonly #refreshMs: number;
  readonly #now: () => number;
  readonly #log: { warn(obj: object, msg: string): void } | undefined;
  readonly #fetch: typeof fetch;
  readonly #closeFetch: () => Promise<void>;
  readonly #insecure: boolean;
  readonly #assertionKey: ClientAssertionKey | undefined;
  readonly #jwksCooldownMs: number | undefined;
  readonly #instrument: ProviderFetchHook | undefined;

  constructor(opts: ClientRegistryOptions) {
    this.#timeoutMs = Math.max(1, Math.round(opts.httpTimeoutMs));
    this.#retryMaxMs = Math.max(1, opts.retryMaxSeconds) * 1000;
    this.#refreshMs = (opts.refreshSeconds ?? 3600) * 1000;
    this.#now = opts.now ?? Date.now;
    this.#log = opts.log;
    this.#insecure = opts.insecureAllowPrivateProviders === true;
    this.#assertionKey = opts.clientAssertionKey;
    this.#jwksCooldownMs = opts.jwksRefetchCooldownMs;
    this.#instrument = opts.instrument;
    const pf = createProviderFetch({ timeoutMs: this.#timeoutMs, insecureAllowPrivate: this.#insecure, ...(opts.fetch ? { fetch: opts.fetch } : {}) });
    this.#fetch = pf.fetch;
    this.#closeFetch = () => pf.close();
  }

  /** Whether http and non-public provider addresses are allowed. */
  get insecureAllowPrivateProviders(): boolean {
    return this.#insecure;
  }

  /** Whether the gateway holds a key for `private_key_jwt`. */
  get holdsClientAssertionKey(): boolean {
    return this.#assertionKey !== undefined;
  }

  /**
   * The openid-client configuration of a provider, discovered on first use.
   * @throws GatewayError PROVIDER_UNAVAILABLE (503) or PROVIDER_MISCONFIGURED (502).
   */
  get(provider: Provider, tenant?: string): Promise<oidc.Configuration> {
    return this.client(provider, tenant).then((c) => c.config);
  }

  /**
   * The client of a provider (configuration, keys, client authentication), discovered on first use.
   * @throws GatewayError PROVIDER_UNAVAILABLE (503) when the provider is unreachable
   *   or backing off after a failure; PROVIDER_MISCONFIGURED (502) when the saved
   *   configuration cannot work.
   */
  client(provider: Provider, tenant?: string): Promise<ProviderClient> {
    const clientId = provider.configuration.client_id;
    const fp = fingerprint(provider);
    let entry = this.#entries.get(clientId);
    if (!entry || entry.fingerprint !== fp) {
      entry = { fingerprint: fp, configuredAt: 0, failures: 0, retryAt: 0 };
      this.#entries.set(clientId, entry);
    }
    if (tenant !== undefined) entry.tenant = tenant;
    const now = this.#now();
    if (entry.client) {
      if (now - entry.configuredAt >= this.#refreshMs && !entry.pending && now >= entry.retryAt) {
        this.#start(entry, provider).catch(() => {
          // Logged in #start; the current client keeps serving.
        });
      }
      return Promise.resolve(entry.client);
    }
    if (entry.pending) return entry.pending;
    if (entry.error && now < entry.retryAt) return Promise.reject(entry.error);
    return this.#start(entry, provider);
  }

  /** Forgets the client of one client_id, or of all when none is given. */
  invalidate(clientId?: string): void {
    if (clientId === undefined) this.#entries.clear();
    else this.#entries.delete(clientId);
  }

  /** Releases the connections to identity providers. */
  close(): Promise<void> {
    return this.#closeFetch();
  }

  #start(entry: Entry, provider: Provider): Promise<ProviderClient> {
    const cfg = provider.configuration;
    const pending = this.#discover(provider, entry).then(
      (client) => {
        entry.client = client;
        entry.keys = client.keys;
        entry.configuredAt = this.#now();
        entry.failures = 0;
        entry.retryAt = 0;
        delete entry.error;
        delete entry.pending;
        return client;
      },
      (err: unknown) => {
        const error = err instanceof GatewayError ? err : unavailable(describe(err), err);
        entry.failures += 1;
        const delayMs = Math.min(1000 * 2 ** (entry.failures - 1), this.#retryMaxMs);
        entry.retryAt = this.#now() + delayMs;
        entry.error = error;
        delete entry.pending;
        this.#log?.warn(
          {
            code: error.code,
            company: provider.company,
            providerId: cfg.id,
            clientId: cfg.client_id,
            failures: entry.failures,
            retryInSeconds: delayMs / 1000,
            stale: entry.client !== undefined,
            detail: error.detail,
          },
          'identity provider configuration failed',
        );
        throw error;
      },
    );
    entry.pending = pending;
    return pending;
  }

  async #discover(provider: Provider, entry: Entry): Promise<ProviderClient> {
    const cfg = provider.configuration;
    const who = `provider ${JSON.stringify(cfg.id)} (client_id ${JSON.stringify(cfg.client_id)})`;
    const policy = { insecureAllowPrivate: this.#insecure };
    const issuer = deriveIssuer(cfg);
    if (!issuer) {
      throw misconfigured(
        `${who} has no issuer: set configuration.issuer, or a Keycloak authorization_endpoint (.../realms/<realm>/protocol/openid-connect/auth)`,
      );
    }
    const issuerProblem = checkProviderUrl(issuer, policy);
    if (issuerProblem) throw misconfigured(`${who}: issuer ${issuer} ${issuerProblem}`);
    const overrides: Partial<Record<(typeof ENDPOINTS)[number], string>> = {};
    for (const key of ENDPOINTS) {
      const value = cfg[key];
      if (!value) continue;
      const problem = checkProviderUrl(value, policy);
      if (problem) throw misconfigured(`${who}: ${key} ${value} ${problem}`);
      overrides[key] = value;
    }

    const issuerUrl = new URL(issuer);
    const timeout = Math.ceil(this.#timeoutMs / 1000);
    const calls = new Map<string, ProviderCall>();
    const providerFetch = this.#instrument ? instrumentedFetch(this.#fetch, this.#instrument, entry, calls) : this.#fetch;
    let discovered: oidc.Configuration;
    try {
      discovered = await oidc.discovery(issuerUrl, cfg.client_id, undefined, oidc.None(), {
        [oidc.customFetch]: oidcFetch(providerFetch),
        timeout,
        execute: issuerUrl.protocol === 'http:' ? [oidc.allowInsecureRequests] : [],
      });
    } catch (err) {
      throw unavailable(`discovery at ${issuer} for ${who} failed: ${describe(err)}`, err);
    }

    // eslint-disable-next-line @typescript-eslint/unbound-method -- the helper is left out of the copy, never called
    const { supportsPKCE: _helper, ...found } = discovered.serverMetadata();
    const metadata: { -readonly [K in keyof oidc.ServerMetadata]: oidc.ServerMetadata[K] } = { ...found };
    let insecure = issuerUrl.protocol === 'http:';
    for (const key of ENDPOINTS) {
      if (overrides[key] !== undefined) {
        metadata[key] = overrides[key];
      } else if (metadata[key] !== undefined) {
        const value = metadata[key];
        let problem = typeof value === 'string' ? checkProviderUrl(value, policy) : 'is not a string';
        if (!problem && typeof value === 'string' && new URL(value).origin !== issuerUrl.origin) {
          problem = `is not on the issuer's origin ${issuerUrl.origin} (list it in the provider configuration to allow it)`;
        }
        if (problem) {
          const line = `${who}: discovered ${key} ${String(value)} ${problem}`;
          if (REQUIRED_ENDPOINTS.includes(key)) throw misconfigured(line);
          this.#log?.warn({ company: provider.company, providerId: cfg.id, clientId: cfg.client_id, endpoint: key, detail: line }, 'discovered endpoint refused');
          delete metadata[key];
          continue;
        }
      }
      const url = metadata[key];
      if (typeof url === 'string' && url.startsWith('http:')) insecure = true;
    }
    const missing = REQUIRED_ENDPOINTS.filter((key) => !metadata[key]);
    if (missing.length) throw misconfigured(`${who}: no ${missing.join(', ')} in the discovery document or the saved configuration`);

    const authMethod = chooseAuthMethod(cfg, metadata.token_endpoint_auth_methods_supported, this.#assertionKey !== undefined);
    const clientMetadata: Partial<oidc.ClientMetadata> = {};
    if (cfg.client_secret && authMethod !== 'private_key_jwt' && authMethod !== 'none') clientMetadata.client_secret = cfg.client_secret;
    if (cfg.id_token_signed_response_alg) clientMetadata.id_token_signed_response_alg = cfg.id_token_signed_response_alg;
    const config = new oidc.Configuration(metadata, cfg.client_id, clientMetadata, this.#clientAuth(who, cfg, authMethod));
    for (const [key, call] of CALLS) {
      const url = metadata[key];
      if (typeof url === 'string') calls.set(url, call);
    }
    config.timeout = timeout;
    config[oidc.customFetch] = oidcFetch(providerFetch);
    if (insecure) oidc.allowInsecureRequests(config);

    const jwksUri = metadata.jwks_uri as string;
    const keys =
      entry.keys && entry.keys.jwksUri === jwksUri
        ? entry.keys
        : new ProviderKeys({ jwksUri, fetch: providerFetch, now: this.#now, ...(this.#jwksCooldownMs !== undefined ? { refetchCooldownMs: this.#jwksCooldownMs } : {}) });
    const idTokenAlgorithms = cfg.id_token_signed_response_alg ? [cfg.id_token_signed_response_alg] : ASYMMETRIC_ALGORITHMS;
    return { config, provider: cfg, issuer: metadata.issuer, keys, authMethod, idTokenAlgorithms };
  }

  #clientAuth(who: string, cfg: ProviderConfiguration, method: TokenEndpointAuthMethod): oidc.ClientAuth {
    switch (method) {
      case 'client_secret_basic':
      case 'client_secret_post':
        if (!cfg.client_secret) throw misconfigured(`${who}: token_endpoint_auth_method ${method} needs a client_secret`);
        return method === 'client_secret_post' ? oidc.ClientSecretPost(cfg.client_secret) : clientSecretBasic(cfg.client_id, cfg.client_secret);
      case 'private_key_jwt':
        if (!this.#assertionKey) throw misconfigured(`${who}: token_endpoint_auth_method private_key_jwt needs oidc.clientAssertionKeyFile`);
        return oidc.PrivateKeyJwt({ key: this.#assertionKey.key, kid: this.#assertionKey.kid });
      default:
        return oidc.None();
    }
  }
}
