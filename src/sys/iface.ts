/**
 * Underlay interface discovery for the agent (flannel's --iface / --public-ip /
 * --public-ipv6 defaults), answered from the {@link Netlink} port so it is testable with
 * a fake.
 */
import { parseIp, tryParseIp } from "../net/cidr.ts";
import { ipv6UnicastProblem } from "../net/ipv6.ts";
import type { Netlink } from "./netlink.ts";

/** Device of the IPv4 default route (main table), or of the IPv6 one with `family` 6; with several, the first listed. */
export function defaultRouteInterface(nl: Netlink, family: 4 | 6 = 4): string | undefined {
  const dst = family === 4 ? "0.0.0.0/0" : "::/0";
  return nl.listRoutes().find((r) => r.dst === dst && r.dev !== undefined)?.dev;
}

/**
 * The family of `ip` when it can be the node's underlay address, else undefined: any
 * IPv4 address; an IPv6 one only if global (not link-local, nor any other address that
 * could not be reached from another machine: src/net/ipv6.ts). Start-up and the
 * underlay watch pick addresses by this one rule.
 */
export function underlayFamily(ip: string): 4 | 6 | undefined {
  const parsed = tryParseIp(ip);
  if (parsed?.family !== 6) return parsed?.family;
  return ipv6UnicastProblem(parsed.addr) ? undefined : 6;
}

/** First IPv4 address (without prefix) configured on `dev`. */
export function firstIPv4(nl: Netlink, dev: string): string | undefined {
  const a = nl.listAddresses(dev).find((x) => !x.cidr.includes(":"));
  return a ? a.cidr.slice(0, a.cidr.indexOf("/")) : undefined;
}

/**
 * First global IPv6 address (without prefix) configured on `dev`: not link-local, nor any
 * other address that could not be reached from another machine (src/net/ipv6.ts).
 */
export function firstGlobalIPv6(nl: Netlink, dev: string): string | undefined {
  for (const a of nl.listAddresses(dev)) {
    const ip = a.cidr.slice(0, a.cidr.indexOf("/"));
    if (underlayFamily(ip) === 6) return ip;
  }
  return undefined;
}

/** MTU of `dev`, or undefined when the device does not exist. */
export function interfaceMtu(nl: Netlink, dev: string): number | undefined {
  return nl.getLink(dev)?.mtu;
}

/** The device that carries IPv4 address `ip`. */
export function interfaceForAddress(nl: Netlink, ip: string): string | undefined {
  const want = parseIp(ip);
  return nl.listAddresses().find((a) => {
    const have = parseIp(a.cidr.slice(0, a.cidr.indexOf("/")));
    return have.family === want.family && have.addr === want.addr;
  })?.dev;
}

export interface Underlay {
  iface: string;
  /** The IPv4 address peers use to reach this node, if it has one. */
  ip?: string;
  /** Its IPv6 address, when IPv6 is wanted and it has one. */
  ipv6?: string;
  mtu: number;
}

export interface UnderlayWant {
  iface?: string;
  publicIp?: string;
  publicIpv6?: string;
  /** Look for an IPv6 address too (IPv6 pod networks are enabled). */
  ipv6?: boolean;
}

/**
 * Resolves the underlay from optional flags: `iface` → that device; else the device
 * carrying `publicIp` (or `publicIpv6`), or the default route's device when the address
 * is not local (behind NAT); else the IPv4 default route's device, else (with `ipv6`) the
 * IPv6 default route's. Its addresses: `publicIp`, else the device's first IPv4; with
 * `ipv6`, `publicIpv6`, else its first global IPv6. At least one address must be found.
 * Throws saying which piece could not be found.
 */
export function resolveUnderlay(nl: Netlink, want: UnderlayWant = {}): Underlay {
  const { iface, publicIp, publicIpv6, ipv6 = publicIpv6 !== undefined } = want;
  let dev = iface;
  if (dev === undefined && publicIp !== undefined) dev = interfaceForAddress(nl, publicIp);
  if (dev === undefined && publicIpv6 !== undefined) dev = interfaceForAddress(nl, publicIpv6);
  if (dev === undefined) dev = defaultRouteInterface(nl, 4) ?? (ipv6 ? defaultRouteInterface(nl, 6) : undefined);
  if (dev === undefined) throw new Error(`find underlay interface: no ${ipv6 ? "IPv4 or IPv6" : "IPv4"} default route; set --iface`);
  const mtu = interfaceMtu(nl, dev);
  if (mtu === undefined) throw new Error(`find underlay interface: interface ${dev} does not exist`);
  const ip = publicIp ?? firstIPv4(nl, dev);
  const ip6 = ipv6 ? (publicIpv6 ?? firstGlobalIPv6(nl, dev)) : undefined;
  if (ip === undefined && ip6 === undefined) {
    throw new Error(ipv6 ? `find underlay address: interface ${dev} has neither an IPv4 nor a global IPv6 address; set --public-ip or --public-ipv6` : `find underlay address: interface ${dev} has no IPv4 address; set --public-ip`);
  }
  return { iface: dev, ...(ip !== undefined ? { ip } : {}), ...(ip6 !== undefined ? { ipv6: ip6 } : {}), mtu };
}
