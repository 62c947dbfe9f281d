/**
 * Route mode: the webapp starts logouts at the identity provider itself. When it
 * answers with a redirect carrying `post_logout_redirect_uri`, that value must be
 * `<origin>/login` or `<origin>/login/<tenant>` on the origin the user is on (the
 * host's tenant on a tenant host); any other value is replaced by that login page.
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
  if (!location.includes('post_logout_redirect_uri=') || !req.gate) return location;
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    return location;
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
