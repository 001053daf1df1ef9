/**
 * Which underlay address a WireGuard peer is reached at, per flannel's Modes: `ipv4` and
 * `ipv6` name the family; `auto` takes the family when only one of the peer's addresses
 * has a counterpart on this node, and when both do it follows flannel's preference: the
 * IPv4 address unless it is private (RFC 1918) and the IPv6 addresses of both ends are
 * not (fc00::/7), since a public IPv4 address is the likeliest to be reachable.
 */
import { contains, type Family, parseCidr, parseIp } from "../net/cidr.ts";

const PRIVATE = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"].map(parseCidr);

/** RFC 1918 and unique local addresses, as Go's net.IP.IsPrivate (flannel's test) counts them. */
export const isPrivateAddress = (ip: string): boolean => {
  const a = parseIp(ip);
  return PRIVATE.some((p) => p.family === a.family && contains(p, a));
};

export type EndpointMode = Family | "auto";

export interface Addresses {
  publicIp?: string;
  publicIpv6?: string;
}

/**
 * "ip:port" / "[ip6]:port" for `peer` as seen from `self`, or why there is none: the
 * family the mode names is missing on either end.
 */
export function peerEndpoint(mode: EndpointMode, self: Addresses, peer: Addresses, port: number): { endpoint: string } | { problem: string } {
  const at = (f: Family) => (f === 4 ? { endpoint: `${peer.publicIp}:${port}` } : { endpoint: `[${peer.publicIpv6}]:${port}` });
  const has = (a: Addresses, f: Family) => (f === 4 ? a.publicIp : a.publicIpv6) !== undefined;
  if (mode !== "auto") {
    if (!has(peer, mode)) return { problem: `its lease has no IPv${mode} public address` };
    if (!has(self, mode)) return { problem: `this node has no IPv${mode} underlay address` };
    return at(mode);
  }
  const both = ([4, 6] as const).filter((f) => has(peer, f) && has(self, f));
  if (both.length === 0) return { problem: "it shares no underlay address family with this node" };
  if (both.length === 1) return at(both[0]!);
  if (!isPrivateAddress(peer.publicIp!)) return at(4);
  if (!isPrivateAddress(peer.publicIpv6!) && !isPrivateAddress(self.publicIpv6!)) return at(6);
  return at(4);
}
