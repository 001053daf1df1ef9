/**
 * A set of integers in 0 .. 2⁵³−1 with a fixed capacity and no garbage: open addressing
 * with linear probing over a Float64Array (value + 1 per slot, 0 = empty), at most half
 * full, deletion by shifting the rest of the probe run back (no tombstones). A Set of a
 * node's few thousand numbers costs several times the memory in boxed doubles (and a
 * simulation in sim/ keeps one per node). The values must be well mixed already (hashes,
 * random ids): the slot is their low bits.
 */
export class NumberSet {
  private readonly slots: Float64Array;
  private readonly mask: number;
  private count = 0;

  /** Room for `capacity` members (the caller keeps within it). */
  constructor(readonly capacity: number) {
    let size = 2;
    while (size < 2 * capacity) size *= 2;
    this.slots = new Float64Array(size);
    this.mask = size - 1;
  }

  get size(): number {
    return this.count;
  }

  has(v: number): boolean {
    return this.find(v) >= 0;
  }

  /** Adds `v` if absent; the caller keeps size ≤ capacity. */
  add(v: number): void {
    if (this.find(v) >= 0) return;
    let i = this.home(v);
    while (this.slots[i] !== 0) i = (i + 1) & this.mask;
    this.slots[i] = v + 1;
    this.count++;
  }

  delete(v: number): void {
    let i = this.find(v);
    if (i < 0) return;
    this.count--;
    for (let j = (i + 1) & this.mask; ; j = (j + 1) & this.mask) {
      const s = this.slots[j]!;
      if (s === 0) break;
      const k = this.home(s - 1);
      // s may move to i if its home is not in the cyclic range (i, j].
      const stays = i <= j ? i < k && k <= j : i < k || k <= j;
      if (!stays) {
        this.slots[i] = s;
        i = j;
      }
    }
    this.slots[i] = 0;
  }

  clear(): void {
    this.slots.fill(0);
    this.count = 0;
  }

  private home(v: number): number {
    return (v >>> 0) & this.mask;
  }

  private find(v: number): number {
    const want = v + 1;
    for (let i = this.home(v); ; i = (i + 1) & this.mask) {
      const s = this.slots[i]!;
      if (s === want) return i;
      if (s === 0) return -1;
    }
  }
}
