/**
 * What makes a lease record acceptable anywhere in the cluster: the tuple schema, the pod
 * network range of each subnet, and the public-address rules of both families. Rules that
 * depend on the receiving node (its own IPs and MAC, what its gossip layer knows) are
 * routing.ts.
 *
 * A subnet of a family the receiver does not run (its net-conf does not enable it) is
 * checked for form only and carried: while a cluster enables IPv6 node by node, a node
 * still on IPv4 keeps its peers' IPv6 subnets in their records instead of dropping the
 * records, and a node already on dual-stack keeps records that have no IPv6 subnet yet.
 */
import type { NetConf } from "../net-conf.ts";
import { type Cidr, contains, formatCidr, formatIp, ipFromBytes, isNetworkAddress, parseCidr, parseIp, sizeOf } from "../net/cidr.ts";
import { ipv4ToU32, u32ToIpv4 } from "../net/ipv4.ts";
import { ipv6UnicastProblem } from "../net/ipv6.ts";
import { describeSubnets, type LeaseRanges } from "./families.ts";
import { cidrText, fromTuple, isRecordTuple, noIpv4Subnet, type RecordTuple, recordTupleIssue } from "./record-codec.ts";
import { parseExt } from "./record-ext.ts";
import { internedRecord, type KnownRecord } from "./record-intern.ts";
import type { Lease } from "./types.ts";

/**
 * Why `ip` (IPv4 as a uint32) cannot be a node's public (underlay) address, or undefined.
 * Peers send VXLAN and udp-backend packets to it and route host-gw next hops through it,
 * so it must be a unicast address of another machine: not 0.0.0.0/8, loopback (a local
 * process could bind the port and receive pod traffic), link-local (not routed off the
 * link, and home of cloud metadata services such as 169.254.169.254), multicast or the
 * limited broadcast address. 240.0.0.0/4 stays allowed: Linux treats it as unicast and
 * some networks use it as private space.
 */
export function publicIpProblem(ip: number): string | undefined {
  const a = ip >>> 24;
  if (a === 0) return "in 0.0.0.0/8 (this network)";
  if (a === 127) return "a loopback address";
  if (ip >>> 16 === 0xa9fe) return "a link-local address";
  if (a >= 224 && a < 240) return "a multicast address";
  if (ip === 0xffffffff) return "the broadcast address";
  return undefined;
}

/**
 * Why `ip` (an IPv6 address) cannot be a node's public address, or undefined: the same
 * reasons as for IPv4 (src/net/ipv6.ts says which ranges). Unique local (fc00::/7) and
 * global unicast addresses, the documentation prefix included, are accepted.
 */
export const publicIpv6Problem = (ip: bigint): string | undefined => ipv6UnicastProblem(ip);

/** The public-address rule of either family, for text; also rejects text that is not an address. */
export function publicIpTextProblem(text: string): string | undefined {
  const v4 = ipv4ToU32(text);
  if (v4 >= 0) return publicIpProblem(v4);
  try {
    const ip = parseIp(text);
    return ip.family === 6 ? publicIpv6Problem(ip.addr) : "not an IP address";
  } catch {
    return "not an IP address";
  }
}

/** The parsed pod-network range a subnet must fall in. */
export interface SubnetRange {
  network: Cidr;
  subnetLen: number;
  min: bigint;
  max: bigint;
}

/** The ranges of the families net-conf enables. */
export function rangesOf(net: NetConf): LeaseRanges {
  const range = (network?: string, subnetLen?: number, min?: string, max?: string): SubnetRange | undefined =>
    network === undefined || subnetLen === undefined || min === undefined || max === undefined
      ? undefined
      : { network: parseCidr(network), subnetLen, min: parseIp(min).addr, max: parseIp(max).addr };
  const v4 = net.enableIPv4 ? range(net.network, net.subnetLen, net.subnetMin, net.subnetMax) : undefined;
  const v6 = net.enableIPv6 ? range(net.ipv6Network, net.ipv6SubnetLen, net.ipv6SubnetMin, net.ipv6SubnetMax) : undefined;
  return { ...(v4 ? { 4: v4 } : {}), ...(v6 ? { 6: v6 } : {}) };
}

/** The range of one family net-conf enables (IPv4 by default); throws when it is not enabled. */
export function rangeOf(net: NetConf, family: 4 | 6 = 4): SubnetRange {
  const r = rangesOf(net)[family];
  if (!r) throw new Error(`net-conf does not enable IPv${family}`);
  return r;
}

/** Why `subnet` is not a valid lease in `range`, or undefined if it is. */
export function subnetProblem(subnet: string, range: SubnetRange): string | undefined {
  let c: Cidr;
  try {
    c = parseCidr(subnet);
  } catch (e) {
    return (e as Error).message;
  }
  if (c.family !== range.network.family) return `subnet ${subnet} is not an IPv${range.network.family} subnet`;
  if (c.prefix !== range.subnetLen) return `subnet ${subnet} is not a /${range.subnetLen}`;
  if (!isNetworkAddress(c)) return `subnet ${subnet} has host bits set`;
  if (!contains(range.network, c)) return `subnet ${subnet} is not inside ${formatCidr(range.network)}`;
  if (formatCidr(c) !== subnet) return `subnet ${subnet} is not in canonical form`;
  if (c.addr < range.min || c.addr > range.max) return `subnet ${subnet} is outside ${c.family === 6 ? "IPv6SubnetMin..IPv6SubnetMax" : "SubnetMin..SubnetMax"}`;
  return undefined;
}

/**
 * Validates wire tuples against the schema, the pod-network range of each subnet and the
 * public-address rules (an address inside the pod network of its family is refused as
 * well: routing pod subnets through it would loop inside the overlay).
 */
export class RecordValidator {
  /** The IPv4 range as plain numbers, for the check every received record goes through (no BigInt, no strings). */
  private readonly v4: { min: number; max: number; len: number } | undefined;
  /** The IPv4 pod network as [first, last] uint32 addresses. */
  private readonly net4: { first: number; last: number } | undefined;

  constructor(readonly ranges: LeaseRanges) {
    const r4 = ranges[4];
    this.v4 = r4 ? { min: Number(r4.min), max: Number(r4.max), len: r4.subnetLen } : undefined;
    this.net4 = r4 ? { first: Number(r4.network.addr), last: Number(r4.network.addr) + 2 ** (32 - r4.network.prefix) - 1 } : undefined;
  }

  /**
   * The lease, or a reason string for rejecting it. With the bytes `raw` was decoded from
   * (bytes[start, end)), a record already made from the same bytes is returned as is
   * (see internedRecord).
   */
  check(raw: unknown, bytes?: Uint8Array, start = 0, end = bytes?.length ?? 0): Lease | string {
    if (!isRecordTuple(raw)) return `malformed record: ${recordTupleIssue(raw)}`;
    const problem = this.tupleProblem(raw);
    return problem ?? (bytes ? internedRecord(raw, bytes, start, end) : fromTuple(raw));
  }

  /** check() for a record found by its bytes (knownRecord): already a valid tuple, so only our ranges are left to check. */
  checkKnown(k: KnownRecord): Lease | string {
    if (k.ext) return this.leaseProblem(k.lease) ?? k.lease;
    return this.ipv4Problem(k.addr, k.len, k.ip, false) ?? k.lease;
  }

  private tupleProblem(t: RecordTuple): string | undefined {
    if (t.length === 12) return this.ipv4Problem(t[4], t[5], t[6], false);
    const ext = parseExt(t[12]);
    if (typeof ext === "string") return `malformed record: [12] ${ext}`;
    const v6 = ext.ipv6Subnet !== undefined;
    if (!v6 && noIpv4Subnet(t[4], t[5])) return "record has no subnet (neither IPv4 nor IPv6)";
    if (t[6] === 0 && !ext.publicIpv6) return "record has no public address (neither IPv4 nor IPv6)";
    return (
      this.ipv4Problem(t[4], t[5], t[6], true) ??
      (ext.ipv6Subnet ? this.ipv6SubnetProblem(ipFromBytes(ext.ipv6Subnet.addr).addr, ext.ipv6Subnet.prefix) : undefined) ??
      (ext.publicIpv6 ? this.ipv6Problem(ipFromBytes(ext.publicIpv6).addr) : undefined)
    );
  }

  /** The checks of a record made before from other bytes, from its fields (records with an extension cell). */
  private leaseProblem(l: Lease): string | undefined {
    if (l.subnet !== undefined) {
      const c = parseCidr(l.subnet);
      const p = this.subnetProblem4(Number(c.addr), c.prefix);
      if (p) return p;
    }
    if (l.publicIp !== undefined) {
      const p = this.ipProblem(ipv4ToU32(l.publicIp));
      if (p) return p;
    }
    if (l.ipv6Subnet !== undefined) {
      const c = parseCidr(l.ipv6Subnet);
      const p = this.ipv6SubnetProblem(c.addr, c.prefix);
      if (p) return p;
    }
    return l.publicIpv6 !== undefined ? this.ipv6Problem(parseIp(l.publicIpv6).addr) : undefined;
  }

  /**
   * The IPv4 cells: subnet and public IP. `optional`: the record has an extension cell,
   * so "no IPv4 subnet" (0/0) and "no IPv4 public address" (0) are allowed (the caller
   * checked it has the IPv6 ones instead).
   */
  private ipv4Problem(addr: number, len: number, ip: number, optional: boolean): string | undefined {
    const noSubnet = optional && noIpv4Subnet(addr, len);
    return (noSubnet ? undefined : this.subnetProblem4(addr, len)) ?? (optional && ip === 0 ? undefined : this.ipProblem(ip));
  }

  /** Why `text` cannot be this node's public address of its family in this cluster ("publicIp … is …"), or undefined. */
  publicIpProblem(text: string): string | undefined {
    const v4 = ipv4ToU32(text);
    if (v4 >= 0) return this.ipProblem(v4);
    try {
      const ip = parseIp(text);
      if (ip.family === 6) return this.ipv6Problem(ip.addr);
    } catch {}
    return `publicIp ${JSON.stringify(text)} is not an IP address`;
  }

  private ipProblem(ip: number): string | undefined {
    const p = publicIpProblem(ip);
    if (p) return `publicIp ${u32ToIpv4(ip)} is ${p}`;
    const n = this.net4;
    if (n && ip >= n.first && ip <= n.last) return `publicIp ${u32ToIpv4(ip)} is inside the pod network ${formatCidr(this.ranges[4]!.network)}`;
    return undefined;
  }

  private ipv6Problem(ip: bigint): string | undefined {
    const text = formatIp({ family: 6, addr: ip });
    const p = publicIpv6Problem(ip);
    if (p) return `publicIpv6 ${text} is ${p}`;
    const r = this.ranges[6];
    if (r && contains(r.network, { family: 6, addr: ip })) return `publicIpv6 ${text} is inside the pod network ${formatCidr(r.network)}`;
    return undefined;
  }

  private subnetProblem4(addr: number, len: number): string | undefined {
    const v4 = this.v4;
    // Without an IPv4 range here the subnet is another node's business: its form only.
    if (!v4) return len >= 1 && len <= 32 && addr % 2 ** (32 - len) === 0 ? undefined : `subnet ${cidrText(addr, len)} is not an IPv4 network address`;
    // The usual case, a valid record, decided on numbers (a uint32 and a length ≤ 32 are
    // exact in doubles); a failure gets its message from the BigInt path below. SubnetMin
    // and SubnetMax lie inside Network (net-conf.ts checks), so within them is inside it.
    const ok = len === v4.len && addr % 2 ** (32 - len) === 0 && addr >= v4.min && addr <= v4.max;
    return ok ? undefined : this.problemText(addr, len);
  }

  private problemText(ip: number, len: number): string | undefined {
    const r = this.ranges[4]!;
    const addr = BigInt(ip);
    const subnet = cidrText(ip, len);
    if (len !== r.subnetLen) return `subnet ${subnet} is not a /${r.subnetLen}`;
    if ((addr & (sizeOf(4, len) - 1n)) !== 0n) return `subnet ${subnet} has host bits set`;
    if (!contains(r.network, { family: 4, addr, prefix: len })) return `subnet ${subnet} is not inside ${formatCidr(r.network)}`;
    if (addr < r.min || addr > r.max) return `subnet ${subnet} is outside SubnetMin..SubnetMax`;
    return undefined;
  }

  private ipv6SubnetProblem(addr: bigint, prefix: number): string | undefined {
    const c = { family: 6 as const, addr, prefix };
    const r = this.ranges[6];
    if (!r) return prefix >= 1 && isNetworkAddress(c) ? undefined : `subnet ${formatCidr(c)} is not an IPv6 network address`;
    return subnetProblem(formatCidr(c), r);
  }
}

/** "lease of n2 (10.244.3.0/24 + fd00:10:244:3::/64)" for messages. */
export const leaseText = (l: Lease): string => `lease of ${l.nodeName} (${describeSubnets(l)})`;
