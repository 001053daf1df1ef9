/**
 * Broadcasts waiting to be piggybacked (memberlist queue.go TransmitLimitedQueue): each
 * is sent at most `limit` times, least-sent first and newest first among equals, and a
 * newer broadcast with the same key replaces a queued older one, so a member's latest
 * state (or a lease's latest record) is what spreads.
 *
 * Every packet takes from this queue, and during a large join it holds thousands of
 * items, so it is kept as two indexed binary heaps instead of being sorted per packet:
 * one in sending order (transmits ascending, id descending) for take(), one in pruning
 * order (transmits descending, id ascending) for the depth cap. take(k items) costs
 * O((k + skipped) log n) rather than O(n log n).
 */
import { IndexedHeap } from "./indexed-heap.ts";

export interface QueuedBroadcast {
  key: string;
  msg: Uint8Array;
  transmits: number;
  id: number;
  /** Called once when the broadcast is done: sent `limit` times, replaced, or dropped. */
  onDone?: () => void;
}

interface Slot extends QueuedBroadcast {
  sendPos: number;
  prunePos: number;
}

const sendFirst = (a: Slot, b: Slot) => a.transmits - b.transmits || b.id - a.id;
const pruneFirst = (a: Slot, b: Slot) => b.transmits - a.transmits || a.id - b.id;

export class BroadcastQueue {
  private readonly items = new Map<string, Slot>();
  private readonly sendOrder = new IndexedHeap<Slot>(sendFirst, "sendPos");
  private readonly pruneOrder = new IndexedHeap<Slot>(pruneFirst, "prunePos");
  /** How many queued messages have each byte length: lets take() stop once nothing left can fit. */
  private readonly sizes = new Map<number, number>();
  private minSize = Infinity; // lower bound of queued lengths; exact after recomputeMin()
  private nextId = 0;

  constructor(private readonly maxDepth: number) {}

  enqueue(key: string, msg: Uint8Array, onDone?: () => void): void {
    const old = this.items.get(key);
    if (old) {
      this.remove(old);
      old.onDone?.();
    }
    const b: Slot = { key, msg, transmits: 0, id: this.nextId++, sendPos: -1, prunePos: -1, ...(onDone ? { onDone } : {}) };
    this.items.set(key, b);
    this.sendOrder.push(b);
    this.pruneOrder.push(b);
    this.sizes.set(msg.length, (this.sizes.get(msg.length) ?? 0) + 1);
    if (msg.length < this.minSize) this.minSize = msg.length;
    if (this.items.size > this.maxDepth) this.prune();
  }

  size(): number {
    return this.items.size;
  }

  /** Test/introspection: the queued message for a key. */
  peek(key: string): QueuedBroadcast | undefined {
    return this.items.get(key);
  }

  /**
   * Takes broadcasts fitting `budget` bytes (each costing its length + `overhead`), at
   * most `maxCount`, counting one transmit on each and retiring those that reach `limit`.
   * Visits broadcasts in sending order and skips any that no longer fit, exactly like a
   * walk over the sorted queue; it only stops early once no queued message could fit.
   */
  take(budget: number, limit: number, maxCount: number, overhead = 0): Uint8Array[] {
    if (this.items.size === 0 || maxCount <= 0) return [];
    const out: Uint8Array[] = [];
    const taken: Slot[] = [];
    const skipped: Slot[] = [];
    this.recomputeMin();
    while (this.sendOrder.size() > 0 && budget - overhead >= this.minSize) {
      const b = this.sendOrder.pop()!;
      const cost = b.msg.length + overhead;
      if (cost > budget) {
        skipped.push(b);
        continue;
      }
      budget -= cost;
      out.push(b.msg);
      taken.push(b);
      if (out.length >= maxCount || budget <= overhead) break;
    }
    for (const b of skipped) this.sendOrder.push(b);
    // Count the transmits only now: each broadcast is sent at most once per packet, and
    // callbacks run after the queue is consistent again (they may enqueue).
    const done: Slot[] = [];
    for (const b of taken) {
      this.pruneOrder.remove(b);
      b.transmits++;
      if (b.transmits >= limit) {
        this.items.delete(b.key);
        this.dropSize(b.msg.length);
        done.push(b);
      } else {
        this.sendOrder.push(b);
        this.pruneOrder.push(b);
      }
    }
    for (const b of done) b.onDone?.();
    return out;
  }

  /** Drops everything (calling onDone), e.g. on shutdown. */
  clear(): void {
    const all = [...this.items.values()];
    this.items.clear();
    this.sendOrder.clear();
    this.pruneOrder.clear();
    this.sizes.clear();
    this.minSize = Infinity;
    for (const b of all) b.onDone?.();
  }

  private prune(): void {
    // Drop the most-retransmitted, oldest first: they have had the most chance to spread.
    while (this.items.size > this.maxDepth) {
      const b = this.pruneOrder.peek()!;
      this.remove(b);
      b.onDone?.();
    }
  }

  private remove(b: Slot): void {
    this.items.delete(b.key);
    this.sendOrder.remove(b);
    this.pruneOrder.remove(b);
    this.dropSize(b.msg.length);
  }

  private dropSize(len: number): void {
    const n = this.sizes.get(len)! - 1;
    if (n > 0) this.sizes.set(len, n);
    else this.sizes.delete(len);
  }

  private recomputeMin(): void {
    if (this.sizes.has(this.minSize)) return;
    this.minSize = Infinity;
    for (const len of this.sizes.keys()) if (len < this.minSize) this.minSize = len;
  }
}
