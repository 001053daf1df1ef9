/**
 * The duplicate filter: a node drops copies of broadcasts it has already handled before
 * decoding them. Covers the msgpack walk that finds message bounds without decoding, the
 * tag peek, the bounded memory, and that only news that can never matter again is skipped.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { T, compound, decode, encode, leadingTag, messageHash, packetBounds, userIdentityEnd } from "../../src/gossip/codec.ts";
import { RecentHashes } from "../../src/gossip/recent-hashes.ts";
import { sharedCopy } from "../../src/gossip/shared-copies.ts";
import { Sealer } from "../../src/gossip/security.ts";
import type { Keyring } from "../../src/gossip/types.ts";
import { Sim, view } from "./harness.ts";

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

describe("messageHash", () => {
  const hashOf = (b: Uint8Array) => messageHash(b, 0, b.length);

  test("depends only on the bytes in [start, end), is a 53-bit integer", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 9 }), fc.uint8Array({ maxLength: 9 }), (m, before, after) => {
        const h = hashOf(m);
        expect(Number.isSafeInteger(h) && h >= 0).toBe(true);
        const framed = new Uint8Array([...before, ...m, ...after]);
        expect(messageHash(framed, before.length, before.length + m.length)).toBe(h);
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
  const sealer = new Sealer(keyring, "test");
  const send = (...msgs: object[]) => evil.sendPacket(nodes[0]!.addr, sealer.seal(compound(msgs.map(encode))));
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
