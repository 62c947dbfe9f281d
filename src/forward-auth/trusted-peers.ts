/**
 * Which peers may describe a request: the addresses and CIDR ranges of
 * `public.trustedProxies`, matched on the connection's own address (never on a
 * forwarded one). IPv4-mapped IPv6 peers match their IPv4 entries.
 */
import { BlockList, isIP } from 'node:net';

/** Peer addresses remembered with their answer. */
const KNOWN_PEERS_MAX = 1024;

/** Tells whether a connection's peer address is a trusted proxy. */
export type PeerCheck = (peer: string | undefined) => boolean;

/** Builds the check for a list of addresses and CIDR ranges (empty: nobody). */
export function trustedPeers(entries: readonly string[]): PeerCheck {
  const list = new BlockList();
  for (const entry of entries) {
    const [addr, bits] = entry.split('/') as [string, string | undefined];
    const family = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(addr, family);
    else list.addSubnet(addr, Number(bits), family);
  }
  const check = (peer: string) => {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(peer);
    if (mapped) return list.check(mapped[1]!, 'ipv4');
    return list.check(peer, isIP(peer) === 6 ? 'ipv6' : 'ipv4');
  };
  // The same few proxies ask on every request; BlockList.check builds a native address each time.
  const known = new Map<string, boolean>();
  return (peer) => {
    if (!peer || entries.length === 0) return false;
    let ok = known.get(peer);
    if (ok === undefined) {
      ok = check(peer);
      if (known.size >= KNOWN_PEERS_MAX) known.clear();
      known.set(peer, ok);
    }
    return ok;
  };
}
