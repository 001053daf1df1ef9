/**
 * The two address families of a lease. A record holds at most one subnet and one public
 * address per family: an IPv4-only cluster's records carry `subnet` (and `publicIp`), an
 * IPv6-only cluster's `ipv6Subnet` (and `publicIpv6`), a dual-stack cluster's both. Each
 * family's subnets are allocated from that family's range with the same claim rule; one
 * claimedAt dates the record's claim on all of its subnets.
 */
import type { Family } from "../net/cidr.ts";
import type { SubnetRange } from "./record-validate.ts";
import type { Lease } from "./types.ts";

export type { Family } from "../net/cidr.ts";

/** The families a node allocates in, each with its range (net-conf's enabled families). */
export type LeaseRanges = Partial<Record<Family, SubnetRange>>;

/** One subnet per family, e.g. the subnets a claim would like to keep. */
export type FamilySubnets = Partial<Record<Family, string>>;

export const FAMILIES: readonly Family[] = [4, 6];

/** The enabled families of `ranges`, IPv4 first. */
export const familiesOf = (ranges: LeaseRanges): Family[] => FAMILIES.filter((f) => ranges[f] !== undefined);

/** `l`'s subnet of family `f`, if it has one. */
export const subnetOf = (l: Pick<Lease, "subnet" | "ipv6Subnet">, f: Family): string | undefined => (f === 4 ? l.subnet : l.ipv6Subnet);

/** `l`'s public (underlay) address of family `f`, if it has one. */
export const publicIpOf = (l: Pick<Lease, "publicIp" | "publicIpv6">, f: Family): string | undefined => (f === 4 ? l.publicIp : l.publicIpv6);

/** Every subnet `l` claims, IPv4 first. */
export function subnetsOf(l: Pick<Lease, "subnet" | "ipv6Subnet">): string[] {
  const out: string[] = [];
  if (l.subnet !== undefined) out.push(l.subnet);
  if (l.ipv6Subnet !== undefined) out.push(l.ipv6Subnet);
  return out;
}

/** The family of a canonical subnet or address text (IPv6 text has a colon). */
export const familyOfText = (text: string): Family => (text.includes(":") ? 6 : 4);

/** `{subnet, ipv6Subnet}` fields for the given subnets (absent ones left out). */
export function subnetFields(s: FamilySubnets): Pick<Lease, "subnet" | "ipv6Subnet"> {
  return { ...(s[4] !== undefined ? { subnet: s[4] } : {}), ...(s[6] !== undefined ? { ipv6Subnet: s[6] } : {}) };
}

/** `l`'s subnets as a FamilySubnets. */
export const familySubnets = (l: Pick<Lease, "subnet" | "ipv6Subnet">): FamilySubnets => ({
  ...(l.subnet !== undefined ? { 4: l.subnet } : {}),
  ...(l.ipv6Subnet !== undefined ? { 6: l.ipv6Subnet } : {}),
});

/** The subnets of a lease for messages and logs: "10.244.3.0/24", or "10.244.3.0/24 + fd00:10:244:3::/64". */
export const describeSubnets = (l: Pick<Lease, "subnet" | "ipv6Subnet">): string => subnetsOf(l).join(" + ") || "no subnet";

/** The public addresses of a lease for messages: "192.0.2.11", "2001:db8::11" or both. */
/** The record fields for the public addresses a node has (absent ones left out). */
export function publicIpFields(publicIp: string | undefined, publicIpv6: string | undefined): Pick<Lease, "publicIp" | "publicIpv6"> {
  return { ...(publicIp !== undefined ? { publicIp } : {}), ...(publicIpv6 !== undefined ? { publicIpv6 } : {}) };
}

export const describePublicIps = (l: Pick<Lease, "publicIp" | "publicIpv6">): string => [l.publicIp, l.publicIpv6].filter((x) => x !== undefined).join(" / ") || "no public address";

/** The IP of a gossip address "ip:port" or "[ipv6]:port". */
export function hostOfAddr(addr: string): string {
  const host = addr.slice(0, addr.lastIndexOf(":"));
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}
