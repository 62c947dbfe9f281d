/**
 * Route mode: the webapp starts logouts at the identity provider itself. When it
 * answers with a redirect carrying `post_logout_redirect_uri`, that value must be
 * `<origin>/login` or `<origin>/login/<tenant>` on the origin the user is on (the
 * host's tenant on a tenant host); any other value is replaced by that login page.
 * Likewise a redirect carrying `client_id` and a `redirect_uri` to a callback must
 * name exactly `<origin>/callback_<client_id>`.
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

/** Returns the Location to send: unchanged, or with its post-logout URI replaced. */
export function guardPostLogoutLocation(req: FastifyRequest, location: string): string {
  if (!location.includes('redirect_uri=') || !req.gate) return location;
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    return location;
  }
  const callback = url.searchParams.get('redirect_uri');
  const clientId = url.searchParams.get('client_id');
  if (callback !== null && clientId !== null && pathOf(callback).startsWith('/callback_')) {
    const expected = `${req.gate.origin}/callback_${encodeURIComponent(clientId)}`;
    if (callback !== expected) {
      req.log.warn({ reason: 'redirect_uri' }, 'upstream login redirect named a callback on another origin; replaced');
      url.searchParams.set('redirect_uri', expected);
      return url.href;
    }
  }
  const value = url.searchParams.get('post_logout_redirect_uri');
  if (value === null) return location;
  const hostTenant = req.gate.tenant?.company.sso.tenant;
  const named = /^\/login\/([^/]+)$/.exec(pathOf(value))?.[1];
  const tenant = hostTenant ?? (named !== undefined && isValidTenantId(named) ? named : undefined);
  if (isAllowedPostLogoutRedirect(value, { knownOrigins: new Set([req.gate.origin]), ...(tenant ? { tenant } : {}) })) return location;
  req.log.warn({ reason: 'post_logout_redirect_uri' }, 'upstream logout redirect named a post-logout URI that is not allowed; replaced');
  url.searchParams.set('post_logout_redirect_uri', `${req.gate.origin}/login${hostTenant ? `/${encodeURIComponent(hostTenant)}` : ''}`);
  return url.href;
}
