/**
 * The identity headers an upstream receives in authenticate mode.
 *
 * Rules:
 * - every header is always present (empty when unknown), so upstreams and proxies that
 *   copy by name never fall back to a client's value;
 * - `X-Auth-Request-User` is the verified email, else the subject; `-Email` only when
 *   verified; `-Subject` and `-Issuer` name the user at the IdP;
 * - the headers object remembers the session data it describes (a non-enumerable
 *   symbol, never copied into a request), so the signed assertion describes exactly
 *   the identity the headers do;
 * - values are single-line: control characters become spaces, non-ASCII text travels
 *   as its UTF-8 bytes (latin1 on the wire), as Node's parser hands it over.
 */
import type { SessionData } from '../session/types.js';

/** Headers carrying the verified identity to the upstream (the assertion is added per request). */
export const IDENTITY_HEADERS = [
  'x-auth-request-user',
  'x-auth-request-email',
  'x-auth-request-subject',
  'x-auth-request-issuer',
  'x-auth-request-name',
  'x-auth-request-tenant',
  'x-auth-request-groups',
  'x-auth-request-admin',
] as const;

/** A header-safe rendering of a claim value. */
function headerValue(s: string): string {
  const clean = s.replace(/[\x00-\x1f\x7f]/g, ' ');
  return /^[\x20-\x7e]*$/.test(clean) ? clean : Buffer.from(clean, 'utf8').toString('latin1');
}

/** Where the headers object keeps the session data it was built from (not enumerable: never sent). */
const SOURCE = Symbol('tenant-gate identity source');

/** The session data a headers object of {@link identityHeaders} was built from. */
export function identitySource(headers: Readonly<Record<string, string>>): Readonly<SessionData> | undefined {
  return (headers as { [SOURCE]?: SessionData })[SOURCE];
}

/** The upstream identity headers of a session (the session data stays reachable with {@link identitySource}). */
export function identityHeaders(data: Readonly<SessionData>): Record<string, string> {
  const id = data.identity;
  const headers: Record<string, string> = {
    'x-auth-request-user': headerValue(id.email ?? id.subject),
    'x-auth-request-email': headerValue(id.email ?? ''),
    'x-auth-request-subject': headerValue(id.subject),
    'x-auth-request-issuer': headerValue(id.issuer ?? ''),
    'x-auth-request-name': headerValue(id.name ?? ''),
    'x-auth-request-tenant': headerValue(data.tenant),
    'x-auth-request-groups': headerValue(id.groups.join(',')),
    'x-auth-request-admin': id.admin ? 'true' : 'false',
  };
  Object.defineProperty(headers, SOURCE, { value: data, enumerable: false });
  return headers;
}
