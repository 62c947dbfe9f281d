/**
 * Tenant IDs: the names in `/login/<tenant>` and in vanity hosts `<tenant>.<baseDomain>`.
 *
 * Rules:
 * - 1 to 63 characters, each an ASCII letter, digit, `-`, `_` or `.`.
 * - `.` and `..` are refused: as a path segment they are dot-segments, which a browser
 *   or proxy would resolve away (`/login/..` is `/`).
 * - IDs are compared case-insensitively, through an ASCII-only lower-casing: Unicode
 *   case mapping is never applied, so `K` (U+212A KELVIN SIGN) can never stand for `k`.
 */

const TENANT_ID = /^[A-Za-z0-9._-]{1,63}$/;

/**
 * Whether `s` is a well-formed tenant ID.
 *
 * @param s candidate tenant ID, exactly as received (no trimming is done)
 */
export function isValidTenantId(s: string): boolean {
  if (typeof s !== 'string' || !TENANT_ID.test(s)) return false;
  return s !== '.' && s !== '..';
}

/**
 * The key under which tenant IDs are compared and stored: the ID with ASCII letters
 * lower-cased. Other characters are left as they are.
 *
 * @param s a tenant ID (validate it with {@link isValidTenantId} first)
 */
export function tenantKey(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/**
 * Whether two tenant IDs name the same tenant (both must be valid).
 */
export function sameTenant(a: string, b: string): boolean {
  if (a === b) return isValidTenantId(a);
  return isValidTenantId(a) && isValidTenantId(b) && tenantKey(a) === tenantKey(b);
}
