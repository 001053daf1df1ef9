/**
 * Broadcasts waiting to be piggybacked (memberlist queue.go TransmitLimitedQueue): each
 * is sent at most `limit` times, our own before relayed ones, then least-sent first and
 * newest first among equals, and a
 * newer broadcast with the same key replaces a queued older one, so a member's latest
 * state (or a lease's latest record) is what spreads.
 *
 * Every packet takes from this queue, and during a large join it holds thousands of
 * items, so it is kept in indexed binary heaps instead of being sorted per packet: in
 * sending order (own first, transmits ascending, id descending) for take(), one heap per message
 * length, and one heap in pruning order (transmits descending, id ascending) for the
 * depth cap. take(k items) costs O(k · (L + log n)) for L distinct message lengths,
 * rather than O(n log n).
 */
import { IndexedHeap } from "./indexed-heap.ts";

export interface QueuedBroadcast {
  key: string;
  msg: Uint8Array;
  transmits: number;
  id: number;
  /** Re-gossiped news from another node: retired at the (smaller) relay limit. */
  relay?: boolean;
  /** Called once when the broadcast is done: sent `limit` times, replaced, or dropped. */
  onDone?: () => void;
}

interface Slot extends QueuedBroadcast {
  relay: boolean;
  /** (relay, transmits) as one number, RELAY_RANK + transmits for relays: the sending order's first keys. */
  rank: number;
  sendPos: number;
  prunePos: number;
}

/** Above any transmit count. */
const RELAY_RANK = 2 ** 30;

// Our own news before relays (a node's own claim must not wait behind a storm of other
// nodes' news), then least-sent, then newest. One number compared for the first two keys:
// this runs a few times per heap level for every broadcast sent.
const sendFirst = (a: Slot, b: Slot) => a.rank - b.rank || b.id - a.id;
const pruneFirst = (a: Slot, b: Slot) => b.transmits - a.transmits || a.id - b.id;
const newSendHeap = () =>
  new IndexedHeap<Slot>(sendFirst, (x) => x.sendPos, (x, i) => {
    x.sendPos = i;
  });

export class BroadcastQueue {
  private readonly items = new Map<string, Slot>();
  /**
   * Sending order, one heap per message length: once the packet is nearly full, the next
   * broadcast that still fits is the best head among the lengths that fit, found without
   * walking past every queued broadcast too big for the space left.
   */
  private readonly byLength = new Map<number, IndexedHeap<Slot>>();
  /** The keys of byLength, ascending. */
  private lengths: number[] = [];
  private readonly pruneOrder = new IndexedHeap<Slot>(pruneFirst, (x) => x.prunePos, (x, i) => {
    x.prunePos = i;
  });
  /**
   * pruneOrder is only kept while the queue is within reach of its cap (over ¾ of it,
   * until it falls under ½): below that nothing can be pruned, and keeping the heap
   * costs two heap operations per broadcast sent, a large share of the queue's work
   * while a join storm fills it.
   */
  private pruneActive = false;
  private nextId = 0;

  constructor(private readonly maxDepth: number) {}

  enqueue(key: string, msg: Uint8Array, onDone?: () => void, relay = false): void {
    const old = this.items.get(key);
    if (old) {
      this.remove(old);
      old.onDone?.();
    }
    const b: Slot = { key, msg, transmits: 0, id: this.nextId++, relay, rank: relay ? RELAY_RANK : 0, sendPos: -1, prunePos: -1 };
    if (onDone) b.onDone = onDone;
    this.items.set(key, b);
    this.pushSend(b);
    if (this.pruneActive) this.pruneOrder.push(b);
    else if (this.items.size * 4 > this.maxDepth * 3) {
      this.pruneActive = true;
      for (const x of this.items.values()) this.pruneOrder.push(x);
    }
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
   * most `maxCount`, counting one transmit on each and retiring those that reach `limit`
   * (`relayLimit` for relayed broadcasts).
   * The result is exactly that of walking the whole queue in sending order and taking
   * each broadcast that still fits: budget only shrinks, so the next one taken is always
   * the first in sending order among those that fit now.
   */
  take(budget: number, limit: number, maxCount: number, overhead = 0, relayLimit = limit): Uint8Array[] {
    return this.takePackets(1, budget, limit, maxCount, overhead, relayLimit)[0] ?? [];
  }

  /**
   * Fills up to `packets` packets for one destination, each as {@link take} would, with
   * no broadcast in two of them: a backlog goes out faster without sending anything twice
   * to the same member. Stops at the first packet that would be empty.
   */
  takePackets(packets: number, budget: number, limit: number, maxCount: number, overhead = 0, relayLimit = limit): Uint8Array[][] {
    if (this.items.size === 0 || maxCount <= 0) return [];
    const result: Uint8Array[][] = [];
    const taken: Slot[] = [];
    for (let p = 0; p < packets; p++) {
      const out: Uint8Array[] = [];
      let left = budget;
      for (;;) {
        let best: Slot | undefined;
        let bestHeap: IndexedHeap<Slot> | undefined;
        for (const len of this.lengths) {
          if (len + overhead > left) break;
          const h = this.byLength.get(len)!;
          const top = h.peek();
          if (top && (!best || sendFirst(top, best) < 0)) {
            best = top;
            bestHeap = h;
          }
        }
        if (!best) break;
        bestHeap!.pop();
        left -= best.msg.length + overhead;
        out.push(best.msg);
        taken.push(best);
        if (out.length >= maxCount || left <= overhead) break;
      }
      if (out.length === 0) break;
      result.push(out);
    }
    // Count the transmits only now: each broadcast is sent at most once per call, and
    // callbacks run after the queue is consistent again (they may enqueue).
    const done: Slot[] = [];
    for (const b of taken) {
      if (this.pruneActive) this.pruneOrder.remove(b);
      b.transmits++;
      b.rank++;
      if (b.transmits >= (b.relay ? relayLimit : limit)) {
        this.items.delete(b.key);
        this.dropLengthIfEmpty(b.msg.length);
        done.push(b);
      } else {
        this.pushSend(b);
        if (this.pruneActive) this.pruneOrder.push(b);
      }
    }
    if (this.pruneActive && this.items.size * 2 < this.maxDepth) {
      this.pruneActive = false;
      this.pruneOrder.clear();
    }
    for (const b of done) b.onDone?.();
    return result;
  }

  /** Drops everything (calling onDone), e.g. on shutdown. */
  clear(): void {
    const all = [...this.items.values()];
    this.items.clear();
    for (const h of this.byLength.values()) h.clear();
    this.byLength.clear();
    this.lengths = [];
    this.pruneOrder.clear();
    this.pruneActive = false;
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

  private pushSend(b: Slot): void {
    const len = b.msg.length;
    let h = this.byLength.get(len);
    if (!h) {
      this.byLength.set(len, (h = newSendHeap()));
      let i = this.lengths.length;
      while (i > 0 && this.lengths[i - 1]! > len) i--;
      this.lengths.splice(i, 0, len);
    }
    h.push(b);
  }

  private remove(b: Slot): void {
    this.items.delete(b.key);
    this.byLength.get(b.msg.length)?.remove(b);
    this.dropLengthIfEmpty(b.msg.length);
    this.pruneOrder.remove(b);
  }

  private dropLengthIfEmpty(len: number): void {
    const h = this.byLength.get(len);
    if (!h || h.size() > 0) return;
    this.byLength.delete(len);
    this.lengths.splice(this.lengths.indexOf(len), 1);
  }
}
