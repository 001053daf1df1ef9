/**
 * Membership keeps liveCount() and its sampling list up to date incrementally; any
 * sequence of joins, suspicions, deaths, leaves, refutations and reaps must leave them
 * equal to a recount of the table, and each member's cached push-pull entry equal to a
 * fresh encoding.
 */
import { expect, test } from "bun:test";
import fc from "fast-check";
import { Awareness } from "../../src/gossip/awareness.ts";
import { T } from "../../src/gossip/messages.ts";
import { lanConfig } from "../../src/gossip/config.ts";
import { Membership, isLive } from "../../src/gossip/membership.ts";
import { seededRandom } from "../../src/gossip/prng.ts";
import { encodeMemberEntry } from "../../src/gossip/push-pull-codec.ts";
import { silentLogger } from "../../src/log.ts";
import { FakeClock } from "../../sim/fake-clock.ts";

type Op = { op: "alive" | "suspect" | "dead" | "left" | "wait" | "sample" | "meta"; who: number; inc: number; addr: number; meta: Uint8Array | null };
const opArb: fc.Arbitrary<Op> = fc.record({
  op: fc.constantFrom("alive", "suspect", "dead", "left", "wait", "sample", "meta"),
  who: fc.nat(12), // 0 = ourselves
  inc: fc.nat(4),
  addr: fc.nat(1),
  meta: fc.option(fc.uint8Array({ minLength: 1, maxLength: 2 })),
});

test("liveCount(), randomMembers() and entry() agree with the member table after any sequence", () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 200 }), fc.nat(), fc.integer({ min: 3, max: 20 }), (ops, seed, maxMembers) => {
      const clock = new FakeClock();
      const config = lanConfig({ maxMembers, gossipToTheDeadMs: 3000 });
      const m = new Membership({
        name: "n0", addr: "10.0.0.0:1", clock, config, awareness: new Awareness(8),
        rnd: seededRandom(seed), logger: silentLogger, broadcast: () => {},
      });
      for (const o of ops) {
        const name = `n${o.who}`;
        if (o.op === "alive") m.aliveNode({ t: T.alive, name, addr: `10.0.${o.addr}.${o.who}:1`, inc: o.inc, ...(o.meta ? { meta: o.meta } : {}) });
        else if (o.op === "meta") m.updateMeta(o.meta ?? undefined);
        else if (o.op === "suspect") m.suspectNode({ t: T.suspect, name, inc: o.inc, from: "n99" });
        else if (o.op === "dead") m.deadNode({ t: T.dead, name, inc: o.inc, from: "n99" });
        else if (o.op === "left") m.deadNode({ t: T.dead, name, inc: o.inc, from: name });
        else if (o.op === "wait") {
          clock.advance(1000 * (o.inc + 1)); // suspicion timeouts fire
          m.reap();
        } else {
          const got = m.randomMembers(o.inc + 1, isLive);
          for (const s of got) expect(m.get(s.name)).toBe(s);
          expect(new Set(got).size).toBe(got.length);
          expect(got.length).toBe(Math.min(o.inc + 1, m.all().filter((s) => s.name !== "n0" && isLive(s)).length));
        }
        expect(m.liveCount()).toBe(m.all().filter(isLive).length);
        // The cached push-pull entries: filled here, so the next op must invalidate what it changes.
        for (const s of m.all()) expect(m.entry(s)).toStrictEqual(encodeMemberEntry(s));
      }
      m.stop();
    }),
    { numRuns: 300 },
  );
});
