/**
 * Identity provider URLs and addresses the gateway will talk to.
 *
 * Rules:
 * - https, on a host that is not loopback, private, link-local, unspecified,
 *   multicast or reserved (IP literals checked here; names checked after DNS
 *   resolution by {@link isPublicAddress} at connect time);
 * - http and such addresses only with `oidc.insecureAllowPrivateProviders: true`;
 * - no other scheme; no credentials; no fragment.
 */
import { BlockList, isIP } from 'node:net';

/** How strict the checks are. */
export interface ProviderUrlPolicy {
  /** `oidc.insecureAllowPrivateProviders`: http and non-public addresses allowed. */
  insecureAllowPrivate: boolean;
}

const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24],
  ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8], ['2001:db8::', 32], ['100::', 64],
] as const) blocked.addSubnet(net, prefix, 'ipv6');

/** True when an IP address is a public unicast address (IPv4-mapped IPv6 judged as IPv4). */
export function isPublicAddress(address: string): boolean {
  const ip = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(ip);
  if (family === 4) return !blocked.check(ip, 'ipv4');
  if (family !== 6) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return !blocked.check(mapped[1]!, 'ipv4');
  return !blocked.check(ip, 'ipv6');
}

/** True for a host name that always means this machine. */
function isLocalName(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost');
}

/**
 * Checks an identity provider URL (before any DNS resolution).
 * @returns the reason it is refused, or undefined when it is fine.
 */
export function checkProviderUrl(value: string, policy: ProviderUrlPolicy): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not a URL';
  }
  if (url.username || url.password) return 'must not contain credentials';
  if (url.hash) return 'must not contain a fragment';
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return `uses the unsupported scheme ${url.protocol}`;
  if (policy.insecureAllowPrivate) return undefined;
  if (url.protocol === 'http:') return 'uses http (https is required; oidc.insecureAllowPrivateProviders allows http)';
  const host = url.hostname.toLowerCase().replace(/\.$/, '');
  const literal = host.replace(/^\[|\]$/g, '');
  if (isLocalName(host) || (isIP(literal) !== 0 && !isPublicAddress(literal))) {
    return 'is on a loopback, private or link-local address (oidc.insecureAllowPrivateProviders allows it)';
  }
  return undefined;
}
