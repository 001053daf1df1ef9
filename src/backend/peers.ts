/**
 * Turns the peers a backend is handed into a clean, deterministic list: bad records are
 * reported as problems instead of reaching the kernel, the own subnet is skipped, and of
 * two peers claiming one subnet (the lease layer should never allow it) the first by
 * name wins so every run picks the same one.
 */
import { canonicalCidr, contains, formatCidr, isNetworkAddress, networkOf, parseCidr, parseIp } from "../net/cidr.ts";
import type { PeerLease } from "./backend.ts";
import { isUsableMac } from "../net/mac.ts";

export interface CheckedPeer extends PeerLease {
  /** The subnet's network address, the next hop inside the overlay (".0"). */
  gatewayIp: string;
}

export function checkPeers(peers: PeerLease[], opts: { network: string; ownSubnet: string; needMac: boolean }): { peers: CheckedPeer[]; problems: string[] } {
  const net = parseCidr(opts.network);
  const own = canonicalCidr(opts.ownSubnet);
  const problems: string[] = [];
  const bySubnet = new Map<string, CheckedPeer>();
  const sorted = [...peers].sort((a, b) => (a.nodeName < b.nodeName ? -1 : a.nodeName > b.nodeName ? 1 : 0));
  for (const p of sorted) {
    const who = `peer ${p.nodeName}`;
    let subnet: string;
    try {
      const c = parseCidr(p.subnet);
      if (c.family !== 4) throw new Error("not IPv4");
      if (!contains(net, c)) throw new Error(`not inside Network ${opts.network}`);
      if (!isNetworkAddress(c)) throw new Error(`host bits set (expected ${formatCidr(networkOf(c))})`);
      subnet = p.subnet;
    } catch (e) {
      problems.push(`${who}: skipped, subnet ${JSON.stringify(p.subnet)}: ${(e as Error).message}`);
      continue;
    }
    if (subnet === own) continue;
    try {
      if (parseIp(p.publicIp).family !== 4) throw new Error("not IPv4");
    } catch (e) {
      problems.push(`${who}: skipped, publicIp ${JSON.stringify(p.publicIp)}: ${(e as Error).message}`);
      continue;
    }
    if (opts.needMac && (p.vtepMac === undefined || !isUsableMac(p.vtepMac))) {
      problems.push(`${who}: skipped, vtepMac ${JSON.stringify(p.vtepMac)} is not a unicast MAC`);
      continue;
    }
    const prior = bySubnet.get(subnet);
    if (prior) {
      problems.push(`${who}: skipped, subnet ${subnet} is also claimed by ${prior.nodeName}`);
      continue;
    }
    bySubnet.set(subnet, { ...p, subnet, gatewayIp: subnet.slice(0, subnet.indexOf("/")) });
  }
  return { peers: [...bySubnet.values()], problems };
}

/** The on-link IPv4 prefixes of an interface's addresses (host-gw / DirectRouting reachability). */
export function onLinkPrefixes(addresses: { cidr: string }[]) {
  return addresses.map((a) => parseCidr(a.cidr)).filter((c) => c.family === 4 && c.prefix < 32);
}

export function isOnLink(prefixes: ReturnType<typeof onLinkPrefixes>, ip: string): boolean {
  const a = parseIp(ip);
  return prefixes.some((p) => contains(p, a));
}
