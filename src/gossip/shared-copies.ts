/**
 * Copies of received messages that a node keeps to relay, shared by every node in the
 * process that keeps the same bytes. An agent runs one node and gains nothing; the
 * simulator runs a thousand, and each of them relays every broadcast of a join storm:
 * a private copy per node was ~2 million small buffers that lived a second or two each.
 * The copies are never written to (the broadcast queue only sends them). Bounded: the
 * table is dropped when full, which only costs later copies their sharing.
 */
import { messageHash, sameRange } from "./codec.ts";

const copies = new Map<number, Uint8Array>();
const MAX_COPIES = 16_384;

/** A copy of `b` (which may be a view into a larger buffer), shared with earlier equal copies. */
export function sharedCopy(b: Uint8Array): Uint8Array {
  const h = messageHash(b, 0, b.length);
  const hit = copies.get(h);
  if (hit && sameRange(hit, b, 0, b.length)) return hit;
  const c = b.slice();
  if (copies.size >= MAX_COPIES) copies.clear();
  copies.set(h, c);
  return c;
}
