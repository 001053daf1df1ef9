/**
 * Byte strings a node keeps — received messages it relays, its members' cached push-pull
 * entries — shared by every node in the process that keeps the same bytes. What it
 * protects: the memory of a process that runs many nodes. The simulations in sim/ run up
 * to thousands, each relaying every broadcast of a join storm and caching an entry per
 * member; private copies would be millions of small buffers. An agent runs one node and
 * pays one hash per kept copy and a bounded table for it. The copies are never written to
 * (they are only sent and compared). Bounded: the table is dropped when full, which only
 * costs later copies their sharing.
 */
import { hash53 } from "../wire/hash.ts";
import { sameRange } from "../wire/msgpack.ts";

const copies = new Map<number, Uint8Array>();
const MAX_COPIES = 16_384;

/** A copy of `b` (which may be a view into a larger buffer), shared with earlier equal copies. */
export function sharedCopy(b: Uint8Array): Uint8Array {
  // 32 bits of the hash as the key: JSC's Map is several times faster with int32 keys
  // than with doubles, and a hit is checked byte for byte anyway.
  const h = hash53(b, 0, b.length) | 0;
  const hit = copies.get(h);
  if (hit && sameRange(hit, b, 0, b.length)) return hit;
  const c = b.slice();
  if (copies.size >= MAX_COPIES) copies.clear();
  copies.set(h, c);
  return c;
}
