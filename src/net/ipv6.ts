/**
 * Which IPv6 addresses can be a machine's address on a routed network: the one rule
 * underlay discovery (the node's own address) and lease validation (peers' addresses)
 * share. Pure.
 */
import { type Cidr, contains, parseCidr } from "./cidr.ts";

/** IPv6 ranges that are never a machine's routed unicast address, with why (checked in order). */
const NOT_UNICAST: [Cidr, string][] = (
  [
    ["::/128", "the unspecified address"],
    ["::1/128", "the loopback address"],
    ["::ffff:0:0/96", "an IPv4-mapped address"],
    ["::/96", "an IPv4-compatible address (deprecated)"],
    ["100::/64", "in the discard-only prefix 100::/64"],
    ["fe80::/10", "a link-local address"],
    ["fec0::/10", "a site-local address (deprecated)"],
    ["ff00::/8", "a multicast address"],
  ] as const
).map(([c, why]) => [parseCidr(c), why]);

/**
 * Why `addr` (an IPv6 address) cannot be a node's underlay address, or undefined: not
 * unspecified, loopback, link-local (or the deprecated site-local), multicast, the
 * discard prefix, or an IPv4 address in IPv6 clothing (mapped or compatible: the IPv4
 * rules are the ones that would apply). Unique local (fc00::/7) and global unicast
 * addresses, the documentation prefix included, are fine.
 */
export function ipv6UnicastProblem(addr: bigint): string | undefined {
  const ip = { family: 6 as const, addr };
  for (const [c, why] of NOT_UNICAST) if (contains(c, ip)) return why;
  return undefined;
}

const LINK_LOCAL = parseCidr("fe80::/10");

/**
 * True for an IPv6 link-local address ("fe80::…/64"): the kernel gives every device with
 * IPv6 enabled one of its own (from its MAC), so it is never weft's to add, remove or
 * report as missing.
 */
export function isIpv6LinkLocal(cidr: string): boolean {
  const c = parseCidr(cidr);
  return c.family === 6 && contains(LINK_LOCAL, { family: 6, addr: c.addr });
}
