/**
 * The total order of lease records for one node name, and the subnet claim order.
 * (generation, version, wire tuple) is total, so "keep the greater record" is a
 * commutative, associative and idempotent merge: two nodes holding the same records hold
 * the same table.
 */
import { sameRange } from "../wire/msgpack.ts";
import { type Cell, packedRecord, toTuple } from "./record-codec.ts";
import type { Lease } from "./types.ts";

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

/**
 * Element-wise order of two wire tuples (same schema, so cells have the same types); of
 * two tuples equal in their common cells the shorter (no extension cell) comes first.
 */
function compareTuples(a: readonly Cell[], b: readonly Cell[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = cmpCell(a[i]!, b[i]!);
    if (c !== 0) return c;
  }
  return a.length - b.length;
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
  if (!Array.isArray(raw) || (raw.length !== 12 && raw.length !== 13)) return false;
  if (raw[2] !== l.generation || raw[3] !== l.version) return false;
  return compareTuples(raw as Cell[], toTuple(l)) === 0;
}

/** Which of two claims on a subnet keeps it: earliest claimedAt, then node name (for either family). */
export function claimBeats(a: Lease, b: Lease): boolean {
  if (a.claimedAt !== b.claimedAt) return a.claimedAt < b.claimedAt;
  return a.nodeName < b.nodeName;
}

/** True if two records have the same encoding, i.e. are the same record. */
export const sameRecord = (a: Lease, b: Lease): boolean => {
  const pb = packedRecord(b);
  return sameRange(packedRecord(a), pb, 0, pb.length);
};

/** True if bytes[start, end) is `l`'s encoding (then it is `l`, nothing new). */
export const isEncodingOf = (l: Lease, bytes: Uint8Array, start: number, end: number): boolean => sameRange(packedRecord(l), bytes, start, end);
