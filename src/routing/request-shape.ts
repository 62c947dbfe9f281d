/**
 * Small pure readings of a request: is it a top-level page navigation, does it carry
 * a cookie, and its query with an unsafe `redirect` parameter removed.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { percentDecode } from '../tenancy/percent.js';
import { safeRelativeRedirect } from '../tenancy/redirect.js';

/**
 * A top-level page navigation: `Sec-Fetch-Mode: navigate` with `Sec-Fetch-Dest:
 * document` when the browser sends Fetch Metadata; otherwise a GET or HEAD that
 * accepts HTML and was not made by script (`X-Requested-With`). Paths under `/api/`
 * never are.
 */
export function isPageNavigation(method: string, path: string, headers: IncomingHttpHeaders): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false;
  if (path.startsWith('/api/') || path === '/api') return false;
  const mode = headers['sec-fetch-mode'];
  if (typeof mode === 'string') {
    const dest = headers['sec-fetch-dest'];
    return mode === 'navigate' && (dest === undefined || dest === 'document');
  }
  if (headers['x-requested-with'] !== undefined) return false;
  const accept = headers.accept;
  return typeof accept === 'string' && accept.includes('text/html');
}

/** What `String.prototype.trim` removes, within the Latin-1 range header values use. */
function isTrimmed(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0xa0;
}

/**
 * The value of a cookie (first pair of that name), undefined when absent or empty.
 * Pairs are `;`-separated; whitespace around names and values is ignored.
 */
export function readCookie(cookieHeader: string | undefined, name: string): string | undefined {
  if (!cookieHeader || name === '') return undefined;
  for (let from = 0; ; ) {
    const at = cookieHeader.indexOf(name, from);
    if (at < 0) return undefined;
    from = at + 1;
    let before = at - 1;
    while (before >= 0 && isTrimmed(cookieHeader.charCodeAt(before))) before--;
    if (before >= 0 && cookieHeader.charCodeAt(before) !== 0x3b) continue;
    let eq = at + name.length;
    while (eq < cookieHeader.length && isTrimmed(cookieHeader.charCodeAt(eq))) eq++;
    if (cookieHeader.charCodeAt(eq) !== 0x3d) continue;
    const end = cookieHeader.indexOf(';', eq + 1);
    const value = cookieHeader.slice(eq + 1, end < 0 ? cookieHeader.length : end).trim();
    return value === '' ? undefined : value;
  }
}

function formDecode(s: string): string | undefined {
  return percentDecode(s.replace(/\+/g, ' '), 'strict');
}

/** The value of a query parameter, when present exactly once and well formed. */
export function singleQueryParam(rawQuery: string | undefined, key: string): string | undefined {
  if (!rawQuery || !rawQuery.includes(key)) return undefined;
  let found: string | undefined;
  let count = 0;
  for (const pair of rawQuery.split('&')) {
    const eq = pair.indexOf('=');
    const k = formDecode(eq < 0 ? pair : pair.slice(0, eq));
    if (k !== key) continue;
    count++;
    found = eq < 0 ? '' : formDecode(pair.slice(eq + 1));
  }
  return count === 1 ? found : undefined;
}

/**
 * The raw query without any `redirect` parameter that is not a safe relative path
 * (all of them when it appears more than once); other pairs keep their exact bytes.
 * `changed` tells whether anything was removed.
 */
export function dropUnsafeRedirect(rawQuery: string): { query: string; changed: boolean } {
  if (!rawQuery.toLowerCase().includes('redirect')) return { query: rawQuery, changed: false };
  const pairs = rawQuery.split('&');
  const isRedirect = (pair: string) => {
    const eq = pair.indexOf('=');
    return formDecode(eq < 0 ? pair : pair.slice(0, eq))?.toLowerCase() === 'redirect';
  };
  const redirects = pairs.filter(isRedirect);
  if (redirects.length === 0) return { query: rawQuery, changed: false };
  const value = redirects.length === 1 ? singleQueryParam(rawQuery, 'redirect') : undefined;
  const keep = value !== undefined && safeRelativeRedirect(value) !== undefined && redirects[0]!.startsWith('redirect=');
  if (keep) return { query: rawQuery, changed: false };
  return { query: pairs.filter((p) => !isRedirect(p)).join('&'), changed: true };
}
