import { hash53 } from "../wire/hash.ts";
import { sameRange } from "../wire/msgpack.ts";
import { fromTuple, packedRecord, type RecordTuple } from "./record-codec.ts";
import type { Lease } from "./types.ts";

/**
 * Records made from the same bytes are one Lease object (records are immutable).
 * What it protects: decoding. A push-pull resends the whole table, and a record seen
 * before (on this node, or on another node of the same process) is recognised by its
 * bytes and neither decoded nor validated again. It is process-wide, so a process that
 * runs many nodes (the simulations in sim/) also holds each record once instead of once
 * per node. Keyed by 32 bits of a hash of the bytes; a hit must equal the record's own
 * (canonical) encoding, so it is exactly the record fromTuple() would make from them
 * (bytes in another msgpack form never hit). Bounded: an agent's cache holds its
 * cluster's records and their recent versions.
 */
const interned = new Map<number, KnownRecord>();
const INTERN_MAX = 16_384;

/**
 * A record made from bytes seen before, with its IPv4 subnet and public IP as numbers for
 * the range checks; `ext`: it has an extension cell (IPv6), checked from its fields.
 */
export interface KnownRecord {
  lease: Lease;
  addr: number;
  len: number;
  ip: number;
  ext: boolean;
}

/** The interning key of bytes[start, end): 32 bits of their hash (JSC's Map is several times faster with int32 keys than with doubles). */
const internKey = (bytes: Uint8Array, start: number, end: number): number => hash53(bytes, start, end) | 0;

function lookupInterned(key: number, bytes: Uint8Array, start: number, end: number): KnownRecord | undefined {
  const k = interned.get(key);
  return k && sameRange(packedRecord(k.lease), bytes, start, end) ? k : undefined;
}

/** The record made earlier from exactly bytes[start, end), if any: no need to decode them again. */
export const knownRecord = (bytes: Uint8Array, start: number, end: number): KnownRecord | undefined => lookupInterned(internKey(bytes, start, end), bytes, start, end);

/** The record of a valid tuple `t` decoded from bytes[start, end): the one made before from the same bytes, else a new one, remembered. */
export function internedRecord(t: RecordTuple, bytes: Uint8Array, start: number, end: number): Lease {
  const h = internKey(bytes, start, end);
  const hit = lookupInterned(h, bytes, start, end);
  if (hit) return hit.lease;
  const lease = fromTuple(t);
  if (interned.size >= INTERN_MAX) interned.clear();
  interned.set(h, { lease, addr: t[4], len: t[5], ip: t[6], ext: t.length === 13 });
  return lease;
}
