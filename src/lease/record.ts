/**
 * Lease records on the wire and their total order.
 *
 * Records travel as msgpack tuples (compact: a 1000-node table is ~70 KB) and every
 * decoded tuple is validated with zod before it can touch the table; malformed input is
 * reported to the caller, never thrown. The order (generation, version, canonical text)
 * is total, so "keep the greater record" is a commutative, associative and idempotent
 * merge and two nodes holding the same records hold the same table.
 */
import { z } from "zod";
import { pack, unpack } from "msgpackr";
import type { NetConf } from "../config.ts";
import { arrayHeader, messageHash, sameRange, shortStrAt, valueEnd } from "../gossip/codec.ts";
import { type Cidr, contains, formatCidr, isNetworkAddress, parseCidr, parseIp, sizeOf } from "../net/cidr.ts";
import { RECORD_HASH_BYTES, xorRecordHash } from "../gossip/record-hash.ts";
import type { Lease } from "./types.ts";

/** Wire format version; bumped on incompatible tuple changes. */
export const WIRE_VERSION = 2;
const KIND_RECORD = 1;
const KIND_STATE = 2;

export const nodeNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export const nodeIdPattern = /^[0-9a-f]{32}$/;
// 2^53 keeps counters exact in msgpack and JS numbers.
const counter = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/**
 * Generations are bounded far below 2^53 (one start per millisecond for 35 years), so
 * out-ranking any valid record for our own name stays inside the valid range (hardening
 * finding F1: a forged 2^53−1 once pushed an honest node to an invalid 2^53).
 */
export const MAX_GENERATION = 2 ** 40;
const generation = z.number().int().min(1).max(MAX_GENERATION);
const time = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const u32 = z.number().int().min(0).max(0xffffffff);
const bytes = (n: number) => z.instanceof(Uint8Array).refine((b) => b.length === n, `expected ${n} bytes`);
// Appended only: a record's type is its index here.
const backendTypes = ["vxlan", "host-gw", "udp", "wireguard"] as const;

/**
 * One record on the wire (~70 bytes): addresses as u32, nodeId and MAC as raw bytes.
 * [nodeName, nodeId, generation, version, subnetAddr, subnetPrefix, publicIp,
 *  backendType, backendBytes|null, claimedAt, renewedAt, deleted]
 * backendBytes is the vxlan VTEP MAC (6 bytes) or the wireguard public key (32 bytes); its
 * length says which, so records of the other backends keep exactly their encoding.
 */
const recordTuple = z.tuple([
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
]);

type RecordTuple = z.infer<typeof recordTuple>;

const isIntIn = (v: unknown, min: number, max: number): v is number => typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;
const isBytesOf = (v: unknown, n: number): v is Uint8Array => v instanceof Uint8Array && v.length === n;

/**
 * `recordTuple.safeParse(v).success`, hand-written: a join storm validates a million
 * records and zod's generic parse was a twentieth of the CPU. zod stays the definition
 * and writes the error message for a rejected tuple; test/lease/table.test.ts checks
 * that both accept exactly the same values.
 */
export function isRecordTuple(v: unknown): v is RecordTuple {
  return (
    Array.isArray(v) &&
    v.length === 12 &&
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
type Cell = string | number | boolean | null | Uint8Array;

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
// Built with join, not +=: a string grown by concatenation stays a chain of rope cells
// until something reads it whole, and nodeId/vtepMac/publicIp are kept per record on
// every node (at 1000 nodes the ropes were most of the simulator's heap).
function hex(b: Uint8Array, sep = ""): string {
  const parts = new Array<string>(b.length);
  for (let i = 0; i < b.length; i++) parts[i] = HEX[b[i]!]!;
  return parts.join(sep);
}
/** "0a1b…" or "0a:1b:…" → bytes (input already validated). */
function unhex(s: string) {
  const digits = s.includes(":") ? s.replaceAll(":", "") : s;
  const out = new Uint8Array(digits.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.substr(i * 2, 2), 16);
  return out;
}
const ipText = (a: number): string => [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].join(".");
const cidrText = (ip: number, len: number): string => [ipText(ip), len].join("/");
function ipNum(text: string): number {
  const p = text.split(".");
  if (p.length !== 4) return -1;
  let a = 0;
  for (const x of p) {
    if (!/^(0|[1-9]\d{0,2})$/.test(x) || Number(x) > 255) return -1;
    a = a * 256 + Number(x);
  }
  return a;
}

// Records are immutable once made, so their msgpack bytes are cached per object (every
// push-pull sends, and compares against, the whole table). The tuple itself is not kept:
// it is rebuilt in the rare paths that need it, and two byte arrays plus an array per
// record on every node were a sixth of the 1000-node simulator's heap.
const packed = new WeakMap<Lease, Uint8Array>();

function toTuple(l: Lease): RecordTuple {
  const slash = l.subnet.indexOf("/");
  return [
    l.nodeName,
    unhex(l.nodeId),
    l.generation,
    l.version,
    ipNum(l.subnet.slice(0, slash)),
    Number(l.subnet.slice(slash + 1)),
    ipNum(l.publicIp),
    backendTypes.indexOf(l.backend.type),
    l.backend.vtepMac ? unhex(l.backend.vtepMac) : l.backend.publicKey ? new Uint8Array(Buffer.from(l.backend.publicKey, "base64")) : null,
    l.claimedAt,
    l.renewedAt ?? l.claimedAt,
    l.deleted === true,
  ];
}

function fromTuple(t: RecordTuple): Lease {
  const type = backendTypes[t[7]]!;
  const lease: Lease = {
    nodeName: t[0],
    nodeId: hex(t[1]),
    generation: t[2],
    version: t[3],
    subnet: cidrText(t[4], t[5]),
    publicIp: ipText(t[6]),
    backend: t[8] === null ? { type } : t[8].length === 32 ? { type, publicKey: Buffer.from(t[8]).toString("base64") } : { type, vtepMac: hex(t[8], ":") },
    claimedAt: t[9],
    renewedAt: t[10],
  };
  if (t[11]) lease.deleted = true;
  // The validated tuple has exactly the values toTuple(lease) would rebuild from the
  // strings (slower: hex and dotted-quad parsing), so its encoding is the record's.
  packed.set(lease, pack(t));
  return lease;
}

/** Canonical text of a record: equal records give equal text. */
export const canonicalText = (l: Lease): string =>
  JSON.stringify(toTuple(l), (_k, v: unknown) => (v instanceof Uint8Array ? hex(v) : v));

function cmpCell(a: Cell, b: Cell): number {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  if (a instanceof Uint8Array && b instanceof Uint8Array) {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
    return a.length - b.length;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Element-wise order of two wire tuples (same schema, so cells have the same types). */
function compareTuples(a: readonly Cell[], b: readonly Cell[]): number {
  for (let i = 0; i < a.length; i++) {
    const c = cmpCell(a[i]!, b[i]!);
    if (c !== 0) return c;
  }
  return 0;
}

/**
 * The total order of records for one node name: generation, then version, then the
 * wire tuple element by element (so two different records with equal counters — only a
 * forger or a rolled-back state dir makes those — resolve the same way on every node).
 */
export function compareRecords(a: Lease, b: Lease): number {
  return compareCounters(a.generation, a.version, b) || compareTuples(toTuple(a), toTuple(b));
}

/** The first keys of that order: (generation, version) against record `b`'s, as -1, 0 or 1. */
export function compareCounters(generation: number, version: number, b: Lease): number {
  if (generation !== b.generation) return generation < b.generation ? -1 : 1;
  if (version !== b.version) return version < b.version ? -1 : 1;
  return 0;
}

/** True if an undecoded wire tuple is exactly `l` (a known record: no need to validate it again). */
export function sameAsWire(raw: unknown, l: Lease): boolean {
  if (!Array.isArray(raw) || raw.length !== 12) return false;
  if (raw[2] !== l.generation || raw[3] !== l.version) return false;
  return compareTuples(raw as Cell[], toTuple(l)) === 0;
}

/** Which of two subnet claims keeps the subnet: earliest claimedAt, then node name. */
export function claimBeats(a: Lease, b: Lease): boolean {
  if (a.claimedAt !== b.claimedAt) return a.claimedAt < b.claimedAt;
  return a.nodeName < b.nodeName;
}

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
  const ip = ipNum(text);
  return ip < 0 ? "not an IPv4 address" : publicIpProblem(ip);
}

/** The parsed pod-network range a subnet must fall in. */
export interface SubnetRange {
  network: Cidr;
  subnetLen: number;
  min: bigint;
  max: bigint;
}

export function rangeOf(net: NetConf): SubnetRange {
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
    const ip = ipNum(text);
    return ip < 0 ? `publicIp ${JSON.stringify(text)} is not an IPv4 address` : this.ipProblem(ip);
  }

  private ipProblem(ip: number): string | undefined {
    const p = publicIpProblem(ip);
    if (p) return `publicIp ${ipText(ip)} is ${p}`;
    const n = this.net4;
    if (n && ip >= n.first && ip <= n.last) return `publicIp ${ipText(ip)} is inside the pod network ${formatCidr(this.range.network)}`;
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

/**
 * Records made from the same bytes are one Lease object (records are immutable), so a
 * process that runs many nodes — the simulator runs a thousand — holds each record once,
 * not once per node, and builds its strings once. Keyed by 32 bits of a hash of the bytes; a hit
 * must equal the record's own (canonical) encoding, so it is exactly the record
 * fromTuple() would make from them (bytes in another msgpack form never hit). Bounded:
 * an agent's cache holds its cluster's records and their recent versions.
 */
const interned = new Map<number, KnownRecord>();
const INTERN_MAX = 16_384;

/** A record made from bytes seen before, with its subnet and public IP as numbers for the range checks. */
export interface KnownRecord {
  lease: Lease;
  addr: number;
  len: number;
  ip: number;
}

/** The interning key of bytes[start, end): 32 bits of their hash (int32 Map keys, see sharedCopy). */
const internKey = (bytes: Uint8Array, start: number, end: number): number => messageHash(bytes, start, end) | 0;

function lookupInterned(key: number, bytes: Uint8Array, start: number, end: number): KnownRecord | undefined {
  const k = interned.get(key);
  return k && sameRange(packedRecord(k.lease), bytes, start, end) ? k : undefined;
}

/** The record made earlier from exactly bytes[start, end), if any: no need to decode them again. */
export const knownRecord = (bytes: Uint8Array, start: number, end: number): KnownRecord | undefined => lookupInterned(internKey(bytes, start, end), bytes, start, end);

function internedRecord(t: RecordTuple, bytes: Uint8Array, start: number, end: number): Lease {
  const h = internKey(bytes, start, end);
  const hit = lookupInterned(h, bytes, start, end);
  if (hit) return hit.lease;
  const lease = fromTuple(t);
  if (interned.size >= INTERN_MAX) interned.clear();
  interned.set(h, { lease, addr: t[4], len: t[5], ip: t[6] });
  return lease;
}

/** True if two records have the same encoding, i.e. are the same record. */
export const sameRecord = (a: Lease, b: Lease): boolean => {
  const pb = packedRecord(b);
  return sameRange(packedRecord(a), pb, 0, pb.length);
};

/** True if bytes[start, end) is `l`'s encoding (then it is `l`, nothing new). */
export const isEncodingOf = (l: Lease, bytes: Uint8Array, start: number, end: number): boolean => sameRange(packedRecord(l), bytes, start, end);

function packedRecord(l: Lease): Uint8Array {
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

/** XORs the hash of `l`'s wire bytes into a state digest accumulator (see stateDigest). */
export const xorRecordInto = (acc: Uint8Array, l: Lease): void => xorRecordHash(acc, packedRecord(l));

/**
 * XOR of the records' 256-bit hashes (record-hash.ts): equal exactly when two tables hold
 * the same records (a table holds one record per name, so no two cancel out), whatever
 * the order, and updatable one record at a time (LeaseTable.digest).
 */
export function stateDigest(ls: Iterable<Lease>): Uint8Array {
  const acc = new Uint8Array(RECORD_HASH_BYTES);
  for (const l of ls) xorRecordInto(acc, l);
  return acc;
}

/**
 * Raw (unvalidated) record tuples from a broadcast or a state payload, each with where
 * its bytes lie in the payload (`at[2i]`, `at[2i+1]`; -1 when the layout is not ours), so
 * the caller can recognise records it already holds or has made (internedRecord). With
 * `held` (the record a table holds for a name), a state payload's records that are byte
 * for byte the held one are left out undecoded and counted in `skipped`: push-pull resends
 * whole tables, and after convergence nearly every record in them is one the receiver
 * holds (decoding those was most of the garbage of a 1000-node join storm).
 */
export function decodePayload(bytes: Uint8Array, held?: (name: string) => Lease | undefined): DecodedRecords | { error: string } {
  if (held) {
    const fast = newRecordsOfState(bytes, held);
    if (fast) return fast;
  }
  // A broadcast is [version, kind, record]: the record is everything after that 3-byte head.
  const ours = bytes[0] === 0x93 && bytes[1] === WIRE_VERSION && bytes[2] === KIND_RECORD;
  const known = ours ? knownRecord(bytes, 3, bytes.length) : undefined;
  if (known) return { raw: [undefined], known: [known], at: [3, bytes.length], skipped: 0 };
  const whole = decodeWhole(bytes);
  if ("error" in whole) return whole;
  return { raw: whole.raw, known: whole.raw.map(() => undefined), at: ours ? [3, bytes.length] : whole.raw.flatMap(() => [-1, -1]), skipped: 0 };
}

export interface DecodedRecords {
  /** Per record, its decoded (unvalidated) tuple; undefined where `known` has the record. */
  raw: unknown[];
  /** Per record, the record made before from the same bytes, if any (then it was not decoded). */
  known: (KnownRecord | undefined)[];
  /** Where record i lies in the payload: [at[2i], at[2i+1]), or -1, -1 if unknown. */
  at: number[];
  skipped: number;
}

/** Record i of a decoded payload, validated by `v`: the lease, or why it is rejected. */
export function checkDecoded(v: RecordValidator, d: DecodedRecords, i: number, payload: Uint8Array): Lease | string {
  const k = d.known[i];
  if (k) return v.checkKnown(k);
  const start = d.at[2 * i]!;
  return start < 0 ? v.check(d.raw[i]) : v.check(d.raw[i], payload, start, d.at[2 * i + 1]);
}

const STATE_HEAD = [0x93, WIRE_VERSION, KIND_STATE] as const;

/** decodePayload's skipping walk; undefined if `bytes` is not a well-formed state payload (decodeWhole says why). */
function newRecordsOfState(bytes: Uint8Array, held: (name: string) => Lease | undefined): DecodedRecords | undefined {
  if (STATE_HEAD.some((v, i) => bytes[i] !== v)) return undefined;
  const head = arrayHeader(bytes, STATE_HEAD.length);
  if (!head || head.count > bytes.length - head.off) return undefined;
  const { count } = head;
  let { off } = head;
  const raw: unknown[] = [];
  const known: (KnownRecord | undefined)[] = [];
  const at: number[] = [];
  let skipped = 0;
  for (let i = 0; i < count; i++) {
    const start = off;
    off = valueEnd(bytes, start);
    if (off < 0) return undefined;
    const name = recordName(bytes, start, off);
    const mine = name === undefined ? undefined : held(name);
    if (mine && sameRange(packedRecord(mine), bytes, start, off)) {
      skipped++;
      continue;
    }
    const k = knownRecord(bytes, start, off);
    try {
      raw.push(k ? undefined : unpack(bytes.subarray(start, off)));
    } catch {
      return undefined;
    }
    known.push(k);
    at.push(start, off);
  }
  return off === bytes.length ? { raw, known, at, skipped } : undefined;
}

/** The name of the record tuple at [start, end) as packedRecord writes it (fixarray(12), then a str of ≤ 255 bytes). */
function recordName(b: Uint8Array, start: number, end: number): string | undefined {
  // Read as latin1, so a name with non-ASCII bytes cannot equal a held (valid, ASCII) name.
  return b[start] === 0x9c ? shortStrAt(b, start + 1, end) : undefined;
}


function decodeWhole(bytes: Uint8Array): { raw: unknown[]; kind: number } | { error: string } {
  let msg: unknown;
  try {
    msg = unpack(bytes);
  } catch (e) {
    return { error: `cannot decode payload: ${(e as Error).message}` };
  }
  if (!Array.isArray(msg) || msg.length !== 3) return { error: "cannot decode payload: not a [version, kind, body] triple" };
  if (msg[0] !== WIRE_VERSION) return { error: `cannot decode payload: wire version ${String(msg[0])}, expected ${WIRE_VERSION}` };
  if (msg[1] === KIND_RECORD) return { raw: [msg[2]], kind: KIND_RECORD };
  if (msg[1] === KIND_STATE && Array.isArray(msg[2])) return { raw: msg[2], kind: KIND_STATE };
  return { error: `cannot decode payload: unknown kind ${String(msg[1])}` };
}
