/**
 * Login addresses, with `sso.tenant_login` (always in authenticate mode).
 *
 * Rules:
 * - `/login` on a tenant host goes to `/login/<tenant>` (a safe `redirect` kept); on the
 *   base host it is the email discovery (or the webapp's own login page), open without
 *   a session for GET, HEAD and POST of exactly `/login` only;
 * - `/login/<tenant>` is rate limited per client; a malformed ID, an unknown tenant or
 *   another tenant's login on a tenant host is a 404 page, never passed on;
 * - for an existing tenant: passed on (route mode; an unsafe redirect parameter in a
 *   page navigation first leaves the address bar, steps/address-bar.ts) or started at
 *   its identity provider (authenticate mode) with the safe `redirect` and `login_hint`.
 */
import { loginLocation } from '../../routing/login-location.js';
import { singleQueryParam } from '../../routing/request-shape.js';
import { loginAllowedOnHost } from '../../tenancy/isolation.js';
import { percentDecode } from '../../tenancy/percent.js';
import { safeRelativeRedirect } from '../../tenancy/redirect.js';
import { isValidTenantId } from '../../tenancy/tenant-id.js';
import type { SiteContext } from '../context.js';
import type { Decision } from '../decision.js';
import { cleanAddress } from './address-bar.js';
import { rateLimitedPage, unknownTenantPage } from './pages.js';
import { upstreamView } from './pass.js';
import type { SiteStep, StepFactory } from './step.js';

/** Methods of the email discovery on the base host, open without a session in authenticate mode. */
const OPEN_METHODS = new Set(['GET', 'HEAD', 'POST']);
const LOOSE_LOGIN = /^\/+login(\/|$)/i;
const TENANT_LOGIN = /^\/login\/([^/]+)\/?$/;

/** Decides login addresses; other requests go on. */
export const tenantLogin: StepFactory<SiteStep> = (env) => {
  const start = async (ctx: SiteContext): Promise<Decision> => {
    const limit = env.limits.login;
    if (limit) {
      const r = await limit(ctx.clientAddress);
      if (!r.allowed) return rateLimitedPage(r.retryAfterSeconds);
    }
    const m = TENANT_LOGIN.exec(ctx.path);
    const id = m ? percentDecode(m[1]!, 'strict') : undefined;
    const hostTenant = ctx.site.tenant;
    if (id === undefined || !isValidTenantId(id)) return unknownTenantPage();
    if (!loginAllowedOnHost(id, hostTenant?.company.sso.tenant)) return unknownTenantPage();
    const tenant = hostTenant ?? (await env.directory.tenant(id));
    if (!tenant) return unknownTenantPage();
    if (!env.sessions) return cleanAddress(ctx) ?? { kind: 'pass', view: upstreamView(ctx, env) };
    const redirect = safeRelativeRedirect(singleQueryParam(ctx.query, 'redirect'));
    const loginHint = singleQueryParam(ctx.query, 'login_hint');
    return { kind: 'login', tenant, ...(redirect ? { redirect } : {}), ...(loginHint ? { loginHint } : {}) };
  };

  return (ctx) => {
    if (!env.tenantLogin) return undefined;
    const { canonical, path } = ctx;
    if (canonical !== '/login' && !canonical.startsWith('/login/') && !LOOSE_LOGIN.test(path)) return undefined;
    if (canonical === '/login' && (path === '/login' || path === '/login/')) {
      const tenant = ctx.site.tenant;
      if (!tenant) {
        if (env.sessions && (ctx.path !== '/login' || !OPEN_METHODS.has(ctx.method))) return undefined;
        return cleanAddress(ctx) ?? { kind: 'pass', view: upstreamView(ctx, env) };
      }
      const redirect = safeRelativeRedirect(singleQueryParam(ctx.query, 'redirect'));
      return { kind: 'redirect', status: 302, location: loginLocation(tenant.company.sso.tenant, { redirect }) };
    }
    return start(ctx);
  };
};
