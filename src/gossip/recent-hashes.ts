/**
 * The last `capacity` message hashes a node handled, oldest forgotten first. During a join
 * storm most broadcasts a node receives are copies of ones it already has (every node
 * relays each one several times); with this memory gossip.ts drops a copy before decoding
 * it. Only an accelerator: a forgotten hash just means the copy is decoded and then
 * ignored by the handler, as it would be without the filter.
 */
import { NumberSet } from "./number-set.ts";

export class RecentHashes {
  private readonly set: NumberSet;
  /** The hashes in insertion order (a ring): the slot to overwrite next holds the oldest. */
  private readonly ring: Float64Array;
  private next = 0;

  /** Hashes are integers in 0 .. 2⁵³−1 (hash53). */
  constructor(capacity: number) {
    if (!(Number.isInteger(capacity) && capacity > 0)) throw new RangeError(`RecentHashes capacity: expected a positive integer, got ${capacity}`);
    this.ring = new Float64Array(capacity);
    this.set = new NumberSet(capacity);
  }

  has(h: number): boolean {
    return this.set.has(h);
  }

  add(h: number): void {
    if (this.set.has(h)) return;
    // Full means every ring slot holds a live hash, so the slot we overwrite is the oldest.
    if (this.set.size >= this.ring.length) this.set.delete(this.ring[this.next]!);
    this.ring[this.next] = h;
    this.next = (this.next + 1) % this.ring.length;
    this.set.add(h);
  }

  clear(): void {
    this.set.clear();
    this.next = 0;
  }

  get size(): number {
    return this.set.size;
  }
}
