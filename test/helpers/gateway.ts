/**
 * Test helpers: a real gateway on port 0 over a temporary SQLite file, a real upstream
 * that echoes what it received, and small HTTP clients.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { buildApp, type Gateway, type GatewayDeps } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { createLogger } from '../../src/logger.js';

type Test = import('tap').Test;

export const ADMIN_KEY = 'admin-key';
export const ADMIN_SECRET = 'admin-secret-value';
export const BASE_DOMAIN = 'ml.example.com';

/** What an upstream saw of one request. */
export interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A real HTTP upstream on 127.0.0.1:0 that records every request and echoes it as JSON. */
export async function startUpstream(t: Test, handler?: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => boolean) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const record = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      seen.push(record);
      if (handler?.(req, res, body)) return;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ upstream: true, ...record }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return { url, seen, server };
}

/** Collects log lines written by a gateway. */
export function logCollector() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  return { lines, stream, text: () => lines.join('\n') };
}

/** A configuration for tests: ports 0, a temp SQLite file, overrides merged on top. */
export function testConfig(overrides: Record<string, unknown>, dir: string, env: NodeJS.ProcessEnv = {}): Config {
  const base: Record<string, unknown> = {
    public: { host: '127.0.0.1', port: 0, url: `https://${BASE_DOMAIN}` },
    admin: { host: '127.0.0.1', port: 0, credentials: [{ key: ADMIN_KEY, secret: ADMIN_SECRET }] },
    upstreams: { webapp: 'http://127.0.0.1:9' },
    tenancy: { baseDomain: BASE_DOMAIN },
    store: { url: `sqlite:${join(dir, 'tenant-gate.db')}` },
    // The tests' identity providers run on loopback over http.
    oidc: { insecureAllowPrivateProviders: true },
    log: { level: 'info' },
  };
  for (const [k, v] of Object.entries(overrides)) {
    const prev = base[k];
    base[k] = prev && typeof prev === 'object' && v && typeof v === 'object' && !Array.isArray(v) ? { ...prev, ...v } : v;
  }
  return loadConfig({ object: base, env });
}

/** A temporary folder removed after the test. */
export function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'tenant-gate-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Starts a gateway on port 0; closed after the test. */
export async function startGateway(t: Test, overrides: Record<string, unknown> = {}, opts: { dir?: string; env?: NodeJS.ProcessEnv; deps?: GatewayDeps } = {}) {
  const dir = opts.dir ?? tempDir(t);
  const config = testConfig(overrides, dir, opts.env);
  const logs = logCollector();
  const gateway: Gateway = await buildApp(config, { logger: createLogger(config.log.level, logs.stream), ...opts.deps });
  const addresses = await gateway.listen();
  t.teardown(() => gateway.close());
  const adminUrl = `http://127.0.0.1:${addresses.admin.port}`;
  const publicUrl = `http://127.0.0.1:${addresses.public.port}`;
  return { gateway, config, dir, logs, adminUrl, publicUrl, publicPort: addresses.public.port };
}

/** Calls the admin API like curl does: POST JSON with HTTP Basic. */
export async function adminCall(adminUrl: string, endpoint: string, body: unknown, auth: string | null = `${ADMIN_KEY}:${ADMIN_SECRET}`) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (auth !== null) headers.authorization = `Basic ${Buffer.from(auth).toString('base64')}`;
  const res = await fetch(`${adminUrl}/${endpoint}`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const json = (await res.json()) as { meta: Record<string, unknown> & { result_code: number; result_subcode: number; result_msg: string; error_data: Record<string, unknown> }; data: Record<string, any> };
  return { status: res.status, ...json };
}

/**
 * The two route-mode tenants most tests use, configured through the admin API: acme
 * (company c-acme, email domain acme.com, custom host ml.acme.com, client acme-webapp)
 * and Globex (c-globex, globex.com, client globex-webapp), each with a Keycloak-style
 * provider. Returns the two admin calls, for tests that add more.
 */
export async function seedRouteTenants(adminUrl: string) {
  const put = (company: string, sso: Record<string, unknown>) => adminCall(adminUrl, 'system.update_company_sso_config', { company, sso });
  const provider = (company: string, clientId: string) =>
    adminCall(adminUrl, 'sso.save_provider_configuration', {
      provider: 'keycloak',
      company,
      configuration: { id: company, client_id: clientId, client_secret: 's3cret-value', authorization_endpoint: `https://kc.example.com/realms/${company}/protocol/openid-connect/auth` },
    });
  await put('c-acme', { tenant: 'acme', domains: ['acme.com'], hosts: ['ml.acme.com'] });
  await put('c-globex', { tenant: 'Globex', domains: ['globex.com'] });
  await provider('c-acme', 'acme-webapp');
  await provider('c-globex', 'globex-webapp');
  return { put, provider };
}

/** A raw HTTP request to the public listener with any Host header; no redirect following. */
export function publicRequest(
  port: number,
  opts: { path: string; host?: string; method?: string; headers?: Record<string, string>; body?: string },
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: opts.path,
        method: opts.method ?? 'GET',
        headers: { host: opts.host ?? BASE_DOMAIN, ...opts.headers },
        setHost: false,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/** The seed's `system.update_company_sso_config` payload, with placeholders filled in. */
const SEED_COMPANY = `{
     "company": "<company_id>",
     "sso": {
       "tenant": "<external tenant ID>",
       "group_mapping": {
         "IDP group name1": "Clearml group name1",
         "IDP group name2": "Clearml group name2"
       },
       "admin_groups": ["IDP admin group name1", "IDP admin group name2"]
     }}`;

/** The seed's `sso.save_provider_configuration` payload. */
const SEED_PROVIDER = `{
     "provider": "keycloak",
     "company": "<company_id>",
     "configuration": {
       "id": "<some unique id here, you can use company_id>",
       "display_name": "<The text that you want to see on the login button>",
       "client_id": "<client_id from IDP>",
       "client_secret": "<client secret from IDP>",
       "authorization_endpoint": "<authorization_endpoint from IDP OpenID configuration>",
       "token_endpoint": "<token_endpoint from IDP OpenID configuration>",
       "revocation_endpoint": "<revocation_endpoint from IDP OpenID configuration>",
       "end_session_endpoint": "<end_session_endpoint from IDP OpenID configuration>",
       "logout_from_provider": true,
       "claim_tenant": "tenant_key",
       "claim_name": "name",
       "group_enabled": true,
       "claim_groups": "ad_groups_trusted",
       "group_prohibit_user_login_if_not_in_group": true
     }}`;

/** Fills the seed payloads' placeholders. */
export function seedPayloads(v: { company: string; tenant: string; clientId: string; secret: string; kc: string }) {
  const realm = `${v.kc}/realms/${v.tenant}/protocol/openid-connect`;
  const fill = (s: string) =>
    s
      .replaceAll('<company_id>', v.company)
      .replaceAll('<external tenant ID>', v.tenant)
      .replaceAll('<some unique id here, you can use company_id>', v.company)
      .replaceAll('<The text that you want to see on the login button>', `Sign in with ${v.tenant}`)
      .replaceAll('<client_id from IDP>', v.clientId)
      .replaceAll('<client secret from IDP>', v.secret)
      .replaceAll('<authorization_endpoint from IDP OpenID configuration>', `${realm}/auth`)
      .replaceAll('<token_endpoint from IDP OpenID configuration>', `${realm}/token`)
      .replaceAll('<revocation_endpoint from IDP OpenID configuration>', `${realm}/revoke`)
      .replaceAll('<end_session_endpoint from IDP OpenID configuration>', `${realm}/logout`);
  return { company: fill(SEED_COMPANY), provider: fill(SEED_PROVIDER) };
}
