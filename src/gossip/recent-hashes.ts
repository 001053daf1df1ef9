/**
 * The last `capacity` message hashes a node handled, oldest forgotten first. During a join
 * storm most broadcasts a node receives are copies of ones it already has (every node
 * relays each one several times); with this memory gossip.ts drops a copy before decoding
 * it. Only an accelerator: a forgotten hash just means the copy is decoded and then
 * ignored by the handler, as it would be without the filter.
 */
export class RecentHashes {
  /**
   * Open addressing with linear probing: hash + 1 per slot (0 = empty), at most half full.
   * A Set of a node's 4096 hashes took ~124 KB of boxed numbers, a fifth of the
   * simulator's heap at 500 nodes; this is 64 KB and no garbage.
   */
  private readonly slots: Float64Array;
  private readonly mask: number;
  /** The hashes in insertion order (a ring): the slot to overwrite next holds the oldest. */
  private readonly ring: Float64Array;
  private next = 0;
  private count = 0;

  /** Hashes are integers in 0 .. 2⁵³−1 (messageHash). */
  constructor(capacity: number) {
    if (!(Number.isInteger(capacity) && capacity > 0)) throw new RangeError(`RecentHashes capacity: expected a positive integer, got ${capacity}`);
    this.ring = new Float64Array(capacity);
    let size = 2;
    while (size < 2 * capacity) size *= 2;
    this.slots = new Float64Array(size);
    this.mask = size - 1;
  }

  has(h: number): boolean {
    return this.find(h) >= 0;
  }

  add(h: number): void {
    if (this.find(h) >= 0) return;
    // Full means every ring slot holds a live hash, so the slot we overwrite is the oldest.
    if (this.count >= this.ring.length) this.remove(this.ring[this.next]!);
    this.ring[this.next] = h;
    this.next = (this.next + 1) % this.ring.length;
    let i = this.home(h);
    while (this.slots[i] !== 0) i = (i + 1) & this.mask;
    this.slots[i] = h + 1;
    this.count++;
  }

  clear(): void {
    this.slots.fill(0);
    this.count = 0;
    this.next = 0;
  }

  get size(): number {
    return this.count;
  }

  /** The low bits of a hash that is already well mixed. */
  private home(h: number): number {
    return (h >>> 0) & this.mask;
  }

  private find(h: number): number {
    const want = h + 1;
    for (let i = this.home(h); ; i = (i + 1) & this.mask) {
      const v = this.slots[i]!;
      if (v === want) return i;
      if (v === 0) return -1;
    }
  }

  /** Deletes by shifting later members of the probe run back, so lookups never need tombstones. */
  private remove(h: number): void {
    let i = this.find(h);
    if (i < 0) return;
    this.count--;
    for (let j = (i + 1) & this.mask; ; j = (j + 1) & this.mask) {
      const v = this.slots[j]!;
      if (v === 0) break;
      const k = this.home(v - 1);
      // v may move to i if its home is not in the cyclic range (i, j].
      const stays = i <= j ? i < k && k <= j : i < k || k <= j;
      if (!stays) {
        this.slots[i] = v;
        i = j;
      }
    }
    this.slots[i] = 0;
  }
}
