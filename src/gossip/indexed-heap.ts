/**
 * A binary min-heap (by `cmp`) whose items remember their own position in a numeric
 * field, so any item can be removed in O(log n) — what the broadcast queue needs when a
 * newer broadcast replaces a queued one. An item may sit in several heaps at once if
 * each heap uses its own position field. Position -1 = not in this heap.
 */
export class IndexedHeap<T> {
  private readonly a: T[] = [];

  /** `getPos`/`setPos` read and write the item's position field for this heap. */
  constructor(
    private readonly cmp: (x: T, y: T) => number,
    private readonly getPos: (x: T) => number,
    private readonly setPos: (x: T, i: number) => void,
  ) {}

  size(): number {
    return this.a.length;
  }

  peek(): T | undefined {
    return this.a[0];
  }

  push(x: T): void {
    this.a.push(x);
    this.setPos(x, this.a.length - 1);
    this.up(this.a.length - 1);
  }

  pop(): T | undefined {
    const top = this.a[0];
    if (top !== undefined) this.removeAt(0);
    return top;
  }

  /** Removes `x` if it is in this heap. */
  remove(x: T): void {
    const i = this.getPos(x);
    if (i >= 0 && i < this.a.length && this.a[i] === x) this.removeAt(i);
  }

  clear(): void {
    for (const x of this.a) this.setPos(x, -1);
    this.a.length = 0;
  }

  private removeAt(i: number): void {
    const a = this.a;
    const x = a[i]!;
    const last = a.pop()!;
    this.setPos(x, -1);
    if (i === a.length) return;
    a[i] = last;
    this.setPos(last, i);
    if (i > 0 && this.cmp(last, a[(i - 1) >> 1]!) < 0) this.up(i);
    else this.down(i);
  }

  private up(i: number): void {
    const a = this.a;
    const x = a[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const y = a[p]!;
      if (this.cmp(x, y) >= 0) break;
      a[i] = y;
      this.setPos(y, i);
      i = p;
    }
    a[i] = x;
    this.setPos(x, i);
  }

  private down(i: number): void {
    const a = this.a;
    const n = a.length;
    const x = a[i]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && this.cmp(a[c + 1]!, a[c]!) < 0) c++;
      const y = a[c]!;
      if (this.cmp(y, x) >= 0) break;
      a[i] = y;
      this.setPos(y, i);
      i = c;
    }
    a[i] = x;
    this.setPos(x, i);
  }
}
