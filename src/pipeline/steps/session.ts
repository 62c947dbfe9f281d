/**
 * Who may pass: a session valid on this host (authenticate mode), or the webapp's
 * own session cookie (route mode, where the webapp decides).
 *
 * Rules:
 * - authenticate mode: with a session valid on this host (src/tenancy/isolation.ts)
 *   the request passes with the session's identity; without one, a page navigation
 *   goes to the tenant's login (`/login` on the base host) with the original address as
 *   a safe `redirect`, and any other request gets 401;
 * - route mode, with `sso.tenant_login`: a page navigation on a tenant host without
 *   the webapp's session cookie goes to the tenant's login the same way.
 */
import { loginLocation } from '../../routing/login-location.js';
import { isPageNavigation, readCookie } from '../../routing/request-shape.js';
import { safeRelativeRedirect } from '../../tenancy/redirect.js';
import type { SiteContext } from '../context.js';
import type { Decision } from '../decision.js';
import type { LoadedSession } from '../env.js';
import { upstreamView } from './pass.js';
import type { SiteStep, StepFactory } from './step.js';

/** Where a request without a session is sent: the login of the host's tenant, with the way back. */
function toLogin(ctx: SiteContext): Decision {
  const back = ctx.path === '/' && !ctx.query ? undefined : safeRelativeRedirect(ctx.url);
  const redirect = back === '/' ? undefined : back;
  const tenant = ctx.site.tenant?.company.sso.tenant;
  const location = tenant ? loginLocation(tenant, { redirect }) : `/login${redirect ? `?redirect=${encodeURIComponent(redirect)}` : ''}`;
  return { kind: 'redirect', status: 302, location, reason: 'needs_login' };
}

/** Decides by session; requests with one pass. */
export const session: StepFactory<SiteStep> = (env) => {
  const { sessions } = env;
  if (sessions) {
    const admit = (ctx: SiteContext, s: LoadedSession | null): Decision => {
      if (s) return { kind: 'pass', view: upstreamView(ctx, env, { identity: sessions.identityOf(s), sessionId: s.id }) };
      return isPageNavigation(ctx.method, ctx.path, ctx.headers) ? toLogin(ctx) : { kind: 'unauthorized' };
    };
    return (ctx) => {
      const s = sessions.load(ctx);
      return s instanceof Promise ? s.then((found) => admit(ctx, found)) : admit(ctx, s);
    };
  }
  return (ctx) => {
    if (!env.tenantLogin || !ctx.site.tenant || !isPageNavigation(ctx.method, ctx.path, ctx.headers)) return undefined;
    return readCookie(ctx.headers.cookie, env.webappCookie) === undefined ? toLogin(ctx) : undefined;
  };
};
