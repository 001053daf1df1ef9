/**
 * The heap-based BroadcastQueue against the original sort-per-take implementation (kept
 * here verbatim as the reference model): any sequence of enqueues, takes and clears must
 * give the same packets, the same transmit counts and the same onDone calls in the same
 * order.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { BroadcastQueue, type QueuedBroadcast } from "../../src/gossip/broadcast-queue.ts";
import { IndexedHeap } from "../../src/gossip/indexed-heap.ts";

/** The original implementation (sorts the whole queue on every take). */
class ReferenceQueue {
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
  peek(key: string): QueuedBroadcast | undefined {
    return this.items.get(key);
  }
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
  clear(): void {
    const all = [...this.items.values()];
    this.items.clear();
    for (const b of all) b.onDone?.();
  }
  private prune(): void {
    const order = [...this.items.values()].sort((a, b) => b.transmits - a.transmits || a.id - b.id);
    for (const b of order) {
      if (this.items.size <= this.maxDepth) break;
      this.items.delete(b.key);
      b.onDone?.();
    }
  }
}

type Op =
  | { op: "enqueue"; key: number; len: number; withDone: boolean }
  | { op: "take"; budget: number; limit: number; maxCount: number; overhead: number }
  | { op: "clear" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant("enqueue" as const), key: fc.nat(40), len: fc.integer({ min: 0, max: 120 }), withDone: fc.boolean() }) },
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("take" as const),
      budget: fc.integer({ min: 0, max: 600 }),
      limit: fc.integer({ min: 0, max: 6 }),
      maxCount: fc.integer({ min: 0, max: 12 }),
      overhead: fc.integer({ min: 0, max: 4 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ op: "clear" as const }) },
);

/** Runs `ops` on a queue and returns everything observable, step by step. */
function observe(q: BroadcastQueue | ReferenceQueue, ops: Op[]): unknown[] {
  const log: unknown[] = [];
  let serial = 0;
  for (const o of ops) {
    if (o.op === "enqueue") {
      const n = serial++;
      // Unique content per enqueue so the packets name exactly which broadcast went out.
      const msg = new Uint8Array(Math.max(o.len, 4));
      new DataView(msg.buffer).setUint32(0, n);
      q.enqueue(`k${o.key}`, msg, o.withDone ? () => log.push(`done ${n}`) : undefined);
    } else if (o.op === "take") {
      const got = q.take(o.budget, o.limit, o.maxCount, o.overhead);
      log.push(got.map((m) => new DataView(m.buffer, m.byteOffset).getUint32(0)));
    } else q.clear();
    const counts: Record<string, number> = {};
    for (let k = 0; k <= 40; k++) {
      const p = q.peek(`k${k}`);
      if (p) counts[`k${k}`] = p.transmits;
    }
    log.push(q.size(), counts);
  }
  return log;
}

describe("BroadcastQueue matches the sort-per-take reference", () => {
  test("random operation sequences (depth caps 1..50)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 50 }), fc.array(opArb, { maxLength: 300 }), (depth, ops) => {
        expect(observe(new BroadcastQueue(depth), ops)).toEqual(observe(new ReferenceQueue(depth), ops));
      }),
      { numRuns: 300 },
    );
  });

  test("an onDone that enqueues during take does not get the new item into the same packet", () => {
    for (const q of [new BroadcastQueue(10), new ReferenceQueue(10)]) {
      q.enqueue("a", new Uint8Array([1]), () => q.enqueue("b", new Uint8Array([2])));
      expect([...q.take(100, 1, 10)].map((m) => m[0])).toEqual([1]);
      expect([...q.take(100, 1, 10)].map((m) => m[0])).toEqual([2]);
    }
  });
});

describe("BroadcastQueue at depth", () => {
  test("retransmit limit, ordering and cap with thousands queued", () => {
    const q = new BroadcastQueue(3000);
    for (let i = 0; i < 4000; i++) q.enqueue(`k${i}`, new Uint8Array(10).fill(i & 255));
    expect(q.size()).toBe(3000); // the oldest 1000 (never sent) dropped
    expect(q.peek("k999")).toBeUndefined();
    expect(q.peek("k1000")?.transmits).toBe(0);
    // Newest first: the first packet carries k3999, k3998, ...
    const first = q.take(10 * 5, 2, 100);
    expect(first.map((m) => m[0])).toEqual([3999, 3998, 3997, 3996, 3995].map((i) => i & 255));
    // Least-sent first: everything else goes out once before anything twice.
    let sent = 5;
    while (sent < 3000) sent += q.take(1000, 2, 5).length;
    expect(sent).toBe(3000);
    for (let i = 1000; i < 4000; i++) expect(q.peek(`k${i}`)?.transmits).toBe(1);
    let total = 0;
    for (let out = q.take(1000, 2, 100); out.length > 0; out = q.take(1000, 2, 100)) total += out.length;
    expect(total).toBe(3000);
    expect(q.size()).toBe(0);
  });
});

describe("IndexedHeap", () => {
  test("pops in order and removes arbitrary items", () => {
    fc.assert(
      fc.property(fc.array(fc.integer(), { maxLength: 200 }), fc.array(fc.nat(), { maxLength: 50 }), (xs, rm) => {
        const h = new IndexedHeap<{ v: number; pos: number }>(
          (a, b) => a.v - b.v,
          (x) => x.pos,
          (x, i) => {
            x.pos = i;
          },
        );
        const items = xs.map((v) => ({ v, pos: -1 }));
        for (const it of items) h.push(it);
        const removed = new Set<number>();
        for (const r of rm) {
          if (items.length === 0) break;
          const i = r % items.length;
          h.remove(items[i]!);
          h.remove(items[i]!); // removing twice is harmless
          removed.add(i);
        }
        const want = items.filter((_, i) => !removed.has(i)).map((x) => x.v).sort((a, b) => a - b);
        const got: number[] = [];
        for (let x = h.pop(); x; x = h.pop()) got.push(x.v);
        expect(got).toEqual(want);
        expect(items.every((x) => x.pos === -1)).toBe(true);
      }),
    );
  });
});

describe("BroadcastQueue bursts and relays", () => {
  const id = (m: Uint8Array) => new DataView(m.buffer, m.byteOffset).getUint32(0);
  const msg = (n: number) => {
    const m = new Uint8Array(20);
    new DataView(m.buffer).setUint32(0, n);
    return m;
  };

  test("takePackets fills several packets for one target, never one broadcast twice", () => {
    const q = new BroadcastQueue(1000);
    for (let i = 0; i < 30; i++) q.enqueue(`k${i}`, msg(i));
    const packets = q.takePackets(8, 100, 4, 255); // 5 × 20 bytes per packet
    expect(packets.map((p) => p.length)).toEqual([5, 5, 5, 5, 5, 5]); // 30 items, then nothing left unsent
    const ids = packets.flat().map(id);
    expect(new Set(ids).size).toBe(30);
    // Each was counted once; a second burst sends each once more, newest first again.
    expect(q.peek("k0")?.transmits).toBe(1);
    expect(q.takePackets(2, 100, 4, 255).flat().map(id)).toEqual([29, 28, 27, 26, 25, 24, 23, 22, 21, 20]);
  });

  test("with a short queue a burst is one packet: nothing is repeated to fill it", () => {
    const q = new BroadcastQueue(1000);
    q.enqueue("a", msg(1));
    q.enqueue("b", msg(2));
    expect(q.takePackets(8, 1400, 10, 255).map((p) => p.map(id))).toEqual([[2, 1]]);
  });

  test("relayed broadcasts retire at the relay limit, our own at the full limit", () => {
    const q = new BroadcastQueue(1000);
    q.enqueue("own", msg(1));
    q.enqueue("relayed", msg(2), undefined, true);
    const sent: number[][] = [];
    for (let i = 0; i < 6; i++) sent.push(q.take(1400, 5, 10, 0, 2).map(id));
    expect(sent).toEqual([[1, 2], [1, 2], [1], [1], [1], []]); // own first, though older
  });
});
