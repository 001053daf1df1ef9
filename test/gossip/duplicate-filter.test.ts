/**
 * The duplicate filter: a node drops copies of broadcasts it has already handled before
 * decoding them. Covers the msgpack walk that finds message bounds without decoding, the
 * tag peek, the bounded memory, and that only news that can never matter again is skipped.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { T } from "../../src/gossip/messages.ts";
import { compound, decode, encode, leadingTag, packetBounds, userIdentityEnd } from "../../src/gossip/codec.ts";
import { hash53 } from "../../src/wire/hash.ts";
import { valueEnd } from "../../src/wire/msgpack.ts";
import { RecentHashes } from "../../src/gossip/recent-hashes.ts";
import { sharedCopy } from "../../src/gossip/shared-copies.ts";
import { PACKET, Sealer } from "../../src/gossip/security.ts";
import type { Keyring } from "../../src/gossip/types.ts";
import { Sim, view } from "../../sim/gossip-sim.ts";

const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: "small" },
    fc.integer(),
    fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
    fc.double({ noNaN: true }),
    fc.boolean(),
    fc.constant(null),
    fc.string({ maxLength: 40 }),
    fc.string({ minLength: 200, maxLength: 300 }),
    fc.uint8Array({ maxLength: 300 }),
    fc.array(tie("v"), { maxLength: 20 }),
    fc.dictionary(fc.string({ maxLength: 5 }), tie("v"), { maxKeys: 20 }),
  ),
})).v;

describe("packetBounds", () => {
  test("finds exactly the messages a compound packet was built from", () => {
    fc.assert(
      fc.property(fc.array(value, { maxLength: 30 }), (items) => {
        const parts = items.map(encode);
        const pkt = compound(parts);
        const bounds = packetBounds(pkt);
        expect(bounds.length).toBe(parts.length + 1);
        parts.forEach((p, i) => expect(pkt.subarray(bounds[i]!, bounds[i + 1]!)).toEqual(p));
        // The walk agrees with the decoder on where the packet ends.
        expect(decode(pkt)).toEqual(items.map((v) => decode(encode(v))));
      }),
      { numRuns: 300, seed: 41 },
    );
  });

  test("works on plain msgpack arrays too (fixarray, array32)", () => {
    const small = encode([1, "two", { t: 3 }]);
    expect(small[0]! >> 4).toBe(0x9);
    expect(packetBounds(small)).toEqual([1, 2, 6, 12]); // {t: 3} as a map16
    const big = new Uint8Array([0xdd, 0, 0, 0, 2, 0x01, 0xc0]);
    expect(packetBounds(big)).toEqual([5, 6, 7]);
  });

  test("every truncation, trailing byte, reserved byte or oversized count is an error", () => {
    const pkt = compound([encode({ t: T.alive, name: "n1", addr: "1.2.3.4:5", inc: 3 }), encode({ t: T.user, origin: "n1", key: "k", seq: 1, payload: new Uint8Array(40) })]);
    for (let n = 0; n < pkt.length; n++) expect(() => packetBounds(pkt.subarray(0, n))).toThrow();
    expect(() => packetBounds(new Uint8Array([...pkt, 0]))).toThrow(/trailing/);
    expect(() => packetBounds(new Uint8Array([0x91, 0xc1]))).toThrow(/malformed/);
    expect(() => packetBounds(encode("not an array"))).toThrow(/not a msgpack array/);
    expect(() => packetBounds(encode(new Array(256).fill(0)))).toThrow(/more than 255/);
    // A huge declared count inside a message is refused without looping over it.
    expect(() => packetBounds(new Uint8Array([0x91, 0xdd, 0xff, 0xff, 0xff, 0xff]))).toThrow(/malformed/);
    // Nesting deeper than any message has is refused.
    expect(() => packetBounds(new Uint8Array([0x91, ...new Array(20).fill(0x91), 0xc0]))).toThrow(/malformed/);
  });
});

describe("leadingTag", () => {
  test("reads the tag of messages as encode() writes them, 0 for anything else", () => {
    for (const t of Object.values(T)) {
      const b = encode({ t, seq: 1, name: "x" });
      expect(leadingTag(b, 0, b.length)).toBe(t);
    }
    const fixmap = new Uint8Array([0x82, 0xa1, 0x74, 0x08, 0xa1, 0x78, 0x01]);
    expect(leadingTag(fixmap, 0, fixmap.length)).toBe(8);
    for (const other of [encode({ a: 1, t: 8 }), encode([8]), encode({ t: "8" }), encode({ t: 300 })]) expect(leadingTag(other, 0, other.length)).toBe(0);
    const short = encode({ t: 8 });
    expect(leadingTag(short, 0, 3)).toBe(0);
  });
});

describe("hash53", () => {
  const hashOf = (b: Uint8Array) => hash53(b, 0, b.length);

  test("depends only on the bytes in [start, end), is a 53-bit integer", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 9 }), fc.uint8Array({ maxLength: 9 }), (m, before, after) => {
        const h = hashOf(m);
        expect(Number.isSafeInteger(h) && h >= 0).toBe(true);
        const framed = new Uint8Array([...before, ...m, ...after]);
        expect(hash53(framed, before.length, before.length + m.length)).toBe(h);
      }),
    );
  });

  test("every single-byte change, and every length change, gives another hash", () => {
    // A collision here would make the filter drop a real broadcast as a copy.
    const base = encode({ t: T.user, k: "lease/node-17", v: new Uint8Array(90).fill(7) });
    const seen = new Set([hashOf(base)]);
    for (let i = 0; i < base.length; i++)
      for (const bit of [1, 2, 4, 8, 16, 32, 64, 128]) {
        const b = base.slice();
        b[i]! ^= bit;
        seen.add(hashOf(b));
      }
    for (let n = 0; n < base.length; n++) seen.add(hashOf(base.subarray(0, n)));
    expect(seen.size).toBe(1 + base.length * 8 + base.length);
  });

  test("no collisions among 200k distinct messages", () => {
    const seen = new Set<number>();
    const b = new Uint8Array(24);
    const v = new DataView(b.buffer);
    for (let i = 0; i < 200_000; i++) {
      v.setUint32(4, i);
      v.setUint32(16, i * 2654435761);
      seen.add(hashOf(b));
    }
    expect(seen.size).toBe(200_000);
  });
});

// The recursive walker valueEnd replaced, kept verbatim as the model it must match.
const MAX_DEPTH = 8;
const modelU32 = (b: Uint8Array, at: number): number => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
function modelSkip(b: Uint8Array, off: number, depth: number): number {
  if (off >= b.length || depth > MAX_DEPTH) return -1;
  const c = b[off]!;
  if (c <= 0x7f || c >= 0xe0) return off + 1; // fixint
  if (c <= 0x8f) return modelSkipAll(b, off + 1, 2 * (c & 0x0f), depth); // fixmap
  if (c <= 0x9f) return modelSkipAll(b, off + 1, c & 0x0f, depth); // fixarray
  if (c <= 0xbf) return modelWithin(b, off + 1 + (c & 0x1f)); // fixstr
  const n = b.length;
  switch (c) {
    case 0xc0: // nil, false, true
    case 0xc2:
    case 0xc3:
      return off + 1;
    case 0xc4: // bin8, str8
    case 0xd9:
      return off + 2 <= n ? modelWithin(b, off + 2 + b[off + 1]!) : -1;
    case 0xc5: // bin16, str16
    case 0xda:
      return off + 3 <= n ? modelWithin(b, off + 3 + ((b[off + 1]! << 8) | b[off + 2]!)) : -1;
    case 0xc6: // bin32, str32
    case 0xdb:
      return off + 5 <= n ? modelWithin(b, off + 5 + modelU32(b, off + 1)) : -1;
    case 0xc7: // ext8/16/32: length, type byte, data
      return off + 2 <= n ? modelWithin(b, off + 3 + b[off + 1]!) : -1;
    case 0xc8:
      return off + 3 <= n ? modelWithin(b, off + 4 + ((b[off + 1]! << 8) | b[off + 2]!)) : -1;
    case 0xc9:
      return off + 5 <= n ? modelWithin(b, off + 6 + modelU32(b, off + 1)) : -1;
    case 0xcc: // uint8, int8
    case 0xd0:
      return modelWithin(b, off + 2);
    case 0xcd: // uint16, int16
    case 0xd1:
      return modelWithin(b, off + 3);
    case 0xca: // float32, uint32, int32
    case 0xce:
    case 0xd2:
      return modelWithin(b, off + 5);
    case 0xcb: // float64, uint64, int64
    case 0xcf:
    case 0xd3:
      return modelWithin(b, off + 9);
    case 0xd4: // fixext 1/2/4/8/16: type byte + data
      return modelWithin(b, off + 3);
    case 0xd5:
      return modelWithin(b, off + 4);
    case 0xd6:
      return modelWithin(b, off + 6);
    case 0xd7:
      return modelWithin(b, off + 10);
    case 0xd8:
      return modelWithin(b, off + 18);
    case 0xdc: // array16, array32, map16, map32
      return off + 3 <= n ? modelSkipAll(b, off + 3, (b[off + 1]! << 8) | b[off + 2]!, depth) : -1;
    case 0xdd:
      return off + 5 <= n ? modelSkipAll(b, off + 5, modelU32(b, off + 1), depth) : -1;
    case 0xde:
      return off + 3 <= n ? modelSkipAll(b, off + 3, 2 * ((b[off + 1]! << 8) | b[off + 2]!), depth) : -1;
    case 0xdf:
      return off + 5 <= n ? modelSkipAll(b, off + 5, 2 * modelU32(b, off + 1), depth) : -1;
    default: // 0xc1 is reserved
      return -1;
  }
}

function modelSkipAll(b: Uint8Array, off: number, count: number, depth: number): number {
  // Every value takes at least a byte: a count beyond what is left is malformed (and
  // would otherwise loop for up to 2³² iterations).
  if (count > b.length - off) return -1;
  for (let i = 0; i < count && off >= 0; i++) off = modelSkip(b, off, depth + 1);
  return off;
}

const modelWithin = (b: Uint8Array, end: number): number => (end <= b.length ? end : -1);


describe("valueEnd", () => {
  // Values nested deeper than MAX_DEPTH, every msgpack type msgpackr writes, long strings and arrays.
  const leaf = fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.string({ maxLength: 40 }), fc.uint8Array({ maxLength: 300 }), fc.maxSafeInteger(), fc.string({ minLength: 256, maxLength: 300 }));
  const { tree } = fc.letrec((tie) => ({
    tree: fc.oneof({ depthSize: "small", withCrossShrink: true }, leaf, fc.array(tie("tree"), { maxLength: 20 }), fc.dictionary(fc.string({ maxLength: 5 }), tie("tree"), { maxKeys: 20 })),
  }));
  test("matches the recursive walker on valid, truncated and corrupted values at every offset", () => {
    fc.assert(
      fc.property(tree, fc.nat(), fc.nat(255), (v, pos, byte) => {
        const b = encode(v);
        for (const x of [b, b.subarray(0, pos % (b.length + 1)), Uint8Array.from(b, (c, i) => (i === pos % b.length ? byte : c))])
          for (let off = 0; off <= Math.min(x.length, 8); off++) expect(valueEnd(x, off)).toBe(modelSkip(x, off, 0));
      }),
      { numRuns: 3000 },
    );
  });
  test("nesting: 9 levels of arrays are too deep, 8 are not; empty containers at the limit are fine", () => {
    const nest = (d: number, inner: unknown): unknown => (d === 0 ? inner : [nest(d - 1, inner)]);
    for (const [d, inner] of [[8, 1], [9, 1], [8, []], [9, []], [10, 1]] as const) {
      const b = encode(nest(d, inner));
      expect(valueEnd(b, 0)).toBe(modelSkip(b, 0, 0));
    }
    expect(valueEnd(encode(nest(8, 1)), 0)).toBeGreaterThan(0);
    expect(valueEnd(encode(nest(9, 1)), 0)).toBe(-1);
  });
});

describe("userIdentityEnd", () => {
  test("ends right after seq for our encoding, at the end for any other layout", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 40 }), fc.string({ maxLength: 40 }), fc.oneof(fc.nat(), fc.maxSafeNat()), fc.uint8Array({ maxLength: 300 }), (origin, key, seq, payload) => {
        const b = encode({ t: T.user, origin, key, seq, payload });
        const idEnd = userIdentityEnd(b, 0, b.length);
        // The identity is a prefix of the message that is the same for any payload...
        const other = encode({ t: T.user, origin, key, seq, payload: new Uint8Array([...payload, 1]) });
        expect(idEnd).toBeLessThan(b.length);
        expect([...other.subarray(0, idEnd)]).toEqual([...b.subarray(0, idEnd)]);
        // ...and holds all of origin, key and seq: it decodes as a map with those values.
        const head = decode(new Uint8Array([0x84, ...b.subarray(3, idEnd)])) as Record<string, unknown>;
        expect(head).toEqual({ t: T.user, origin, key, seq });
        // Another key order (or a foreign encoder) is hashed whole.
        const odd = encode({ t: T.user, key, origin, seq, payload });
        expect(userIdentityEnd(odd, 0, odd.length)).toBe(odd.length);
      }),
      { numRuns: 500 },
    );
  });
});

describe("RecentHashes", () => {
  test("the same against a model with 53-bit hashes, many collisions and long runs", () => {
    // Hashes from a small pool whose low bits collide often (multiples of 2^k plus noise).
    const pool = Array.from({ length: 40 }, (_, i) => (i % 5) * 2 ** 40 + (i % 7) * 64 + (i % 3));
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 24 }), fc.array(fc.nat(pool.length - 1), { maxLength: 400 }), (cap, adds) => {
        const r = new RecentHashes(cap);
        const model: number[] = [];
        for (const i of adds) {
          const h = pool[i]!;
          r.add(h);
          if (!model.includes(h)) {
            model.push(h);
            if (model.length > cap) model.shift();
          }
          expect(r.size).toBe(model.length);
          for (const x of pool) expect(r.has(x)).toBe(model.includes(x));
        }
      }),
      { numRuns: 200, seed: 7 },
    );
  });

  test("remembers exactly the last `capacity` distinct hashes", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 60 }), (cap, adds) => {
        const r = new RecentHashes(cap);
        const model: number[] = [];
        for (const h of adds) {
          r.add(h);
          if (!model.includes(h)) {
            model.push(h);
            if (model.length > cap) model.shift();
          }
          for (let x = 0; x <= 20; x++) expect(r.has(x)).toBe(model.includes(x));
        }
        r.clear();
        for (let x = 0; x <= 20; x++) expect(r.has(x)).toBe(false);
      }),
      { numRuns: 300, seed: 42 },
    );
  });
});

const keyring: Keyring = (() => {
  const k = new Uint8Array(32).fill(9);
  return { primary: k, keys: [k] };
})();

/** One node alone (so nobody relays our test messages back to it) and a forger with the key. */
async function lone() {
  const sim = new Sim({ seed: 43, keyring });
  const nodes = await sim.cluster(1);
  const evil = sim.net.transport("10.66.0.1:7946");
  const sealer = new Sealer({ keyring, clusterName: "test", addr: "10.66.0.1:7946", clock: sim.clock });
  const send = (...msgs: object[]) => evil.sendPacket(nodes[0]!.addr, sealer.seal(compound(msgs.map(encode)), PACKET));
  return { sim, target: nodes[0]!, send };
}

describe("gossip drops copies of handled broadcasts undecoded", () => {
  test("a user broadcast heard again is skipped, and its news delivered once", async () => {
    const { sim, target, send } = await lone();
    const msg = { t: T.user, origin: "elsewhere", key: "k", seq: 7, payload: new TextEncoder().encode("hello") };
    const before = target.gossip.metrics().duplicatesSkipped;
    send(msg);
    send(msg, msg);
    await sim.run(50);
    expect(target.gossip.metrics().duplicatesSkipped - before).toBe(2);
    expect(target.delegate.messages.filter((m) => m.payload === "hello")).toHaveLength(1);
    // A newer version of the same key is news.
    send({ ...msg, seq: 8, payload: new TextEncoder().encode("hello again") });
    await sim.run(50);
    expect(target.delegate.messages.map((m) => m.payload)).toContain("hello again");
  });

  test("a user broadcast is known by (origin, key, seq): another payload under the same three is skipped too", async () => {
    const { sim, target, send } = await lone();
    const msg = { t: T.user, origin: "elsewhere", key: "k", seq: 7, payload: new TextEncoder().encode("first") };
    send(msg);
    await sim.run(50);
    const before = target.gossip.metrics().duplicatesSkipped;
    send({ ...msg, payload: new TextEncoder().encode("second") }); // the handler would ignore it as well
    send({ ...msg, key: "k2", payload: new TextEncoder().encode("other key") });
    await sim.run(50);
    expect(target.gossip.metrics().duplicatesSkipped - before).toBe(1);
    expect(target.delegate.messages.map((m) => m.payload)).toEqual(["first", "other key"]);
  });

  test("an alive the member table turned away is decoded again next time", async () => {
    const { sim, target, send } = await lone();
    const ghost = { t: T.alive, name: "ghost", addr: "10.66.0.2:7946", inc: 1 };
    send(ghost);
    await sim.run(50);
    // ghost is alive at its address: a claim to the name from elsewhere is ignored...
    const clash = { t: T.alive, name: "ghost", addr: "10.66.0.9:7946", inc: 99 };
    const before = target.gossip.metrics().duplicatesSkipped;
    send(clash);
    send(clash);
    await sim.run(50);
    // ...but not remembered: once n1's name could be reclaimed it would have to count.
    expect(target.gossip.metrics().duplicatesSkipped - before).toBe(0);
    // An alive that was taken in is remembered.
    send(ghost);
    await sim.run(50);
    expect(target.gossip.metrics().duplicatesSkipped - before).toBe(1);
    expect(view(target).get("ghost")).toBe("alive");
  });

  test("once a member is forgotten, its old alive is news again", async () => {
    const { sim, target, send } = await lone();
    const ghost = { t: T.alive, name: "ghost", addr: "10.66.0.2:7946", inc: 1 };
    send(ghost);
    await sim.runUntil(() => view(target).get("ghost") === "alive", 1_000);
    // Nobody answers at ghost's address: it is suspected, declared dead, then reaped.
    await sim.runUntil(() => !view(target).has("ghost"), 60_000);
    const before = target.gossip.metrics().duplicatesSkipped;
    send(ghost);
    await sim.run(50);
    expect(target.gossip.metrics().duplicatesSkipped - before).toBe(0);
    expect(view(target).get("ghost")).toBe("alive");
  });
});

describe("sharedCopy", () => {
  test("equal bytes share one copy, which is not a view of the packet it came from", () => {
    const packet = new Uint8Array([9, 9, 1, 2, 3, 4, 5, 9]);
    const a = sharedCopy(packet.subarray(2, 7));
    expect([...a]).toEqual([1, 2, 3, 4, 5]);
    expect(a.buffer).not.toBe(packet.buffer);
    packet[3] = 7; // the packet buffer is reused or changed: the copy is not
    expect([...a]).toEqual([1, 2, 3, 4, 5]);
    expect(sharedCopy(new Uint8Array([1, 2, 3, 4, 5]))).toBe(a);
    const b = sharedCopy(packet.subarray(2, 7));
    expect([...b]).toEqual([1, 7, 3, 4, 5]);
    expect(b).not.toBe(a);
  });
});
