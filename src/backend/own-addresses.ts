/**
 * Which addresses on weft's own devices are weft's to keep in line. Every address there
 * is, but for the IPv6 link-local ones: the kernel gives a device with IPv6 enabled an
 * fe80:: address of its own (from its MAC), and removing it would only make the kernel
 * add it again.
 */
import { contains, parseCidr } from "../net/cidr.ts";

const LINK_LOCAL = parseCidr("fe80::/10");

/** True for an address the kernel puts on a device by itself (IPv6 link-local). */
export function isKernelAddress(cidr: string): boolean {
  const c = parseCidr(cidr);
  return c.family === 6 && contains(LINK_LOCAL, { family: 6, addr: c.addr });
}
