/**
 * Route mode: the webapp starts logins and logouts at the identity provider itself.
 * When it answers with a redirect carrying `post_logout_redirect_uri`, that value must
 * be `<origin>/login` or `<origin>/login/<tenant>` on the origin the user is on (the
 * host's tenant on a tenant host); any other value is replaced by that login page.
 * Likewise a redirect carrying `client_id` and a `redirect_uri` to a callback must
 * name exactly `<origin>/callback_<client_id>`.
 *
 * Rules: the Location is parsed and its parameter names read decoded (so
 * `post%5Flogout%5Fredirect%5Furi` is `post_logout_redirect_uri`); a parameter given
 * more than once is replaced as a whole; a Location that is not an absolute URL with a
 * query is left as it is.
 */
import type { FastifyRequest } from 'fastify';
import { isAllowedPostLogoutRedirect } from '../tenancy/redirect.js';
import { isValidTenantId } from '../tenancy/tenant-id.js';

function pathOf(uri: string): string {
  try {
    return new URL(uri).pathname;
  } catch {
    return '';
  }
}

/** The one value of a parameter, or undefined when it is absent; null when repeated. */
function onlyValue(params: URLSearchParams, name: string): string | null | undefined {
  const all = params.getAll(name);
  return all.length === 0 ? undefined : all.length === 1 ? all[0]! : null;
}

/** Returns the Location to send: unchanged, or with its redirect URIs replaced. */
export function guardPostLogoutLocation(req: FastifyRequest, location: string): string {
  const site = req.gate.site;
  if (!site || !location.includes('?')) return location;
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    return location;
  }
  const params = url.searchParams;
  let changed = false;
  const callback = onlyValue(params, 'redirect_uri');
  const clientId = onlyValue(params, 'client_id');
  if (callback !== undefined && typeof clientId === 'string' && (callback === null || pathOf(callback).startsWith('/callback_'))) {
    const expected = `${site.origin}/callback_${encodeURIComponent(clientId)}`;
    if (callback !== expected) {
      req.log.warn({ reason: 'redirect_uri' }, 'upstream login redirect named a callback on another origin; replaced');
      params.set('redirect_uri', expected);
      changed = true;
    }
  }
  const value = onlyValue(params, 'post_logout_redirect_uri');
  if (value !== undefined) {
    const hostTenant = site.tenant?.company.sso.tenant;
    const named = value === null ? undefined : /^\/login\/([^/]+)$/.exec(pathOf(value))?.[1];
    const tenant = hostTenant ?? (named !== undefined && isValidTenantId(named) ? named : undefined);
    if (value === null || !isAllowedPostLogoutRedirect(value, { knownOrigins: new Set([site.origin]), ...(tenant ? { tenant } : {}) })) {
      req.log.warn({ reason: 'post_logout_redirect_uri' }, 'upstream logout redirect named a post-logout URI that is not allowed; replaced');
      params.set('post_logout_redirect_uri', `${site.origin}/login${hostTenant ? `/${encodeURIComponent(hostTenant)}` : ''}`);
      changed = true;
    }
  }
  return changed ? url.href : location;
}
