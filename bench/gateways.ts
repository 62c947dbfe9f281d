/**
 * Gateways under test: their configuration, their process, the tenant they serve and
 * a real login through them.
 *
 * Every gateway serves `ml.example.com` (public.url `http://ml.example.com`), with the
 * tenant `acme` (vanity host `acme.ml.example.com`, email domain `acme.com`). In
 * authenticate mode acme's provider is a local oidc-provider.
 */
import { join } from 'node:path';
import { SqliteTenantStore } from '../src/directory/sqlite-store.js';
import { ADMIN_KEY, ADMIN_SECRET, BASE_DOMAIN, adminCall, publicRequest } from '../test/helpers/gateway.js';
import { loginAtIdp } from '../test/helpers/idp.js';
import { ACME_SECRET, Browser, SESSION_SECRET } from '../test/helpers/two-tenants.js';
import { spawnChild, type ChildHandle } from './child-process.js';
import type { GatewayJob } from './gateway-child.js';
import type { LogLevel, Target } from './servers.js';

export { BASE_DOMAIN };
export const TENANT = 'acme';
export const TENANT_HOST = `${TENANT}.${BASE_DOMAIN}`;
const PUBLIC_URL = `http://${BASE_DOMAIN}`;
const CLIENT_ID = 'acme-web';

/** The identity provider job for acme: one client, one user in an admin group. */
export const ACME_IDP = {
  clients: [
    {
      client_id: CLIENT_ID,
      client_secret: ACME_SECRET,
      redirect_uris: [`http://${TENANT_HOST}/callback_${CLIENT_ID}`],
      post_logout_redirect_uris: [`http://${TENANT_HOST}/login/${TENANT}`],
    },
  ],
  users: {
    alice: { email: 'alice@acme.com', email_verified: true, name: 'Alice Admin', tenant_key: TENANT, ad_groups_trusted: ['ml-admins'] },
  },
};

/** A per-minute rate limit that is never reached. */
export const UNLIMITED = 1_000_000_000;

/** Options of {@link gatewayConfig}. */
export interface GatewayConfigOptions {
  mode: 'route' | 'authenticate';
  upstream: string;
  /** Folder of the SQLite store file. */
  dir: string;
  logLevel: LogLevel;
  /** Lift every per-client rate limit (discovery, login, callback): all load comes from 127.0.0.1. */
  unlimited?: boolean;
  cacheMax?: number;
  workers?: number;
  publicPort?: number;
  adminPort?: number;
  /** OpenTelemetry tracing: OTLP/HTTP endpoint and sampling ratio. */
  tracing?: { endpoint: string; sampleRatio: number };
}

/** A gateway configuration object (what a YAML file would hold). */
export function gatewayConfig(o: GatewayConfigOptions): Record<string, unknown> {
  return {
    mode: o.mode,
    ...(o.workers !== undefined ? { workers: o.workers } : {}),
    public: { host: '127.0.0.1', port: o.publicPort ?? 0, url: PUBLIC_URL },
    admin: { host: '127.0.0.1', port: o.adminPort ?? 0, credentials: [{ key: ADMIN_KEY, secret: ADMIN_SECRET }] },
    // The load stands for many users, yet all of it comes from 127.0.0.1 with one
    // session cookie: the per-client and per-session upstream caps are lifted.
    upstreams: { webapp: o.upstream, maxConcurrentPerClient: UNLIMITED, maxConcurrentPerSession: UNLIMITED },
    tenancy: { baseDomain: BASE_DOMAIN },
    store: { url: `sqlite:${join(o.dir, 'tenant-gate.db')}` },
    log: { level: o.logLevel },
    // The bench's identity provider runs on loopback over http.
    oidc: { insecureAllowPrivateProviders: true },
    ...(o.mode === 'authenticate' ? { session: { secret: SESSION_SECRET } } : {}),
    ...(o.unlimited ? { rateLimit: { discoveryPerMinute: UNLIMITED, loginPerMinute: UNLIMITED, callbackPerMinute: UNLIMITED } } : {}),
    ...(o.cacheMax !== undefined ? { cache: { max: o.cacheMax } } : {}),
    ...(o.tracing ? { tracing: { enabled: true, endpoint: o.tracing.endpoint, sampleRatio: o.tracing.sampleRatio } } : {}),
  };
}

/** A gateway process: its public listener as a target, and its admin URL. */
export interface GatewayTarget extends Target {
  adminUrl: string;
  handle: ChildHandle;
}

const GATEWAY_CHILD = new URL('./gateway-child.ts', import.meta.url);

/** Starts a gateway in its own process (`nodeArgs`, e.g. `--cpu-prof`, go to node). */
export async function launchGateway(name: string, job: GatewayJob, nodeArgs: string[] = []): Promise<GatewayTarget> {
  const handle = await spawnChild(name, GATEWAY_CHILD, job as unknown as Record<string, unknown>, { nodeArgs });
  const port = Number(handle.info.port);
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    port,
    adminUrl: `http://127.0.0.1:${String(handle.info.adminPort)}`,
    pids: () => [handle.pid],
    stop: () => handle.stop(),
    handle,
  };
}

/** The acme company as the admin API receives it. */
const ACME_COMPANY = {
  company: 'c-acme',
  sso: {
    tenant: TENANT,
    group_mapping: { 'ml-users': 'Users', 'ml-admins': ['Admins', 'Users'] },
    admin_groups: ['ml-admins'],
    domains: ['acme.com'],
  },
};

/** Configures acme through the admin API; with an issuer, also its identity provider. */
export async function addAcme(adminUrl: string, issuer?: string): Promise<void> {
  const company = await adminCall(adminUrl, 'system.update_company_sso_config', ACME_COMPANY);
  if (company.status !== 200) throw new Error(`admin API refused the tenant: ${company.meta.result_msg}`);
  if (!issuer) return;
  const provider = await adminCall(adminUrl, 'sso.save_provider_configuration', {
    provider: 'keycloak',
    company: 'c-acme',
    configuration: {
      id: 'c-acme',
      display_name: 'Acme SSO',
      client_id: CLIENT_ID,
      client_secret: ACME_SECRET,
      issuer,
      claim_tenant: 'tenant_key',
      claim_name: 'name',
      group_enabled: true,
      claim_groups: 'ad_groups_trusted',
      group_prohibit_user_login_if_not_in_group: true,
    },
  });
  if (provider.status !== 200) throw new Error(`admin API refused the provider: ${provider.meta.result_msg}`);
}

/** Writes acme straight into a SQLite store file (for gateways started without the admin API). */
export async function seedAcme(dir: string): Promise<void> {
  const store = new SqliteTenantStore({ path: join(dir, 'tenant-gate.db') });
  await store.init();
  try {
    await store.putCompany({ company: ACME_COMPANY.company, sso: { ...ACME_COMPANY.sso, groups: [], hosts: [] } });
  } finally {
    await store.close();
  }
}

/**
 * One complete login of `account` through the gateway and the identity provider, as
 * a browser does it.
 * @returns the Cookie header the browser then sends (the gateway's session cookie).
 */
export async function loginThroughGateway(publicPort: number, account = 'alice'): Promise<string> {
  const browser = new Browser();
  const req = async (path: string, host: string) => {
    const cookie = browser.header();
    const r = await publicRequest(publicPort, { path, host, headers: cookie ? { cookie } : {} });
    browser.take(r.headers);
    return r;
  };
  const start = await req(`/login/${TENANT}`, TENANT_HOST);
  if (start.status !== 302 || !start.headers.location) throw new Error(`login did not start: ${start.status} ${start.body.slice(0, 200)}`);
  const { callbackUrl } = await loginAtIdp(start.headers.location, account);
  const u = new URL(callbackUrl);
  const callback = await req(u.pathname + u.search, u.host);
  const cookie = browser.header();
  if (callback.status !== 302 || !cookie) throw new Error(`login did not complete: ${callback.status} ${callback.body.slice(0, 200)}`);
  return cookie;
}
