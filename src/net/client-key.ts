/**
 * The key that stands for one client when the gateway shares something out per client.
 *
 * Rules: an IPv4 address is its own key; an IPv4-mapped IPv6 address is the IPv4
 * address; any other IPv6 address counts by its /64 (one subscriber usually holds a
 * whole /64, so per-address limits would not hold); anything unparseable is kept as
 * given, lower-cased.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** The per-client key of an address: IPv4 as is, IPv6 by its /64 prefix. */
export function clientKey(address: string | undefined): string {
  if (!address) return '';
  const zone = address.indexOf('%');
  const ip = (zone < 0 ? address : address.slice(0, zone)).toLowerCase();
  if (isIPv4(ip)) return ip;
  if (!isIPv6(ip)) return ip;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
  if (mapped && isIPv4(mapped[1]!)) return mapped[1]!;
  return `${expandIPv6(ip).slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, without leading zeros. */
function expandIPv6(ip: string): string[] {
  let text = ip;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  const middle = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...middle, ...right].map((g) => (parseInt(g, 16) || 0).toString(16));
}
