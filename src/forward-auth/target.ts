/**
 * The request target a proxy describes, in the normal form decisions are made on.
 *
 * Rules:
 * - only origin-form targets (`/path?query`) are accepted; control characters, spaces
 *   and a fragment make the target unusable;
 * - percent-encoded unreserved characters are decoded and other escapes upper-cased
 *   (RFC 3986 6.2.2), so `%2e%2E` is a dot segment and nothing else is decoded;
 * - dot segments are removed (RFC 3986 5.2.4): `/login/../projects/x` is `/projects/x`,
 *   the path the proxy routes;
 * - the query is kept as sent.
 */

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

function normaliseEscapes(path: string): string {
  if (!path.includes('%')) return path;
  return path.replace(/%([0-9a-fA-F]{2})/g, (_m, hex: string) => {
    const ch = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
  });
}

/** RFC 3986 remove_dot_segments for an absolute path. */
function removeDotSegments(path: string): string {
  if (!path.includes('.')) return path;
  const segs = path.split('/');
  const out: string[] = [];
  for (let i = 1; i < segs.length; i++) {
    const s = segs[i]!;
    const last = i === segs.length - 1;
    if (s === '.' || s === '..') {
      if (s === '..') out.pop();
      if (last) out.push('');
      continue;
    }
    out.push(s);
  }
  return `/${out.join('/')}`;
}

/**
 * The normal form of a described target, or undefined when it is not a usable
 * origin-form target.
 */
export function normaliseTarget(raw: string): string | undefined {
  if (raw.length === 0 || raw.charCodeAt(0) !== 0x2f || raw.length > 8192) return undefined;
  if (/[\x00-\x20\x7f#]/.test(raw)) return undefined;
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  const out = removeDotSegments(normaliseEscapes(path));
  return q < 0 ? out : `${out}${raw.slice(q)}`;
}
