/**
 * The lease table's state digest: the XOR of its records' 256-bit hashes
 * (wire/record-hash.ts), so push-pull can skip an exchange when both tables agree.
 */
import { RECORD_HASH_BYTES, xorRecordHash } from "../wire/record-hash.ts";
import { packedRecord } from "./record-codec.ts";
import type { Lease } from "./types.ts";

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
