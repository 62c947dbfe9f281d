/**
 * One OpenID Connect client configuration per saved provider, discovered once and
 * shared.
 *
 * Rules:
 * - The issuer is `configuration.issuer`, else derived from a Keycloak
 *   `authorization_endpoint` (`.../realms/R/protocol/openid-connect/auth` -> `.../realms/R`);
 *   without one the provider cannot be used (ID tokens could not be checked).
 * - Every identity provider URL is https, except on loopback hosts (127.0.0.0/8,
 *   ::1, localhost), where http is accepted; nothing is requested from a URL that
 *   breaks this rule.
 * - Endpoints saved with the provider win over discovered ones.
 * - A configuration is cached per client_id until the provider record changes
 *   (`updatedAt` or any configuration field) or `invalidate` is called; it is
 *   rediscovered in the background after `refreshSeconds`, the old one serving
 *   meanwhile and for as long as the provider fails.
 * - A failing provider is retried with exponential backoff (1 s, 2 s, 4 s, ... up to
 *   `retryMaxSeconds`); in between, `get` fails at once without a request. Concurrent
 *   calls for one provider share one discovery. Every request has `httpTimeoutMs`.
 * - Failures surface as `GatewayError(PROVIDER_UNAVAILABLE, 503)`; the cause is only
 *   in `detail`. The client secret never appears in errors or logs.
 */
import { createHash } from 'node:crypto';
import * as oidc from 'openid-client';
import type { Provider, ProviderConfiguration } from '../directory/types.js';
import { ErrorCodes, GatewayError } from '../errors.js';
import type { ProviderCall } from '../observability/metrics.js';
import type { ProviderFetchHook } from '../observability/provider-calls.js';

/** Options of {@link ClientRegistry}. */
export interface ClientRegistryOptions {
  /** Timeout of each request to an identity provider, in milliseconds. */
  httpTimeoutMs: number;
  /** Longest wait between discovery retries of a failing provider, in seconds. */
  retryMaxSeconds: number;
  /** Age after which a working configuration is rediscovered in the background, in seconds (default 3600). */
  refreshSeconds?: number;
  /** Clock in milliseconds since the epoch (default `Date.now`). */
  now?: () => number;
  log?: { warn(obj: object, msg: string): void };
  /** Fetch implementation for every request to identity providers (default global `fetch`). */
  fetch?: typeof fetch;
  /** Observes every request to identity providers (metrics, traces). */
  instrument?: ProviderFetchHook;
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
const REQUIRED_ENDPOINTS = ['authorization_endpoint', 'token_endpoint', 'jwks_uri'] as const;

import { checkProviderUrl } from '../tenancy/provider-url.js';

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
  config?: oidc.Configuration;
  configuredAt: number;
  pending?: Promise<oidc.Configuration>;
  failures: number;
  retryAt: number;
  error?: GatewayError;
  /** External tenant of the provider, for metrics and traces. */
  tenant?: string;
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

/** A fetch that gives up after `ms`, whatever signal the caller passed. */
function timedFetch(impl: typeof fetch, ms: number): oidc.CustomFetch {
  return (url, init) => {
    const timeout = AbortSignal.timeout(ms);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    return impl(url, { ...init, signal } as RequestInit);
  };
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

/** Per-provider openid-client configurations, discovered lazily and cached. */
export class ClientRegistry {
  readonly #entries = new Map<string, Entry>();
  readonly #timeoutMs: number;
  readonly #retryMaxMs: number;
  readonly #refreshMs: number;
  readonly #now: () => number;
  readonly #log: { warn(obj: object, msg: string): void } | undefined;
  readonly #fetch: typeof fetch;
  readonly #instrument: ProviderFetchHook | undefined;

  constructor(opts: ClientRegistryOptions) {
    this.#timeoutMs = Math.max(1, Math.round(opts.httpTimeoutMs));
    this.#retryMaxMs = Math.max(1, opts.retryMaxSeconds) * 1000;
    this.#refreshMs = (opts.refreshSeconds ?? 3600) * 1000;
    this.#now = opts.now ?? Date.now;
    this.#log = opts.log;
    this.#fetch = opts.fetch ?? globalThis.fetch;
    this.#instrument = opts.instrument;
  }

  /**
   * The client configuration of a provider, discovered on first use.
   * @throws GatewayError PROVIDER_UNAVAILABLE (503) when the provider is
   *   misconfigured, unreachable, or backing off after a failure.
   */
  get(provider: Provider, tenant?: string): Promise<oidc.Configuration> {
    const clientId = provider.configuration.client_id;
    const fp = fingerprint(provider);
    let entry = this.#entries.get(clientId);
    if (!entry || entry.fingerprint !== fp) {
      entry = { fingerprint: fp, configuredAt: 0, failures: 0, retryAt: 0 };
      this.#entries.set(clientId, entry);
    }
    if (tenant !== undefined) entry.tenant = tenant;
    const now = this.#now();
    if (entry.config) {
      if (now - entry.configuredAt >= this.#refreshMs && !entry.pending && now >= entry.retryAt) {
        this.#start(entry, provider).catch(() => {
          // Logged in #start; the current configuration keeps serving.
        });
      }
      return Promise.resolve(entry.config);
    }
    if (entry.pending) return entry.pending;
    if (entry.error && now < entry.retryAt) return Promise.reject(entry.error);
    return this.#start(entry, provider);
  }

  /** Forgets the configuration of one client_id, or of all when none is given. */
  invalidate(clientId?: string): void {
    if (clientId === undefined) this.#entries.clear();
    else this.#entries.delete(clientId);
  }

  #start(entry: Entry, provider: Provider): Promise<oidc.Configuration> {
    const cfg = provider.configuration;
    const pending = this.#discover(cfg, entry).then(
      (config) => {
        entry.config = config;
        entry.configuredAt = this.#now();
        entry.failures = 0;
        entry.retryAt = 0;
        delete entry.error;
        delete entry.pending;
        return config;
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
            stale: entry.config !== undefined,
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

  async #discover(cfg: ProviderConfiguration, entry: Entry): Promise<oidc.Configuration> {
    const who = `provider ${JSON.stringify(cfg.id)} (client_id ${JSON.stringify(cfg.client_id)})`;
    const issuer = deriveIssuer(cfg);
    if (!issuer) {
      throw unavailable(
        `${who} has no issuer: set configuration.issuer, or a Keycloak authorization_endpoint (.../realms/<realm>/protocol/openid-connect/auth)`,
      );
    }
    const issuerProblem = checkProviderUrl(issuer);
    if (issuerProblem) throw unavailable(`${who}: issuer ${issuer} ${issuerProblem}`);
    const overrides: Partial<Record<(typeof ENDPOINTS)[number], string>> = {};
    for (const key of ENDPOINTS) {
      const value = cfg[key];
      if (!value) continue;
      const problem = checkProviderUrl(value);
      if (problem) throw unavailable(`${who}: ${key} ${value} ${problem}`);
      overrides[key] = value;
    }

    const issuerUrl = new URL(issuer);
    const calls = new Map<string, ProviderCall>();
    const customFetch = timedFetch(this.#instrument ? instrumentedFetch(this.#fetch, this.#instrument, entry, calls) : this.#fetch, this.#timeoutMs);
    const timeout = Math.ceil(this.#timeoutMs / 1000);
    let discovered: oidc.Configuration;
    try {
      discovered = await oidc.discovery(issuerUrl, cfg.client_id, undefined, oidc.None(), {
        [oidc.customFetch]: customFetch,
        timeout,
        execute: issuerUrl.protocol === 'http:' ? [oidc.allowInsecureRequests] : [],
      });
    } catch (err) {
      throw unavailable(`discovery at ${issuer} for ${who} failed: ${describe(err)}`, err);
    }

    const { supportsPKCE: _helper, ...found } = discovered.serverMetadata();
    const metadata: oidc.ServerMetadata = { ...found, ...overrides };
    let insecure = false;
    for (const key of ENDPOINTS) {
      const value = metadata[key];
      if (value === undefined) continue;
      const problem = typeof value === 'string' ? checkProviderUrl(value) : 'is not a string';
      if (problem) throw unavailable(`${who}: discovered ${key} ${String(value)} ${problem}`);
      if ((value as string).startsWith('http:')) insecure = true;
    }
    const missing = REQUIRED_ENDPOINTS.filter((key) => !metadata[key]);
    if (missing.length) throw unavailable(`${who}: no ${missing.join(', ')} in the discovery document or the saved configuration`);

    const config = new oidc.Configuration(
      metadata,
      cfg.client_id,
      cfg.client_secret ? { client_secret: cfg.client_secret } : {},
      this.#clientAuth(cfg, metadata),
    );
    for (const [key, call] of CALLS) if (typeof metadata[key] === 'string') calls.set(metadata[key] as string, call);
    config.timeout = timeout;
    config[oidc.customFetch] = customFetch;
    if (insecure) oidc.allowInsecureRequests(config);
    return config;
  }

  /** client_secret_basic unless the provider only announces client_secret_post. */
  #clientAuth(cfg: ProviderConfiguration, metadata: oidc.ServerMetadata): oidc.ClientAuth {
    if (!cfg.client_secret) return oidc.None();
    const supported = metadata.token_endpoint_auth_methods_supported;
    if (supported && !supported.includes('client_secret_basic') && supported.includes('client_secret_post')) {
      return oidc.ClientSecretPost(cfg.client_secret);
    }
    return oidc.ClientSecretBasic(cfg.client_secret);
  }
}
