/**
 * Underlay interface discovery for the agent (flannel's --iface / --public-ip defaults),
 * answered from the {@link Netlink} port so it is testable with a fake.
 */
import { parseIp } from "../net/cidr.ts";
import type { Netlink } from "./netlink.ts";

/** Device of the IPv4 default route (main table); with several, the first listed. */
export function defaultRouteInterface(nl: Netlink): string | undefined {
  return nl.listRoutes().find((r) => r.dst === "0.0.0.0/0" && r.dev !== undefined)?.dev;
}

/** First IPv4 address (without prefix) configured on `dev`. */
export function firstIPv4(nl: Netlink, dev: string): string | undefined {
  const a = nl.listAddresses(dev)[0];
  return a ? a.cidr.slice(0, a.cidr.indexOf("/")) : undefined;
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
  /** The address peers use to reach this node. */
  ip: string;
  mtu: number;
}

/**
 * Resolves the underlay from optional flags: `iface` alone → its first IPv4; `publicIp`
 * alone → the device carrying it, or the default route's device when the address is not
 * local (behind NAT); neither → the default route's device and its first IPv4.
 * Throws saying which piece could not be found.
 */
export function resolveUnderlay(nl: Netlink, { iface, publicIp }: { iface?: string; publicIp?: string } = {}): Underlay {
  let dev = iface;
  if (dev === undefined && publicIp !== undefined) dev = interfaceForAddress(nl, publicIp);
  if (dev === undefined) dev = defaultRouteInterface(nl);
  if (dev === undefined) throw new Error("find underlay interface: no IPv4 default route; set --iface");
  const mtu = interfaceMtu(nl, dev);
  if (mtu === undefined) throw new Error(`find underlay interface: interface ${dev} does not exist`);
  const ip = publicIp ?? firstIPv4(nl, dev);
  if (ip === undefined) throw new Error(`find underlay address: interface ${dev} has no IPv4 address; set --public-ip`);
  return { iface: dev, ip, mtu };
}
