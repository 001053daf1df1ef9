/**
 * Lease records on the wire: a msgpack tuple per record (compact: addresses as u32, node
 * id and MAC as raw bytes), a broadcast of one record, and the whole table as one state
 * payload. Every decoded tuple is validated before it can touch the table
 * (record-validate.ts); the total order of records is record-order.ts. Fields beyond
 * the first twelve cells (IPv6) live in one extension cell (record-ext.ts).
 */
import { z } from "zod";
import { pack } from "msgpackr";
import { formatCidr, formatIp, ipFromBytes, ipToBytes, parseCidr, parseIp } from "../net/cidr.ts";
import { ipv4ToU32, u32ToIpv4 } from "../net/ipv4.ts";
import { hex, unhex } from "../net/mac.ts";
import { buildExt, EXT_MAX_BYTES, parseExt } from "./record-ext.ts";
import type { Lease } from "./types.ts";

/** Wire format version; bumped on incompatible tuple changes. */
export const WIRE_VERSION = 2;
export const KIND_RECORD = 1;
export const KIND_STATE = 2;

export const nodeNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export const nodeIdPattern = /^[0-9a-f]{32}$/;
// 2^53 keeps counters exact in msgpack and JS numbers.
const counter = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/**
 * Generations are bounded far below 2^53 (one start per millisecond for 35 years), so
 * out-ranking any valid record for our own name stays inside the valid range: a forged
 * record at the bound cannot push an honest node to an invalid generation.
 */
export const MAX_GENERATION = 2 ** 40;
const generation = z.number().int().min(1).max(MAX_GENERATION);
const time = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const u32 = z.number().int().min(0).max(0xffffffff);
const bytes = (n: number) => z.instanceof(Uint8Array).refine((b) => b.length === n, `expected ${n} bytes`);
// Appended only: a record's type is its index here.
export const backendTypes = ["vxlan", "host-gw", "udp", "wireguard"] as const;

/**
 * One record on the wire (~70 bytes): addresses as u32, nodeId and MAC as raw bytes.
 * [nodeName, nodeId, generation, version, subnetAddr, subnetPrefix, publicIp,
 *  backendType, backendBytes|null, claimedAt, renewedAt, deleted, ext?]
 * backendBytes is the vxlan VTEP MAC (6 bytes) or the wireguard public key (32 bytes); its
 * length says which, so records of the other backends keep exactly their encoding.
 * A record without an IPv4 subnet has subnetAddr 0 and subnetPrefix 0, one without an
 * IPv4 public address publicIp 0 (neither is ever a valid value). `ext`, the 13th cell,
 * is present only when the record has extension entries (record-ext.ts).
 */
const baseCells = [
  z.string().regex(nodeNamePattern),
  bytes(16),
  generation,
  counter,
  u32,
  z.number().int().min(0).max(32),
  u32,
  z.number().int().min(0).max(backendTypes.length - 1),
  z.union([bytes(6), bytes(32)]).nullable(),
  time,
  time,
  z.boolean(),
] as const;
const extCell = z.instanceof(Uint8Array).refine((b) => b.length >= 2 && b.length <= EXT_MAX_BYTES, `expected 2..${EXT_MAX_BYTES} bytes`);
const tuple12 = z.tuple(baseCells);
const tuple13 = z.tuple([...baseCells, extCell]);
export const recordTuple = z.union([tuple12, tuple13]);

/** zod's first complaint about a value that is not a record tuple, as "[cell] message". */
export function recordTupleIssue(v: unknown): string {
  // Against the tuple shape of its own length, so the message names a cell, not the union.
  const r = (Array.isArray(v) && v.length === 13 ? tuple13 : tuple12).safeParse(v);
  const i = r.success ? undefined : r.error.issues[0];
  return i ? `[${i.path.join(".")}] ${i.message}` : "invalid";
}

export type RecordTuple = z.infer<typeof recordTuple>;

const isIntIn = (v: unknown, min: number, max: number): v is number => typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;
const isBytesOf = (v: unknown, n: number): v is Uint8Array => v instanceof Uint8Array && v.length === n;

/**
 * `recordTuple.safeParse(v).success`, hand-written: every received record is validated
 * (a join storm of N nodes validates on the order of N² of them), and zod's generic parse
 * is several times slower. zod stays the definition and writes the error message for a
 * rejected tuple; test/lease/record-codec.test.ts checks that both accept exactly the
 * same values.
 */
export function isRecordTuple(v: unknown): v is RecordTuple {
  return (
    Array.isArray(v) &&
    (v.length === 12 || (v.length === 13 && v[12] instanceof Uint8Array && v[12].length >= 2 && v[12].length <= EXT_MAX_BYTES)) &&
    typeof v[0] === "string" &&
    nodeNamePattern.test(v[0]) &&
    isBytesOf(v[1], 16) &&
    isIntIn(v[2], 1, MAX_GENERATION) &&
    isIntIn(v[3], 0, Number.MAX_SAFE_INTEGER) &&
    isIntIn(v[4], 0, 0xffffffff) &&
    isIntIn(v[5], 0, 32) &&
    isIntIn(v[6], 0, 0xffffffff) &&
    isIntIn(v[7], 0, backendTypes.length - 1) &&
    (v[8] === null || isBytesOf(v[8], 6) || isBytesOf(v[8], 32)) &&
    isIntIn(v[9], 0, Number.MAX_SAFE_INTEGER) &&
    isIntIn(v[10], 0, Number.MAX_SAFE_INTEGER) &&
    typeof v[11] === "boolean"
  );
}

/** zod's verdict, for the equivalence test. */
export const recordTupleSchemaAccepts = (v: unknown): boolean => recordTuple.safeParse(v).success;
export type Cell = string | number | boolean | null | Uint8Array;

/** "a.b.c.d/len" of a subnet tuple's address and prefix length. */
export const cidrText = (ip: number, len: number): string => [u32ToIpv4(ip), len].join("/");

/** True when a tuple's IPv4 subnet cells say "no IPv4 subnet" (address 0, prefix 0). */
export const noIpv4Subnet = (addr: number, len: number): boolean => addr === 0 && len === 0;

// Records are immutable once made, so their msgpack bytes are cached per object (every
// push-pull sends, and compares against, the whole table). The tuple itself is not kept:
// it is rebuilt in the rare paths that need it, and an array per record would be kept
// for every record of the table.
const packed = new WeakMap<Lease, Uint8Array>();
/**
 * The extension cell a received record was decoded from, kept verbatim: it may carry
 * entries of a later version that this one does not read, and they belong to the
 * record's bytes (its digest, its order, what is relayed). A record made here has none
 * stored; its cell is built from its fields.
 */
const extCells = new WeakMap<Lease, Uint8Array>();

/** The extension cell of a record made on this node (from its IPv6 fields), or undefined. */
function ownExt(l: Lease): Uint8Array | undefined {
  const subnet = l.ipv6Subnet !== undefined ? parseCidr(l.ipv6Subnet) : undefined;
  return buildExt({
    ...(subnet ? { ipv6Subnet: { addr: ipToBytes(subnet), prefix: subnet.prefix } } : {}),
    ...(l.publicIpv6 !== undefined ? { publicIpv6: ipToBytes(parseIp(l.publicIpv6)) } : {}),
  });
}

export function toTuple(l: Lease): RecordTuple {
  const slash = l.subnet === undefined ? -1 : l.subnet.indexOf("/");
  const base: RecordTuple = [
    l.nodeName,
    unhex(l.nodeId),
    l.generation,
    l.version,
    l.subnet === undefined ? 0 : ipv4ToU32(l.subnet.slice(0, slash)),
    l.subnet === undefined ? 0 : Number(l.subnet.slice(slash + 1)),
    l.publicIp === undefined ? 0 : ipv4ToU32(l.publicIp),
    backendTypes.indexOf(l.backend.type),
    l.backend.vtepMac ? unhex(l.backend.vtepMac) : l.backend.publicKey ? new Uint8Array(Buffer.from(l.backend.publicKey, "base64")) : null,
    l.claimedAt,
    l.renewedAt ?? l.claimedAt,
    l.deleted === true,
  ];
  const ext = extCells.get(l) ?? ownExt(l);
  return ext ? ([...base, ext] as RecordTuple) : base;
}

/** The lease of a validated tuple (record-validate.ts checked it; this does not throw for one). */
export function fromTuple(t: RecordTuple): Lease {
  const type = backendTypes[t[7]]!;
  const lease: Lease = {
    nodeName: t[0],
    nodeId: hex(t[1]),
    generation: t[2],
    version: t[3],
    ...(noIpv4Subnet(t[4], t[5]) ? {} : { subnet: cidrText(t[4], t[5]) }),
    ...(t[6] === 0 ? {} : { publicIp: u32ToIpv4(t[6]) }),
    backend: t[8] === null ? { type } : t[8].length === 32 ? { type, publicKey: Buffer.from(t[8]).toString("base64") } : { type, vtepMac: hex(t[8], ":") },
    claimedAt: t[9],
    renewedAt: t[10],
  };
  if (t[11]) lease.deleted = true;
  if (t.length === 13) {
    const ext = parseExt(t[12]);
    if (typeof ext === "string") throw new Error(`fromTuple: ${ext}`);
    if (ext.ipv6Subnet) lease.ipv6Subnet = formatCidr({ ...ipFromBytes(ext.ipv6Subnet.addr), prefix: ext.ipv6Subnet.prefix });
    if (ext.publicIpv6) lease.publicIpv6 = formatIp(ipFromBytes(ext.publicIpv6));
    // A plain copy: msgpackr hands out Buffers, whose toJSON would bypass canonicalText's replacer.
    extCells.set(lease, Uint8Array.from(t[12]));
  }
  // The validated tuple has exactly the values toTuple(lease) would rebuild from the
  // strings (slower: hex and dotted-quad parsing), so its encoding is the record's.
  packed.set(lease, pack(t));
  return lease;
}

/** Canonical text of a record: equal records give equal text. */
export const canonicalText = (l: Lease): string =>
  JSON.stringify(toTuple(l), (_k, v: unknown) => (v instanceof Uint8Array ? hex(v) : v));

/** The record's msgpack tuple bytes (cached per record object). */
export function packedRecord(l: Lease): Uint8Array {
  let b = packed.get(l);
  if (!b) packed.set(l, (b = pack(toTuple(l))));
  return b;
}

export const encodeRecord = (l: Lease): Uint8Array => pack([WIRE_VERSION, KIND_RECORD, toTuple(l)]);

/**
 * The whole table as one payload. Built by concatenating each record's cached msgpack
 * bytes under a hand-written array header, so a push-pull costs a copy, not a re-encode.
 */
export function encodeState(ls: Iterable<Lease>): Uint8Array {
  const parts: Uint8Array[] = [];
  let len = 0;
  for (const l of ls) {
    const b = packedRecord(l);
    parts.push(b);
    len += b.length;
  }
  const head = [0x93, WIRE_VERSION, KIND_STATE, 0xdd, (parts.length >>> 24) & 255, (parts.length >>> 16) & 255, (parts.length >>> 8) & 255, parts.length & 255];
  const out = new Uint8Array(head.length + len);
  out.set(head, 0);
  let off = head.length;
  for (const b of parts) {
    out.set(b, off);
    off += b.length;
  }
  return out;
}
