/**
 * A gateway in authenticate mode with two tenants (acme, globex), each with its own
 * real oidc-provider on loopback, and a real upstream that echoes what it received.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { startIdp, loginAtIdp, type Idp } from './idp.js';
import type { GatewayDeps } from '../../src/app.js';
import { adminCall, publicRequest, startGateway, startUpstream } from './gateway.js';

type Test = import('tap').Test;

export const ACME_SECRET = 'acme-client-secret-0123456789';
export const GLOBEX_SECRET = 'globex-client-secret-0123456789';
export const SESSION_SECRET = 'a-session-secret-of-at-least-32-characters';

/** Cookies a browser would keep for one host. */
export class Browser {
  readonly cookies = new Map<string, string>();
  header(): string | undefined {
    return this.cookies.size ? [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') : undefined;
  }
  take(headers: IncomingHttpHeaders): void {
    const set = headers['set-cookie'] ?? [];
    for (const line of set) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      if (/Max-Age=0/i.test(line) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
}

export async function twoTenants(t: Test, overrides: Record<string, unknown> = {}, deps?: GatewayDeps) {
  const upstream = await startUpstream(t);
  const gw = await startGateway(t, {
    mode: 'authenticate',
    public: { host: '127.0.0.1', port: 0, url: 'http://ml.example.com' },
    upstreams: { webapp: upstream.url },
    session: { secret: SESSION_SECRET },
    ...overrides,
  }, deps ? { deps } : {});
  const acmeIdp: Idp = await startIdp({
    clients: [
      {
        client_id: 'acme-web',
        client_secret: ACME_SECRET,
        redirect_uris: ['http://acme.ml.example.com/callback_acme-web', 'http://ml.example.com/callback_acme-web'],
        post_logout_redirect_uris: ['http://acme.ml.example.com/login/acme', 'http://ml.example.com/login/acme'],
      },
    ],
    users: {
      alice: { email: 'alice@acme.com', email_verified: true, name: 'Alice Admin', tenant_key: 'acme', ad_groups_trusted: ['ml-admins'] },
      bob: { email: 'bob@acme.com', email_verified: true, name: 'Bob User', tenant_key: 'acme', ad_groups_trusted: ['ml-users', 'unmapped'] },
      carol: { email: 'carol@acme.com', email_verified: true, name: 'Carol', tenant_key: 'acme', ad_groups_trusted: ['marketing'] },
      mallory: { email: 'mallory@acme.com', email_verified: true, name: 'Mallory', tenant_key: 'globex', ad_groups_trusted: ['ml-users'] },
      nogroups: { email: 'ng@acme.com', email_verified: true, name: 'No Groups', tenant_key: 'acme' },
      notenant: { email: 'nt@acme.com', email_verified: true, name: 'No Tenant', ad_groups_trusted: ['ml-users'] },
      // A second account whose editable email copies alice's, with no email_verified claim.
      evil: { email: 'alice@acme.com', name: 'Alice Liddell', tenant_key: 'acme', ad_groups_trusted: ['ml-users'] },
    },
  });
  t.teardown(() => acmeIdp.close());
  const globexIdp: Idp = await startIdp({
    clients: [
      {
        client_id: 'globex-web',
        client_secret: GLOBEX_SECRET,
        redirect_uris: ['http://globex.ml.example.com/callback_globex-web'],
        post_logout_redirect_uris: ['http://globex.ml.example.com/login/globex'],
      },
    ],
    users: { gina: { email: 'gina@globex.com', email_verified: true, name: 'Gina', tenant_key: 'globex', ad_groups_trusted: ['staff'] } },
  });
  t.teardown(() => globexIdp.close());

  const call = (endpoint: string, body: unknown) => adminCall(gw.adminUrl, endpoint, body);
  await call('system.update_company_sso_config', {
    company: 'c-acme',
    sso: { tenant: 'acme', group_mapping: { 'ml-users': 'Users', 'ml-admins': ['Admins', 'Users'] }, admin_groups: ['ml-admins'], domains: ['acme.com'] },
  });
  await call('sso.save_provider_configuration', {
    provider: 'keycloak',
    company: 'c-acme',
    configuration: {
      id: 'c-acme',
      display_name: 'Acme SSO',
      client_id: 'acme-web',
      client_secret: ACME_SECRET,
      issuer: acmeIdp.issuer,
      logout_from_provider: true,
      claim_tenant: 'tenant_key',
      claim_name: 'name',
      group_enabled: true,
      claim_groups: 'ad_groups_trusted',
      group_prohibit_user_login_if_not_in_group: true,
    },
  });
  await call('system.update_company_sso_config', { company: 'c-globex', sso: { tenant: 'globex', group_mapping: { staff: 'Staff' }, admin_groups: [] } });
  await call('sso.save_provider_configuration', {
    provider: 'keycloak',
    company: 'c-globex',
    configuration: { id: 'c-globex', client_id: 'globex-web', client_secret: GLOBEX_SECRET, issuer: globexIdp.issuer, claim_groups: 'ad_groups_trusted', group_enabled: true },
  });

  const req = (o: Parameters<typeof publicRequest>[1], browser?: Browser) => {
    const cookie = browser?.header();
    return publicRequest(gw.publicPort, { ...o, headers: { ...(cookie ? { cookie } : {}), ...o.headers } }).then((r) => {
      browser?.take(r.headers);
      return r;
    });
  };

  /** Runs a whole login in a browser; stops at the gateway's answer to the callback. */
  async function login(account: string, opts: { host?: string; tenant?: string; browser?: Browser; query?: string } = {}) {
    const host = opts.host ?? 'acme.ml.example.com';
    const browser = opts.browser ?? new Browser();
    const start = await req({ path: `/login/${opts.tenant ?? 'acme'}${opts.query ?? ''}`, host }, browser);
    if (start.status !== 302) return { browser, start, callback: undefined, callbackUrl: undefined };
    const { callbackUrl } = await loginAtIdp(start.headers.location!, account);
    const u = new URL(callbackUrl);
    const callback = await req({ path: u.pathname + u.search, host: u.host }, browser);
    return { browser, start, callback, callbackUrl: u };
  }

  return { ...gw, upstream, acmeIdp, globexIdp, req, login, call };
}
