/**
 * Host names: normalising `Host` headers and configured names, and telling base,
 * vanity and custom hosts apart.
 *
 * Rules:
 * - A host is compared only in its normal form: lower-case ASCII (IDN converted to
 *   punycode with UTS #46, as browsers do), without port and without one trailing dot.
 * - Refused outright, before any conversion: empty input, whitespace, control and
 *   format characters (zero-width, bidi), userinfo `@`, path and query characters
 *   `/ \ ? #` and their lookalikes (`∕` U+2215, `⁄` U+2044...), `%` (the IDN
 *   converter would percent-decode it), brackets outside an
 *   IPv6 literal, more than one `:` outside brackets, an empty, non-numeric or
 *   out-of-range port.
 * - After conversion every label is 1 to 63 characters of `a-z 0-9 - _` and the
 *   whole name at most 253 characters: `a..b`, a leading dot or two trailing dots fail.
 * - An IPv4 address is accepted only in canonical dotted-decimal form: `127.1`,
 *   `0x7f.0.0.1` or `0177.0.0.1` would silently become `127.0.0.1` otherwise.
 * - IPv6 only in brackets, canonicalised (`[0:0:0:0:0:0:0:1]` is `[::1]`), no zone ID.
 * - Vanity hosts are exactly one extra label on the base domain, and that label must
 *   be a valid tenant ID; suffix matching is label-aware (`evilml.example.com` is
 *   not under `ml.example.com`).
 */

import { isIPv4 } from 'node:net';
import { domainToASCII } from 'node:url';
import { isValidTenantId } from './tenant-id.js';

const MAX_RAW_LENGTH = 1024;
const MAX_NAME_LENGTH = 253;
const ASCII_NAME = /^[a-z0-9_-]{1,63}(?:\.[a-z0-9_-]{1,63})*$/;
// Besides ASCII separators: slash and backslash lookalikes that UTS #46 lets through as
// valid (IDNA2008 disallows them), the `evil.example∕ml.example.com` phishing shape.
const FORBIDDEN_ANYWHERE = /[\s@/\\?#%\p{Cc}\p{Cf}\p{Z}\p{Co}\p{Cn}\u2044\u2215\u2216\u2571\u2572\u29f5\u29f8\u29f9]/u;
const BRACKETED = /^\[([0-9A-Fa-f:.]{2,45})\](?::([^:]*))?$/;
const PORT = /^[0-9]{1,5}$/;

/** Where a normalised host stands with respect to the gateway's own hosts. */
export type HostClassification =
  | { kind: 'base' }
  | { kind: 'vanity'; tenant: string }
  | { kind: 'custom'; host: string };

/** What {@link classifyHost} needs to know about the deployment. */
export interface HostClassificationOptions {
  /** Normalised base hosts: public.url's host and `tenancy.baseDomain`. */
  baseHosts: ReadonlySet<string>;
  /** Normalised `tenancy.baseDomain`, e.g. `ml.example.com`. */
  baseDomain: string;
}

function validPort(port: string): boolean {
  if (!PORT.test(port)) return false;
  const n = Number(port);
  return n >= 1 && n <= 65535;
}

function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/** Converts a bare name (no port, no brackets) to its normal form. */
function normalizeName(name: string): string | undefined {
  if (name.length === 0) return undefined;
  let ascii = domainToASCII(name);
  if (ascii === '') return undefined;
  if (ascii.endsWith('.')) ascii = ascii.slice(0, -1);
  if (ascii.length === 0 || ascii.length > MAX_NAME_LENGTH) return undefined;
  if (!ASCII_NAME.test(ascii)) return undefined;
  if (isIPv4(ascii)) {
    const literal = asciiLower(name.endsWith('.') ? name.slice(0, -1) : name);
    if (literal !== ascii) return undefined;
  }
  return ascii;
}

function normalizeIPv6(address: string): string | undefined {
  try {
    const hostname = new URL(`http://[${address}]/`).hostname;
    return hostname.startsWith('[') ? hostname : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Normalises a `Host` header value (or the host part of a configured URL).
 *
 * @param raw the header value as received: may carry a port, a trailing dot, upper
 *   case, Unicode (IDN) or a bracketed IPv6 literal
 * @returns the lower-case ASCII host without port and trailing dot (IPv6 keeps its
 *   brackets, as in `URL.hostname`), or `undefined` when the value is malformed
 */
export function normalizeHost(raw: string): string | undefined {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > MAX_RAW_LENGTH) return undefined;
  if (FORBIDDEN_ANYWHERE.test(raw)) return undefined;

  if (raw.startsWith('[')) {
    const m = BRACKETED.exec(raw);
    if (!m) return undefined;
    const port = m[2];
    if (port !== undefined && !validPort(port)) return undefined;
    return normalizeIPv6(m[1] ?? '');
  }
  if (raw.includes('[') || raw.includes(']')) return undefined;

  const parts = raw.split(':');
  if (parts.length > 2) return undefined;
  const [name = '', port] = parts;
  if (port !== undefined && !validPort(port)) return undefined;
  return normalizeName(name);
}

/**
 * Normalises a domain name: an email domain, or a host from configuration or the admin
 * API. Same rules as {@link normalizeHost}, but no port and no IP address (IPv4 or
 * bracketed IPv6) is accepted: a domain is a name.
 *
 * @returns the lower-case ASCII name without trailing dot, or `undefined`
 */
export function normalizeDomain(raw: string): string | undefined {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > MAX_RAW_LENGTH) return undefined;
  if (FORBIDDEN_ANYWHERE.test(raw)) return undefined;
  if (/[:[\]]/.test(raw)) return undefined;
  const name = normalizeName(raw);
  if (name === undefined || isIPv4(name)) return undefined;
  return name;
}

/**
 * Tells base, vanity and custom hosts apart.
 *
 * @param host a host already normalised with {@link normalizeHost}
 * @param opts the normalised base hosts and base domain
 * @returns `base` when the host is one of `baseHosts`; `vanity` when it is exactly
 *   `<label>.<baseDomain>` and the label is a valid tenant ID (the tenant is that
 *   label, lower-case); otherwise `custom`, which the caller looks up among the
 *   tenants' custom hosts. Deeper names (`a.b.<baseDomain>`) are `custom`.
 */
export function classifyHost(host: string, opts: HostClassificationOptions): HostClassification {
  if (opts.baseHosts.has(host)) return { kind: 'base' };
  const suffix = `.${opts.baseDomain}`;
  if (opts.baseDomain.length > 0 && host.length > suffix.length && host.endsWith(suffix)) {
    const label = host.slice(0, -suffix.length);
    if (!label.includes('.') && isValidTenantId(label)) return { kind: 'vanity', tenant: label };
  }
  return { kind: 'custom', host };
}

/**
 * Whether a normalised host is a loopback address: exactly `localhost`, an address in
 * 127.0.0.0/8, or `::1` (with or without brackets). Names under `.localhost` are not
 * counted: they resolve through DNS like any other name.
 */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost' || host === '[::1]' || host === '::1') return true;
  return isIPv4(host) && host.startsWith('127.');
}
