/**
 * Turns the peers a backend is handed into a clean, deterministic list: bad records are
 * reported as problems instead of reaching the kernel, the own subnets are skipped, a
 * family the cluster does not run is dropped, and of two peers claiming one subnet (the
 * lease layer should never allow it) the first by name wins so every run picks the same
 * one. Also the pod families of a node and the on-link prefixes of its underlay.
 */
import { bitsOf, canonicalCidr, contains, type Family, formatCidr, isNetworkAddress, networkOf, parseCidr, parseIp } from "../net/cidr.ts";
import type { BackendDeps, PeerLease } from "./backend.ts";
import { isUsableMac } from "../net/mac.ts";

export interface CheckedPeer extends PeerLease {
  /** The IPv4 subnet's network address, the next hop inside the overlay (".0"). */
  gatewayIp?: string;
  /** The IPv6 subnet's network address ("fd00:10:244:2::"). */
  gatewayIpv6?: string;
}

/** One pod family a node runs: its pod network and its own subnet. */
export interface PodFamily {
  family: Family;
  network: string;
  ownSubnet: string;
}

/** The pod families of a node's backend deps, IPv4 first. */
export function podFamilies(d: Pick<BackendDeps, "network" | "ownSubnet" | "ipv6Network" | "ownIpv6Subnet">): PodFamily[] {
  const out: PodFamily[] = [];
  if (d.network !== undefined && d.ownSubnet !== undefined) out.push({ family: 4, network: d.network, ownSubnet: d.ownSubnet });
  if (d.ipv6Network !== undefined && d.ownIpv6Subnet !== undefined) out.push({ family: 6, network: d.ipv6Network, ownSubnet: d.ownIpv6Subnet });
  return out;
}

/** The pod networks of a node (what its weft routes may point into). */
export const podNetworks = (d: Pick<BackendDeps, "network" | "ownSubnet" | "ipv6Network" | "ownIpv6Subnet">): string[] => podFamilies(d).map((p) => p.network);

/** A peer's subnet of family `f`. */
export const peerSubnet = (p: PeerLease, f: Family): string | undefined => (f === 4 ? p.subnet : p.ipv6Subnet);
/** A peer's underlay address of family `f`. */
export const peerPublicIp = (p: Pick<PeerLease, "publicIp" | "publicIpv6">, f: Family): string | undefined => (f === 4 ? p.publicIp : p.publicIpv6);
/** A checked peer's overlay next hop for its subnet of family `f`. */
export const peerGateway = (p: CheckedPeer, f: Family): string | undefined => (f === 4 ? p.gatewayIp : p.gatewayIpv6);

/** The address part of a subnet's text ("10.244.2.0/24" → "10.244.2.0"). */
const addressOf = (subnet: string): string => subnet.slice(0, subnet.indexOf("/"));

export function checkPeers(peers: PeerLease[], opts: Pick<BackendDeps, "network" | "ownSubnet" | "ipv6Network" | "ownIpv6Subnet"> & { needMac: boolean }): { peers: CheckedPeer[]; problems: string[] } {
  const families = podFamilies(opts).map((p) => ({ ...p, net: parseCidr(p.network), own: canonicalCidr(p.ownSubnet) }));
  const problems: string[] = [];
  const bySubnet = new Map<string, string>();
  const out: CheckedPeer[] = [];
  const sorted = [...peers].sort((a, b) => (a.nodeName < b.nodeName ? -1 : a.nodeName > b.nodeName ? 1 : 0));
  for (const p of sorted) {
    const who = `peer ${p.nodeName}`;
    const checked: CheckedPeer = { nodeName: p.nodeName, ...(p.vtepMac !== undefined ? { vtepMac: p.vtepMac } : {}), ...(p.publicKey !== undefined ? { publicKey: p.publicKey } : {}) };
    let bad = false;
    for (const [f, field] of [[4, "publicIp"], [6, "publicIpv6"]] as const) {
      const ip = p[field];
      if (ip === undefined) continue;
      try {
        if (parseIp(ip).family !== f) throw new Error(`not IPv${f}`);
        checked[field] = ip;
      } catch (e) {
        problems.push(`${who}: skipped, ${field} ${JSON.stringify(ip)}: ${(e as Error).message}`);
        bad = true;
      }
    }
    if (bad) continue;
    if (checked.publicIp === undefined && checked.publicIpv6 === undefined) {
      problems.push(`${who}: skipped, its lease has no public address`);
      continue;
    }
    for (const fam of families) {
      const text = peerSubnet(p, fam.family);
      if (text === undefined) continue;
      let subnet: string;
      try {
        const c = parseCidr(text);
        if (c.family !== fam.family) throw new Error(`not IPv${fam.family}`);
        if (!contains(fam.net, c)) throw new Error(`not inside ${fam.family === 4 ? "Network" : "IPv6Network"} ${fam.network}`);
        if (!isNetworkAddress(c)) throw new Error(`host bits set (expected ${formatCidr(networkOf(c))})`);
        subnet = text;
      } catch (e) {
        problems.push(`${who}: skipped, subnet ${JSON.stringify(text)}: ${(e as Error).message}`);
        continue;
      }
      if (subnet === fam.own) continue;
      const prior = bySubnet.get(subnet);
      if (prior) {
        problems.push(`${who}: skipped, subnet ${subnet} is also claimed by ${prior}`);
        continue;
      }
      bySubnet.set(subnet, p.nodeName);
      if (fam.family === 4) {
        checked.subnet = subnet;
        checked.gatewayIp = addressOf(subnet);
      } else {
        checked.ipv6Subnet = subnet;
        checked.gatewayIpv6 = addressOf(subnet);
      }
    }
    if (checked.subnet === undefined && checked.ipv6Subnet === undefined) {
      if (peerSubnet(p, 4) === undefined && peerSubnet(p, 6) === undefined) problems.push(`${who}: skipped, its lease has no subnet`);
      continue;
    }
    if (opts.needMac && (p.vtepMac === undefined || !isUsableMac(p.vtepMac))) {
      problems.push(`${who}: skipped, vtepMac ${JSON.stringify(p.vtepMac)} is not a unicast MAC`);
      continue;
    }
    out.push(checked);
  }
  return { peers: out, problems };
}

/** The on-link prefixes of an interface's addresses of one family (host-gw / DirectRouting reachability). */
export function onLinkPrefixes(addresses: { cidr: string }[], family: Family = 4) {
  return addresses.map((a) => parseCidr(a.cidr)).filter((c) => c.family === family && c.prefix < bitsOf(family));
}

export function isOnLink(prefixes: ReturnType<typeof onLinkPrefixes>, ip: string): boolean {
  const a = parseIp(ip);
  return prefixes.some((p) => contains(p, a));
}

/**
 * The address family over which this node reaches a peer on the underlay, for pod
 * family `pod`: the same family when both ends have an underlay address of it,
 * otherwise the other family when both have that; undefined when they share none.
 */
export function underlayFor(pod: Family, self: { publicIp?: string; publicIpv6?: string }, peer: PeerLease): Family | undefined {
  const both = (f: Family) => peerPublicIp(self, f) !== undefined && peerPublicIp(peer, f) !== undefined;
  if (both(pod)) return pod;
  const other: Family = pod === 4 ? 6 : 4;
  return both(other) ? other : undefined;
}
