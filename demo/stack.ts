/**
 * The demo stack, all on loopback: the gateway in authenticate mode over an embedded
 * SQLite store in a temporary folder, one identity provider per tenant (acme, globex),
 * and a web application that shows the identity it receives.
 *
 * The tenants are set up the way an operator would: through the admin API, with the
 * ClearML payloads (`system.update_company_sso_config`,
 * `sso.save_provider_configuration`) pointing at Keycloak-shaped endpoints.
 *
 * Public URL `http://localhost:<port>`, base domain `localhost`: browsers resolve
 * `acme.localhost` to loopback, so `http://acme.localhost:<port>/` is acme's vanity host.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { buildApp, type Gateway } from '../src/app.js';
import { loadConfig } from '../src/config/load.js';
import { createLogger } from '../src/logger.js';
import { startDemoIdp, type DemoIdp, type DemoUser } from './idp.js';
import { startDemoUpstream } from './upstream.js';

/** Admin API credentials of the demo (loopback only). */
export const DEMO_ADMIN = { key: 'tenant-gate-demo', secret: 'demo-admin-secret' } as const;

/** One identity provider configuration of a demo tenant. */
interface DemoProvider {
  id: string;
  displayName: string;
  clientId: string;
  logoutFromProvider: boolean;
}

/** A demo tenant as the stack set it up. */
export interface DemoTenant {
  /** External tenant ID, e.g. `acme`. */
  id: string;
  /** ClearML company ID. */
  company: string;
  displayName: string;
  /** `http://<id>.localhost:<port>`. */
  vanityOrigin: string;
  domains: string[];
  groupMapping: Record<string, string | string[]>;
  adminGroups: string[];
  providers: DemoProvider[];
  users: DemoUser[];
  /** The tenant's identity provider. */
  issuer: string;
  /** Where a user signs out at that provider (which then sends back-channel logout). */
  endSessionUrl: string;
}

/** Options of {@link startDemoStack}. */
export interface DemoStackOptions {
  /** Public port (default 8080; 0 picks a free one). */
  port?: number;
  /** Admin port (default 8008; 0 picks a free one). */
  adminPort?: number;
  /** Gateway log level (default `warn`); ignored when `logger` is given. */
  logLevel?: string;
  /** Where gateway logs go (default stderr); ignored when `logger` is given. */
  logDestination?: NodeJS.WritableStream;
  logger?: Logger;
}

/** A running demo stack. */
export interface DemoStack {
  /** `http://localhost:<port>`: the base host. */
  publicUrl: string;
  port: number;
  /** `http://127.0.0.1:<adminPort>`. */
  adminUrl: string;
  upstreamUrl: string;
  tenants: DemoTenant[];
  /** Temporary folder of the SQLite store; removed by `close`. */
  dir: string;
  gateway: Gateway;
  /** Stops everything and removes the temporary folder; safe to call twice. */
  close(): Promise<void>;
}

interface TenantPlan {
  id: string;
  company: string;
  displayName: string;
  accent: string;
  domains: string[];
  groupMapping: Record<string, string | string[]>;
  adminGroups: string[];
  providers: DemoProvider[];
  users: DemoUser[];
}

/** The two demo tenants: who is in them and what each user shows. */
function demoTenants(): TenantPlan[] {
  return [
    {
      id: 'acme',
      company: 'acme-company',
      displayName: 'Acme Corp',
      accent: '#0f766e',
      domains: ['acme.com'],
      groupMapping: { 'ml-users': 'Users', 'ml-admins': ['Admins', 'Users'] },
      adminGroups: ['ml-admins'],
      providers: [{ id: 'acme-company', displayName: 'Acme SSO', clientId: 'acme-clearml', logoutFromProvider: true }],
      users: [
        { login: 'alice', email: 'alice@acme.com', name: 'Alice Admin', tenant: 'acme', groups: ['ml-admins'], demonstrates: 'an administrator: groups Admins, Users' },
        { login: 'bob', email: 'bob@acme.com', name: 'Bob User', tenant: 'acme', groups: ['ml-users', 'coffee-club'], demonstrates: 'an ordinary user: group Users' },
        { login: 'carol', email: 'carol@acme.com', name: 'Carol Marketing', tenant: 'acme', groups: ['marketing'], demonstrates: 'in no mapped group: refused (403)' },
        { login: 'mallory', email: 'mallory@acme.com', name: 'Mallory', tenant: 'globex', groups: ['ml-users'], demonstrates: 'tenant claim names globex: refused (403)' },
      ],
    },
    {
      id: 'globex',
      company: 'globex-company',
      displayName: 'Globex',
      accent: '#9a3412',
      domains: ['globex.com'],
      groupMapping: { staff: 'Staff', 'it-admins': ['Admins', 'Staff'] },
      adminGroups: ['it-admins'],
      providers: [
        { id: 'globex-company', displayName: 'Globex SSO', clientId: 'globex-clearml', logoutFromProvider: true },
        { id: 'globex-contractors', displayName: 'Globex contractors', clientId: 'globex-contractors', logoutFromProvider: false },
      ],
      users: [
        { login: 'gina', email: 'gina@globex.com', name: 'Gina Globex', tenant: 'globex', groups: ['it-admins'], demonstrates: 'an administrator of globex' },
        { login: 'hank', email: 'hank@globex.com', name: 'Hank Staff', tenant: 'globex', groups: ['staff'], demonstrates: 'an ordinary globex user' },
      ],
    },
  ];
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Calls the admin API like curl: POST JSON with HTTP Basic; throws unless the result code is 200. */
async function adminCall(adminUrl: string, endpoint: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${adminUrl}/${endpoint}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Basic ${Buffer.from(`${DEMO_ADMIN.key}:${DEMO_ADMIN.secret}`).toString('base64')}`,
    },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as { meta?: { result_code?: number; result_msg?: string }; data?: Record<string, unknown> };
  if (res.status !== 200 || json.meta?.result_code !== 200) {
    throw new Error(`admin API ${endpoint} answered ${res.status}: ${json.meta?.result_msg ?? 'no message'}`);
  }
  return json.data ?? {};
}

/** Starts the whole demo; on failure, whatever was started is stopped again. */
export async function startDemoStack(opts: DemoStackOptions = {}): Promise<DemoStack> {
  const cleanups: Array<() => Promise<void> | void> = [];
  const runCleanups = async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch {
        // keep stopping the rest
      }
    }
  };
  try {
    const dir = mkdtempSync(join(tmpdir(), 'tenant-gate-demo-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const port = opts.port === 0 ? await freePort() : (opts.port ?? 8080);
    const publicUrl = `http://localhost:${port}`;
    const originsOf = (tenant: string) => [`http://${tenant}.localhost:${port}`, publicUrl];

    const upstream = await startDemoUpstream();
    cleanups.push(() => upstream.close());

    const plans = demoTenants();
    const idps = new Map<string, DemoIdp>();
    const secrets = new Map<string, string>();
    for (const plan of plans) {
      for (const p of plan.providers) secrets.set(p.clientId, randomBytes(24).toString('base64url'));
      const idp = await startDemoIdp({
        realm: plan.id,
        displayName: plan.displayName,
        accent: plan.accent,
        users: plan.users,
        clients: plan.providers.map((p) => ({
          client_id: p.clientId,
          client_secret: secrets.get(p.clientId)!,
          redirect_uris: originsOf(plan.id).map((o) => `${o}/callback_${p.clientId}`),
          post_logout_redirect_uris: originsOf(plan.id).flatMap((o) => [`${o}/login/${plan.id}`, `${o}/login`]),
          // The base host: it resolves from the provider's process (*.localhost may not).
          backchannel_logout_uri: `${publicUrl}/backchannel-logout_${p.clientId}`,
          backchannel_logout_session_required: true,
        })),
      });
      cleanups.push(() => idp.close());
      idps.set(plan.id, idp);
    }

    const config = loadConfig({
      env: {},
      object: {
        mode: 'authenticate',
        public: { host: '127.0.0.1', port, url: publicUrl },
        admin: { host: '127.0.0.1', port: opts.adminPort ?? 8008, credentials: [{ ...DEMO_ADMIN }] },
        upstreams: { webapp: upstream.url },
        tenancy: { baseDomain: 'localhost' },
        store: { url: `sqlite:${join(dir, 'tenant-gate.db')}` },
        session: { secret: randomBytes(32).toString('base64url') },
        // The demo's identity providers run on loopback over http.
        oidc: { insecureAllowPrivateProviders: true },
        log: { level: opts.logLevel ?? 'warn' },
      },
    });
    const logger = opts.logger ?? createLogger(config.log.level, opts.logDestination ?? process.stderr);
    const gateway = await buildApp(config, { logger });
    cleanups.push(() => gateway.close());
    const addresses = await gateway.listen();
    const adminUrl = `http://127.0.0.1:${addresses.admin.port}`;

    const tenants: DemoTenant[] = [];
    for (const plan of plans) {
      const idp = idps.get(plan.id)!;
      await adminCall(adminUrl, 'system.update_company_sso_config', {
        company: plan.company,
        sso: {
          tenant: plan.id,
          group_mapping: plan.groupMapping,
          admin_groups: plan.adminGroups,
          domains: plan.domains,
          display_name: plan.displayName,
        },
      });
      for (const p of plan.providers) {
        await adminCall(adminUrl, 'sso.save_provider_configuration', {
          provider: 'keycloak',
          company: plan.company,
          configuration: {
            id: p.id,
            display_name: p.displayName,
            client_id: p.clientId,
            client_secret: secrets.get(p.clientId)!,
            ...idp.endpoints,
            logout_from_provider: p.logoutFromProvider,
            claim_tenant: 'tenant_key',
            claim_name: 'name',
            group_enabled: true,
            claim_groups: 'ad_groups_trusted',
            group_prohibit_user_login_if_not_in_group: true,
          },
        });
      }
      tenants.push({
        id: plan.id,
        company: plan.company,
        displayName: plan.displayName,
        vanityOrigin: originsOf(plan.id)[0]!,
        domains: plan.domains,
        groupMapping: plan.groupMapping,
        adminGroups: plan.adminGroups,
        providers: plan.providers,
        users: plan.users,
        issuer: idp.issuer,
        endSessionUrl: idp.endpoints.end_session_endpoint,
      });
    }

    let closing: Promise<void> | undefined;
    return {
      publicUrl,
      port: addresses.public.port,
      adminUrl,
      upstreamUrl: upstream.url,
      tenants,
      dir,
      gateway,
      close: () => (closing ??= runCleanups()),
    };
  } catch (err) {
    await runCleanups();
    throw err;
  }
}

