/**
 * The paths an identity provider calls to log users out, which need no session.
 *
 * Rules: only `POST /backchannel-logout_<client_id>` and
 * `GET /frontchannel-logout_<client_id>` (with a non-empty client_id) match.
 */

/** Whether a request is a back- or front-channel logout from a provider. */
export function isProviderLogoutRequest(method: string, path: string): boolean {
  if (method === 'POST') return path.startsWith('/backchannel-logout_') && path.length > '/backchannel-logout_'.length;
  if (method === 'GET') return path.startsWith('/frontchannel-logout_') && path.length > '/frontchannel-logout_'.length;
  return false;
}
