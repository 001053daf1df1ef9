/**
 * Broadcasts waiting to be piggybacked (memberlist queue.go TransmitLimitedQueue): each
 * is sent at most `limit` times, least-sent first and newest first among equals, and a
 * newer broadcast with the same key replaces a queued older one, so a member's latest
 * state (or a lease's latest record) is what spreads.
 */
export interface QueuedBroadcast {
  key: string;
  msg: Uint8Array;
  transmits: number;
  id: number;
  /** Called once when the broadcast is done: sent `limit` times, replaced, or dropped. */
  onDone?: () => void;
}

export class BroadcastQueue {
  private readonly items = new Map<string, QueuedBroadcast>();
  private nextId = 0;

  constructor(private readonly maxDepth: number) {}

  enqueue(key: string, msg: Uint8Array, onDone?: () => void): void {
    const old = this.items.get(key);
    if (old) {
      this.items.delete(key);
      old.onDone?.();
    }
    this.items.set(key, { key, msg, transmits: 0, id: this.nextId++, onDone });
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
   */
  take(budget: number, limit: number, maxCount: number, overhead = 0): Uint8Array[] {
    if (this.items.size === 0 || maxCount <= 0) return [];
    const order = [...this.items.values()].sort((a, b) => a.transmits - b.transmits || b.id - a.id);
    const out: Uint8Array[] = [];
    for (const b of order) {
      const cost = b.msg.length + overhead;
      if (cost > budget) continue;
      budget -= cost;
      out.push(b.msg);
      b.transmits++;
      if (b.transmits >= limit) {
        this.items.delete(b.key);
        b.onDone?.();
      }
      if (out.length >= maxCount || budget <= overhead) break;
    }
    return out;
  }

  /** Drops everything (calling onDone), e.g. on shutdown. */
  clear(): void {
    const all = [...this.items.values()];
    this.items.clear();
    for (const b of all) b.onDone?.();
  }

  private prune(): void {
    // Drop the most-retransmitted, oldest first: they have had the most chance to spread.
    const order = [...this.items.values()].sort((a, b) => b.transmits - a.transmits || a.id - b.id);
    for (const b of order) {
      if (this.items.size <= this.maxDepth) break;
      this.items.delete(b.key);
      b.onDone?.();
    }
  }
}
