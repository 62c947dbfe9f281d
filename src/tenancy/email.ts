/**
 * Work emails typed into the discovery form: only their domain is used, to find the
 * tenant.
 *
 * Rules:
 * - Surrounding whitespace is trimmed; the rest is at most 254 characters.
 * - Exactly one `@`: `a@evil.com@acme.com` is refused, never read as either domain.
 * - The local part is 1 to 64 characters with no whitespace, control or format
 *   characters and none of the specials `" ( ) , : ; < > [ \ ]` (quoted local parts and
 *   comments are not supported: they are how one address hides another).
 * - The domain must pass `normalizeDomain` (no port, no IP literal, IDN to punycode,
 *   trailing dot removed) and is returned in that normal form.
 */

import { normalizeDomain } from './host.js';

const MAX_EMAIL_LENGTH = 254;
const MAX_LOCAL_LENGTH = 64;
const BAD_LOCAL = /[\s"(),:;<>[\\\]\p{Cc}\p{Cf}\p{Z}]/u;

/**
 * Extracts the normalised domain of an email address entered in a form.
 *
 * @param raw the form value as received
 * @param normalize the domain check (`normalizeDomain`, or a remembering wrapper of it)
 * @returns the domain in normal form (`acme.com`, `xn--bcher-kva.de`), or `undefined`
 *   when the value is not a plausible single address
 */
export function emailDomain(raw: string, normalize: (domain: string) => string | undefined = normalizeDomain): string | undefined {
  if (typeof raw !== 'string') return undefined;
  const email = raw.trim();
  if (email.length === 0 || email.length > MAX_EMAIL_LENGTH) return undefined;
  const at = email.indexOf('@');
  if (at < 0 || at !== email.lastIndexOf('@')) return undefined;
  const local = email.slice(0, at);
  const domain = email.slice(at + 1);
  if (local.length === 0 || local.length > MAX_LOCAL_LENGTH || BAD_LOCAL.test(local)) return undefined;
  return normalize(domain);
}
