/**
 * Where the gateway is willing to send a browser: post-login `redirect` targets and
 * post-logout redirect URIs.
 *
 * Rules for a post-login `redirect` (same-origin relative references only):
 * - 1 to 2048 characters, starting with `/`, made only of characters RFC 3986 allows
 *   unencoded (letters, digits, `-._~!$&'()*+,;=:@/?#[]` and `%` escapes): anything
 *   else, including whitespace, controls, backslash and non-ASCII, is refused rather
 *   than repaired. Browsers strip tabs and newlines and read `\` as `/`, which is how
 *   `/\evil.com` and `/%09/evil.com` became open redirects elsewhere.
 * - Percent escapes must be well formed. The value is then decoded again and again
 *   (up to 4 layers, `%252f` -> `%2f` -> `/`) and every layer must pass the same
 *   checks, because a proxy, the webapp or its router may decode it once more.
 *   A value still changing after 4 decodings is refused.
 * - In no layer: `//` anywhere (path, query or fragment); `\`; a control, format or
 *   whitespace character (a decoded U+0020 space is tolerated inside a segment, never
 *   at either end or next to a `/`); `:/` or `:\` (a URL hidden in the value); a first
 *   path segment shaped like a scheme (`/javascript:...`, `/a:b`); a `.` or `..` path
 *   segment (a normaliser turns `/.//evil.com` into `//evil.com`); a slash or full-stop
 *   lookalike (`∕` U+2215, `⧸` U+29F8, `。` U+3002...). A layer holding other
 *   non-ASCII characters must also pass in its compatibility form (NFKC), which turns
 *   `／／evil.com` (U+FF0F) into `//evil.com`.
 * - Not a gateway path that would loop the login: a first segment `login`, `logout`
 *   or `callback_*` (compared case-insensitively, `;params` ignored).
 * - The accepted value is returned exactly as given (still percent-encoded), so the
 *   webapp sees the path it asked for; callers encode it as a query value when they
 *   pass it on, and escape it when they render it.
 *
 * Rules for a post-logout redirect URI:
 * - Exactly `<origin>/login` or `<origin>/login/<tenant>` with `<origin>` one of the
 *   known origins and `<tenant>` the session's tenant (case-insensitive).
 * - The raw string must already be canonical, i.e. identical to its WHATWG URL
 *   serialisation: no userinfo, query, fragment, percent escapes, explicit default
 *   port, upper-case host, trailing slash or dot segments.
 */

import { normalizeHost } from './host.js';
import { hasControlChar, percentDecode } from './percent.js';
import { isValidTenantId, tenantKey } from './tenant-id.js';

const MAX_REDIRECT_LENGTH = 2048;
const MAX_DECODE_LAYERS = 4;
const RFC3986_CHARS = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/?#[\]%]+$/;
// Every whitespace, control and format character except U+0020 SPACE, which a decoded
// layer may hold inside a segment (`report%20final.pdf`); see SPACE_AT_EDGE.
const INVISIBLE = /(?! )[\s\p{Cc}\p{Cf}\p{Z}]/u;
// A space where browsers trim it (start, end) or next to a separator (`/%20/host`).
const SPACE_AT_EDGE = /^ | $| [/\\]|[/\\] /;
// Slashes and full stops with no NFKC mapping to ASCII that URL and IDN processing
// (UTS #46) or a careless "normaliser" may still turn into `/`, `\` or `.`.
const SEPARATOR_LOOKALIKES = /[\u2044\u2215\u2216\u2571\u2572\u29f5\u29f8\u29f9\u3002\uff61]/u;
const SCHEME_LIKE = /^[A-Za-z][A-Za-z0-9+.-]*:/;
const LOOPING_SEGMENTS = new Set(['login', 'logout']);
const CANONICAL_LOGOUT_URI = /^[A-Za-z0-9\-._~:/[\]]+$/;

/** The part of a reference before its query or fragment. */
function pathPart(s: string): string {
  const end = s.search(/[?#]/);
  return end < 0 ? s : s.slice(0, end);
}

function isGatewayPath(firstSegment: string): boolean {
  const name = firstSegment.split(';', 1)[0]?.toLowerCase() ?? '';
  return LOOPING_SEGMENTS.has(name) || name.startsWith('callback_');
}

/** Checks one (possibly decoded) layer of a redirect value. */
function isSafeLayer(s: string): boolean {
  if (!s.startsWith('/')) return false;
  if (hasControlChar(s) || INVISIBLE.test(s) || SPACE_AT_EDGE.test(s)) return false;
  if (s.includes('\\') || s.includes('//')) return false;
  if (/:[/\\]/.test(s)) return false;
  const segments = pathPart(s).split('/').slice(1);
  const first = segments[0] ?? '';
  if (SCHEME_LIKE.test(first) || isGatewayPath(first)) return false;
  if (segments.some((seg) => seg === '.' || seg === '..')) return false;
  if (/[^\x00-\x7f]/.test(s)) {
    if (SEPARATOR_LOOKALIKES.test(s)) return false;
    const folded = s.normalize('NFKC');
    if (folded !== s && !isSafeLayer(folded)) return false;
  }
  return true;
}

/**
 * Accepts a post-login `redirect` target only when it is a same-origin relative
 * reference that stays safe through every further percent-decoding (at most four).
 *
 * @param raw the `redirect` parameter, already decoded once from the query string it
 *   arrived in (as `URLSearchParams` gives it)
 * @returns `raw` unchanged when safe, otherwise `undefined` (callers then drop it)
 */
export function safeRelativeRedirect(raw: string | undefined): string | undefined {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > MAX_REDIRECT_LENGTH) return undefined;
  if (!RFC3986_CHARS.test(raw) || !isSafeLayer(raw)) return undefined;

  let layer = raw;
  let next = percentDecode(layer, 'strict');
  for (let decoded = 0; next !== layer; decoded++) {
    if (next === undefined || decoded >= MAX_DECODE_LAYERS || !isSafeLayer(next)) return undefined;
    layer = next;
    next = percentDecode(layer, 'lenient');
  }
  return raw;
}

/** What {@link isAllowedPostLogoutRedirect} checks a URI against. */
export interface PostLogoutRedirectOptions {
  /** Origins the gateway serves, as `URL.origin` writes them (`https://acme.ml.example.com`). */
  knownOrigins: ReadonlySet<string>;
  /** The tenant of the session being ended; without it only `<origin>/login` is allowed. */
  tenant?: string;
}

/**
 * Whether `uri` may be sent as `post_logout_redirect_uri` (or followed after logout).
 *
 * @returns true only for a canonical `<origin>/login` or `<origin>/login/<tenant>`
 */
export function isAllowedPostLogoutRedirect(uri: string, opts: PostLogoutRedirectOptions): boolean {
  if (typeof uri !== 'string' || uri.length === 0 || uri.length > MAX_REDIRECT_LENGTH) return false;
  if (!CANONICAL_LOGOUT_URI.test(uri)) return false;
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return false;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return false;
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') return false;
  if (url.href !== uri || !opts.knownOrigins.has(url.origin)) return false;

  if (url.pathname === '/login') return true;
  const prefix = '/login/';
  const tenant = opts.tenant;
  if (tenant === undefined || !isValidTenantId(tenant) || !url.pathname.startsWith(prefix)) return false;
  const named = url.pathname.slice(prefix.length);
  return isValidTenantId(named) && tenantKey(named) === tenantKey(tenant);
}

/**
 * Builds an origin the way `URL.origin` serialises it, so it can be compared with one.
 *
 * @param scheme `http` or `https`
 * @param host a host in the form {@link normalizeHost} returns (IPv6 in brackets)
 * @param port omitted, or the scheme's default port, gives an origin without port
 * @throws TypeError when `host` is not normalised; RangeError for a port outside 1-65535
 */
export function buildOrigin(scheme: 'http' | 'https', host: string, port?: number): string {
  if (scheme !== 'http' && scheme !== 'https') throw new TypeError(`unsupported scheme: ${String(scheme)}`);
  if (normalizeHost(host) !== host) throw new TypeError(`host is not in normal form: ${JSON.stringify(host)}`);
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) {
    throw new RangeError(`port out of range: ${String(port)}`);
  }
  const defaultPort = scheme === 'https' ? 443 : 80;
  return port === undefined || port === defaultPort ? `${scheme}://${host}` : `${scheme}://${host}:${port}`;
}
