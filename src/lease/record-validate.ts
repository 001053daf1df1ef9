/**
 * What makes a lease record acceptable anywhere in the cluster: the tuple schema, the pod
 * network range of its subnet, and the public-IP rule. Rules that depend on the receiving
 * node (its own IP and MAC, what its gossip layer knows) are routing.ts.
 */
import { ipv4OnlyNetwork, type NetConf } from "../net-conf.ts";
import { type Cidr, contains, formatCidr, isNetworkAddress, parseCidr, parseIp, sizeOf } from "../net/cidr.ts";
import { ipv4ToU32, u32ToIpv4 } from "../net/ipv4.ts";
import { cidrText, fromTuple, isRecordTuple, type RecordTuple, recordTuple } from "./record-codec.ts";
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

/** publicIpProblem for dotted text; also rejects text that is not an IPv4 address. */
export function publicIpTextProblem(text: string): string | undefined {
  const ip = ipv4ToU32(text);
  return ip < 0 ? "not an IPv4 address" : publicIpProblem(ip);
}

/** The parsed pod-network range a subnet must fall in. */
export interface SubnetRange {
  network: Cidr;
  subnetLen: number;
  min: bigint;
  max: bigint;
}

export function rangeOf(conf: NetConf): SubnetRange {
  const net = ipv4OnlyNetwork(conf);
  return {
    network: parseCidr(net.network),
    subnetLen: net.subnetLen,
    min: parseIp(net.subnetMin).addr,
    max: parseIp(net.subnetMax).addr,
  };
}

/** Why `subnet` is not a valid lease in `range`, or undefined if it is. */
export function subnetProblem(subnet: string, range: SubnetRange): string | undefined {
  let c: Cidr;
  try {
    c = parseCidr(subnet);
  } catch (e) {
    return (e as Error).message;
  }
  if (c.prefix !== range.subnetLen) return `subnet ${subnet} is not a /${range.subnetLen}`;
  if (!isNetworkAddress(c)) return `subnet ${subnet} has host bits set`;
  if (!contains(range.network, c)) return `subnet ${subnet} is not inside ${formatCidr(range.network)}`;
  if (formatCidr(c) !== subnet) return `subnet ${subnet} is not in canonical form`;
  if (c.addr < range.min || c.addr > range.max) return `subnet ${subnet} is outside SubnetMin..SubnetMax`;
  return undefined;
}

/**
 * Validates wire tuples against the schema, the pod-network range and the public-IP
 * rule (publicIpProblem; an address inside the pod network is refused as well: routing
 * pod subnets through it would loop inside the overlay).
 */
export class RecordValidator {
  /** The IPv4 range as plain numbers, for the check every received record goes through (no BigInt, no strings). */
  private readonly v4: { min: number; max: number } | undefined;
  /** The pod network as [first, last] uint32 addresses (IPv4 networks only). */
  private readonly net4: { first: number; last: number } | undefined;

  constructor(readonly range: SubnetRange) {
    this.v4 = range.network.family === 4 ? { min: Number(range.min), max: Number(range.max) } : undefined;
    const n = range.network;
    this.net4 = n.family === 4 ? { first: Number(n.addr), last: Number(n.addr) + 2 ** (32 - n.prefix) - 1 } : undefined;
  }

  /**
   * The lease, or a reason string for rejecting it. With the bytes `raw` was decoded from
   * (bytes[start, end)), a record already made from the same bytes is returned as is
   * (see internedRecord).
   */
  check(raw: unknown, bytes?: Uint8Array, start = 0, end = bytes?.length ?? 0): Lease | string {
    if (!isRecordTuple(raw)) {
      const parsed = recordTuple.safeParse(raw);
      const i = parsed.success ? undefined : parsed.error.issues[0];
      return `malformed record: ${i ? `[${i.path.join(".")}] ${i.message}` : "invalid"}`;
    }
    const problem = this.tupleProblem(raw);
    return problem ?? (bytes ? internedRecord(raw, bytes, start, end) : fromTuple(raw));
  }

  /** check() for a record found by its bytes (knownRecord): already a valid tuple, so only our range is left to check. */
  checkKnown(k: KnownRecord): Lease | string {
    return this.subnetProblem(k.addr, k.len) ?? this.ipProblem(k.ip) ?? k.lease;
  }

  private tupleProblem(t: RecordTuple): string | undefined {
    return this.subnetProblem(t[4], t[5]) ?? this.ipProblem(t[6]);
  }

  /** Why `text` cannot be a node's public IP in this cluster ("publicIp … is …"), or undefined. */
  publicIpProblem(text: string): string | undefined {
    const ip = ipv4ToU32(text);
    return ip < 0 ? `publicIp ${JSON.stringify(text)} is not an IPv4 address` : this.ipProblem(ip);
  }

  private ipProblem(ip: number): string | undefined {
    const p = publicIpProblem(ip);
    if (p) return `publicIp ${u32ToIpv4(ip)} is ${p}`;
    const n = this.net4;
    if (n && ip >= n.first && ip <= n.last) return `publicIp ${u32ToIpv4(ip)} is inside the pod network ${formatCidr(this.range.network)}`;
    return undefined;
  }

  private subnetProblem(addr: number, len: number): string | undefined {
    const v4 = this.v4;
    // The usual case, a valid record, decided on numbers (a uint32 and a length ≤ 32 are
    // exact in doubles); a failure gets its message from the BigInt path below. SubnetMin
    // and SubnetMax lie inside Network (config.ts checks), so within them is inside it.
    const ok = v4 !== undefined && len === this.range.subnetLen && addr % 2 ** (32 - len) === 0 && addr >= v4.min && addr <= v4.max;
    return ok ? undefined : this.problemText(addr, len);
  }

  private problemText(ip: number, len: number): string | undefined {
    const r = this.range;
    const addr = BigInt(ip);
    const subnet = cidrText(ip, len);
    if (len !== r.subnetLen) return `subnet ${subnet} is not a /${r.subnetLen}`;
    if ((addr & (sizeOf(4, len) - 1n)) !== 0n) return `subnet ${subnet} has host bits set`;
    if (!contains(r.network, { family: 4, addr, prefix: len })) return `subnet ${subnet} is not inside ${formatCidr(r.network)}`;
    if (addr < r.min || addr > r.max) return `subnet ${subnet} is outside SubnetMin..SubnetMax`;
    return undefined;
  }
}
