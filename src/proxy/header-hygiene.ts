/**
 * Which request headers never reach an upstream. Pure; runs on every proxied request.
 *
 * Rules:
 * - a name is judged lower-cased with `_` read as `-`, because CGI-style servers (WSGI,
 *   Rack, PHP-FPM, uWSGI, nginx with underscores_in_headers) give `x_auth_request_user`
 *   and `X-Auth-Request-User` the same name;
 * - dropped: the headers the gateway owns or sets itself (X-Auth-Request-*,
 *   X-Forwarded-*), the ones upstream frameworks trust for the client's identity,
 *   address or original URL (Forwarded, X-Real-IP, X-Client-IP, True-Client-IP,
 *   CF-Connecting-IP, X-Original-URL/-URI/-Host, X-Rewrite-URL, Remote-User,
 *   X-Remote-*, X-User, host overrides), and hop-by-hop headers;
 * - with `dropUnderscoreHeaders` (the default, as nginx does), any name containing `_`
 *   is dropped whatever it spells;
 * - names arrive lower-cased (Node's parser); a first-character check keeps the common
 *   case to one comparison.
 */

/** Hop-by-hop headers (RFC 9110 7.6.1) and others that describe the client's connection. */
const HOP_BY_HOP = ['keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect', 'connection'];

/** Exact names upstreams trust for identity, client address, original URL or host. */
const TRUSTED_BY_UPSTREAMS = [
  'forwarded',
  'x-real-ip',
  'x-client-ip',
  'true-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'x-cluster-client-ip',
  'x-original-url',
  'x-original-uri',
  'x-original-host',
  'x-original-method',
  'x-rewrite-url',
  'x-host',
  'x-http-host-override',
  'remote-user',
  'x-user',
];

/** Name prefixes the gateway owns (X-Auth-Request-*, X-Forwarded-*) or that carry a proxy's user (X-Remote-*). */
const OWNED_PREFIXES = ['x-auth-request-', 'x-forwarded-', 'x-remote-'];

const EXACT = new Set([...HOP_BY_HOP, ...TRUSTED_BY_UPSTREAMS]);
/** First characters of every dropped name: anything else is kept after one comparison. */
const FIRST = new Set([...EXACT, ...OWNED_PREFIXES].map((n) => n.charCodeAt(0)));

const X = 0x78;

function droppedName(name: string): boolean {
  if (EXACT.has(name)) return true;
  if (name.charCodeAt(0) !== X) return false;
  for (const p of OWNED_PREFIXES) if (name.startsWith(p)) return true;
  return false;
}

/** Options of {@link headerFilter}. */
export interface HeaderHygieneOptions {
  /** Drop every header whose name contains `_` (default true). */
  dropUnderscoreHeaders?: boolean;
}

/**
 * A predicate telling whether a lower-cased request header name must be dropped
 * before the request goes upstream.
 */
export function headerFilter(opts: HeaderHygieneOptions = {}): (name: string) => boolean {
  const dropUnderscore = opts.dropUnderscoreHeaders !== false;
  return (name) => {
    if (name.includes('_')) return dropUnderscore || droppedName(name.replace(/_/g, '-'));
    return FIRST.has(name.charCodeAt(0)) && droppedName(name);
  };
}

