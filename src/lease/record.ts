/**
 * Lease records on the wire and their total order.
 *
 * Records travel as msgpack tuples (compact: a 1000-node table is ~110 KB) and every
 * decoded tuple is validated with zod before it can touch the table; malformed input is
 * reported to the caller, never thrown. The order (generation, version, canonical text)
 * is total, so "keep the greater record" is a commutative, associative and idempotent
 * merge and two nodes holding the same records hold the same table.
 */
import { z } from "zod";
import { pack, unpack } from "msgpackr";
import type { NetConf } from "../config.ts";
import { type Cidr, contains, formatCidr, isNetworkAddress, parseCidr, parseIp } from "../net/cidr.ts";
import type { Lease } from "./types.ts";

/** Wire format version; bumped on incompatible tuple changes. */
export const WIRE_VERSION = 1;
const KIND_RECORD = 1;
const KIND_STATE = 2;

export const nodeNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export const nodeIdPattern = /^[0-9a-f]{32}$/;
const macPattern = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
// 2^53 keeps counters exact in msgpack and JS numbers.
const counter = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const time = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

// A strict dotted quad (no leading zeros); a regex, because this runs for every record.
const octet = "(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const ipv4Pattern = new RegExp(`^${octet}(\\.${octet}){3}$`);
const ipv4Text = z.string().max(15).regex(ipv4Pattern, "expected an IPv4 address");

const recordTuple = z.tuple([
  z.string().regex(nodeNamePattern), // nodeName
  z.string().regex(nodeIdPattern), // nodeId
  counter.min(1), // generation
  counter, // version
  z.string().max(43), // subnet (range-checked separately: needs the NetConf)
  ipv4Text, // publicIp
  z.enum(["vxlan", "host-gw", "udp"]), // backend type
  z.string().regex(macPattern).nullable(), // vtepMac
  time, // claimedAt
  time, // renewedAt
  z.boolean(), // deleted
]);

type RecordTuple = z.infer<typeof recordTuple>;

const toTuple = (l: Lease): RecordTuple => [
  l.nodeName,
  l.nodeId,
  l.generation,
  l.version,
  l.subnet,
  l.publicIp,
  l.backend.type,
  l.backend.vtepMac ?? null,
  l.claimedAt,
  l.renewedAt ?? l.claimedAt,
  l.deleted === true,
];

function fromTuple(t: RecordTuple): Lease {
  const lease: Lease = {
    nodeName: t[0],
    nodeId: t[1],
    generation: t[2],
    version: t[3],
    subnet: t[4],
    publicIp: t[5],
    backend: t[7] === null ? { type: t[6] } : { type: t[6], vtepMac: t[7] },
    claimedAt: t[8],
    renewedAt: t[9],
  };
  if (t[10]) lease.deleted = true;
  return lease;
}

/** Canonical text of a record: equal records give equal text. */
export const canonicalText = (l: Lease): string => JSON.stringify(toTuple(l));

type Cell = string | number | boolean | null;
const cmpCell = (a: Cell, b: Cell): number => {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  return a < b ? -1 : 1;
};

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
  if (a.generation !== b.generation) return a.generation < b.generation ? -1 : 1;
  if (a.version !== b.version) return a.version < b.version ? -1 : 1;
  return compareTuples(toTuple(a), toTuple(b));
}

/** True if an undecoded wire tuple is exactly `l` (a known record: no need to validate it again). */
export function sameAsWire(raw: unknown, l: Lease): boolean {
  if (!Array.isArray(raw) || raw.length !== 11) return false;
  if (raw[2] !== l.generation || raw[3] !== l.version) return false;
  return compareTuples(raw as Cell[], toTuple(l)) === 0;
}

/** Which of two subnet claims keeps the subnet: earliest claimedAt, then node name. */
export function claimBeats(a: Lease, b: Lease): boolean {
  if (a.claimedAt !== b.claimedAt) return a.claimedAt < b.claimedAt;
  return a.nodeName < b.nodeName;
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

/** Validates records against the schema and the range; caches subnet verdicts. */
export class RecordValidator {
  private readonly verdicts = new Map<string, string | undefined>();
  constructor(readonly range: SubnetRange) {}

  /** The lease, or a reason string for rejecting it. */
  check(raw: unknown): Lease | string {
    const parsed = recordTuple.safeParse(raw);
    if (!parsed.success) return `malformed record: ${parsed.error.issues[0]?.message ?? "invalid"}`;
    const lease = fromTuple(parsed.data);
    let verdict = this.verdicts.get(lease.subnet);
    if (verdict === undefined && !this.verdicts.has(lease.subnet)) {
      verdict = subnetProblem(lease.subnet, this.range);
      if (this.verdicts.size > 100_000) this.verdicts.clear();
      this.verdicts.set(lease.subnet, verdict);
    }
    return verdict ?? lease;
  }
}

export const encodeRecord = (l: Lease): Uint8Array => pack([WIRE_VERSION, KIND_RECORD, toTuple(l)]);

export const encodeState = (ls: Iterable<Lease>): Uint8Array => pack([WIRE_VERSION, KIND_STATE, Array.from(ls, toTuple)]);

/** Raw (unvalidated) record tuples from a broadcast or a state payload. */
export function decodePayload(bytes: Uint8Array): { raw: unknown[] } | { error: string } {
  let msg: unknown;
  try {
    msg = unpack(bytes);
  } catch (e) {
    return { error: `cannot decode payload: ${(e as Error).message}` };
  }
  if (!Array.isArray(msg) || msg.length !== 3) return { error: "cannot decode payload: not a [version, kind, body] triple" };
  if (msg[0] !== WIRE_VERSION) return { error: `cannot decode payload: wire version ${String(msg[0])}, expected ${WIRE_VERSION}` };
  if (msg[1] === KIND_RECORD) return { raw: [msg[2]] };
  if (msg[1] === KIND_STATE && Array.isArray(msg[2])) return { raw: msg[2] };
  return { error: `cannot decode payload: unknown kind ${String(msg[1])}` };
}
