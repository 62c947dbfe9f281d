/**
 * `tenant-gate tenants describe <tenant>`: what to register for a tenant in its
 * identity provider, and whether the provider answers as the directory says.
 *
 * Rules: the check talks to providers only through the gateway's own rules (pinned
 * endpoints, `oidc.insecureAllowPrivateProviders`); it tries the client credentials
 * with a token request for a made-up code (`invalid_grant` means the provider accepted
 * the client, `invalid_client` that it did not) and prints the client authentication
 * in use; secrets are never printed.
 */
import { randomBytes } from 'node:crypto';
import * as oidc from 'openid-client';
import type { Config } from '../config/schema.js';
import type { TenantStore } from '../directory/types.js';
import { loadClientAssertionKey, type LoadedClientAssertionKey } from '../oidc/client-assertion-key.js';
import { ClientRegistry, deriveIssuer } from '../oidc/client-registry.js';
import { ASYMMETRIC_ALGORITHMS } from '../oidc/jwks.js';
import { createProviderFetch, oidcFetch } from '../oidc/provider-fetch.js';

const ENDPOINTS = ['authorization_endpoint', 'token_endpoint', 'end_session_endpoint', 'revocation_endpoint', 'userinfo_endpoint', 'jwks_uri'] as const;

/** The origins a tenant is served on: its vanity host, custom hosts, and the base host. */
export function tenantOrigins(config: Config, tenant: string, hosts: string[]): string[] {
  const url = new URL(config.public.url);
  const port = url.port ? `:${url.port}` : '';
  const scheme = url.protocol;
  const vanity = `${scheme}//${tenant.toLowerCase()}.${config.tenancy.baseDomain.toLowerCase().replace(/\.$/, '')}${port}`;
  return [...new Set([vanity, ...hosts.map((h) => `${scheme}//${h}${port}`), url.origin])];
}

/** How the provider's email claim becomes X-Auth-Request-Email / -User (trust_unverified_email). */
function emailPolicy(claim: string, trusted: boolean): string {
  return trusted
    ? `  Email: ${claim} is trusted without email_verified (trust_unverified_email: true); only an explicit email_verified: false drops it.\n` +
        '    Keep this only for a provider where users cannot change their own email.\n'
    : `  Email: ${claim} is forwarded only when the ID token says email_verified: true; otherwise the user is known by sub.\n` +
        '    A provider that never sends email_verified (Entra ID and others) needs trust_unverified_email: true for emails to count.\n';
}

/** The back- and front-channel logout URIs of a client, one per origin the tenant is served on. */
export function logoutUris(origins: readonly string[], clientId: string): { backchannel: string[]; frontchannel: string[] } {
  const id = encodeURIComponent(clientId);
  return {
    backchannel: origins.map((o) => `${o}/backchannel-logout_${id}`),
    frontchannel: origins.map((o) => `${o}/frontchannel-logout_${id}`),
  };
}

/** Prints the registration values and the provider checks; resolves to the exit code. */
export async function describeTenant(config: Config, store: TenantStore, tenantId: string, out: (s: string) => void, opts: { check?: boolean; timeoutMs?: number } = {}): Promise<number> {
  const record = await store.findTenant(tenantId);
  if (!record) {
    out(`no tenant "${tenantId}" in the directory\n`);
    return 1;
  }
  const { company, providers } = record;
  const tenant = company.sso.tenant;
  const origins = tenantOrigins(config, tenant, company.sso.hosts);
  out(`tenant ${tenant} (company ${company.company})\n`);
  out(`  hosts: ${origins.join(', ')}\n`);
  if (company.sso.domains.length) out(`  email domains: ${company.sso.domains.join(', ')}\n`);
  out(`  identity assertion (X-Auth-Request-Jwt) audience: ${company.sso.assertion_audience ?? 'the origin the user is on (one of the hosts above)'}\n`);
  if (providers.length === 0) {
    out('  no identity provider is configured: save one with sso.save_provider_configuration\n');
    return 1;
  }
  let failures = 0;
  const timeoutMs = opts.timeoutMs ?? config.oidc.httpTimeoutMs;
  const insecure = config.oidc.insecureAllowPrivateProviders;
  const assertionKey: LoadedClientAssertionKey | undefined = config.oidc.clientAssertionKeyFile ? await loadClientAssertionKey(config.oidc.clientAssertionKeyFile) : undefined;
  const registry = new ClientRegistry({
    httpTimeoutMs: timeoutMs,
    retryMaxSeconds: 1,
    insecureAllowPrivateProviders: insecure,
    ...(assertionKey ? { clientAssertionKey: assertionKey } : {}),
  });
  const guarded = createProviderFetch({ timeoutMs, insecureAllowPrivate: insecure });
  try {
  for (const p of providers) {
    const cfg = p.configuration;
    out(`\nprovider ${cfg.id} (${p.provider}${cfg.display_name ? `, "${cfg.display_name}"` : ''}), client_id ${cfg.client_id}\n`);
    out('  Valid redirect URIs:\n');
    for (const o of origins) out(`    ${o}/callback_${encodeURIComponent(cfg.client_id)}\n`);
    out('  Valid post logout redirect URIs:\n');
    for (const o of origins) out(`    ${o}/login\n    ${o}/login/${tenant}\n`);
    if (config.mode === 'authenticate') {
      const logout = logoutUris(origins, cfg.client_id);
      out('  Back-channel logout URI (any one; with "session required" on, so logout tokens carry sid):\n');
      for (const u of logout.backchannel) out(`    ${u}\n`);
      if (cfg.frontchannel_logout) {
        out('  Front-channel logout URI (any one; frontchannel_logout is on):\n');
        for (const u of logout.frontchannel) out(`    ${u}\n`);
      }
    }
    out(`  Claims the ID token must carry: ${cfg.claim_tenant ?? 'tenant_key'} (= "${tenant}")`);
    out(cfg.group_enabled ? `, ${cfg.claim_groups ?? 'groups'} (list of groups)\n` : '\n');
    out(emailPolicy(cfg.claim_email ?? 'email', cfg.trust_unverified_email === true));
    if (opts.check === false) continue;
    const issuer = deriveIssuer(cfg);
    if (!issuer) {
      out('  !! no issuer: set configuration.issuer or a Keycloak authorization_endpoint\n');
      failures++;
      continue;
    }
    try {
      const url = new URL(issuer);
      const discovered = await oidc.discovery(url, cfg.client_id, undefined, undefined, {
        timeout: Math.ceil(timeoutMs / 1000),
        [oidc.customFetch]: oidcFetch(guarded.fetch),
        ...(url.protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : {}),
      });
      const meta = discovered.serverMetadata();
      out(`  discovery: ok (${issuer}/.well-known/openid-configuration)\n`);
      for (const f of ENDPOINTS) {
        const stored = cfg[f];
        const found = meta[f];
        if (stored !== undefined && found !== undefined && stored !== found) {
          out(`  !! ${f}: stored ${stored} but the provider announces ${found}\n`);
          failures++;
        } else if (stored === undefined && found === undefined && (f === 'authorization_endpoint' || f === 'token_endpoint')) {
          out(`  !! ${f}: neither stored nor announced\n`);
          failures++;
        }
      }
      if (cfg.logout_from_provider && !cfg.end_session_endpoint && !meta.end_session_endpoint) {
        out('  !! logout_from_provider is set but the provider has no end_session_endpoint\n');
        failures++;
      }
      const algs = meta.id_token_signing_alg_values_supported ?? ['RS256'];
      const usable = algs.filter((a) => (ASYMMETRIC_ALGORITHMS as readonly string[]).includes(a) || (a === 'HS256' && cfg.id_token_signed_response_alg === 'HS256'));
      out(`  ID token algorithms announced: ${algs.join(', ')}\n`);
      if (!usable.length) {
        out('  !! none of them is accepted (RS*, PS*, ES*, EdDSA; HS256 only with id_token_signed_response_alg: HS256)\n');
        failures++;
      }
    } catch (err) {
      out(`  !! discovery failed at ${issuer}: ${describeError(err)}\n`);
      failures++;
      continue;
    }
    failures += await checkCredentials(registry, p, `${origins[0]}/callback_${encodeURIComponent(cfg.client_id)}`, out);
    if (assertionKey) out(`  private_key_jwt public key to register: ${JSON.stringify(assertionKey.publicJwk)}\n`);
  }
  } finally {
    await Promise.all([registry.close(), guarded.close()]);
  }
  out(failures ? `\n${failures} problem(s) found\n` : '\nall checks passed\n');
  return failures ? 1 : 0;
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err.message}${cause}`;
}

/** Tries the client credentials with a made-up code; returns the number of problems (0 or 1). */
async function checkCredentials(registry: ClientRegistry, provider: Parameters<ClientRegistry['client']>[0], redirectUri: string, out: (s: string) => void): Promise<number> {
  let client;
  try {
    client = await registry.client(provider);
  } catch (err) {
    const detail = (err as { detail?: string }).detail ?? describeError(err);
    out(`  !! the provider cannot be used: ${detail}\n`);
    return 1;
  }
  const chosen = provider.configuration.token_endpoint_auth_method ? 'configured' : 'from discovery';
  out(`  client authentication: ${client.authMethod} (${chosen})\n`);
  try {
    await oidc.genericGrantRequest(client.config, 'authorization_code', {
      code: `tenant-gate-check-${randomBytes(8).toString('hex')}`,
      redirect_uri: redirectUri,
      code_verifier: oidc.randomPKCECodeVerifier(),
    });
    out('  !! the token endpoint accepted a made-up code\n');
    return 1;
  } catch (err) {
    const code = err instanceof oidc.ResponseBodyError ? err.error : err instanceof oidc.WWWAuthenticateChallengeError ? (err.cause[0]?.parameters.error ?? `HTTP ${err.status}`) : undefined;
    if (code === 'invalid_grant') {
      out('  client credentials: accepted (the made-up code was refused with invalid_grant)\n');
      return 0;
    }
    if (code === 'invalid_client' || code === 'unauthorized_client') {
      out(`  !! client credentials: refused by the provider (${code}): check client_id, client_secret and token_endpoint_auth_method\n`);
      return 1;
    }
    out(`  !! client credentials: the token endpoint answered ${code ?? describeError(err)}\n`);
    return 1;
  }
}
