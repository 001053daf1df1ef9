import { subnetsOf } from "../../src/lease/families.ts";
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { LeaseTable } from "../../src/lease/table.ts";
import { RecordValidator, rangeOf } from "../../src/lease/record-validate.ts";
import { canonicalText, encodeState } from "../../src/lease/record-codec.ts";
import { checkDecoded, decodePayload } from "../../src/lease/payload.ts";
import { compareRecords } from "../../src/lease/record-order.ts";
import { stateDigest } from "../../src/lease/state-digest.ts";
import { parseNetConf } from "../../src/net-conf.ts";
import type { Lease } from "../../src/lease/types.ts";
import { arbLease, names } from "./arbitrary.ts";

/** The table's content as comparable text (order-independent). */
const dump = (t: LeaseTable) => [...t.all()].map(canonicalText).sort().join("\n");
const fold = (ls: Lease[], t = new LeaseTable()) => {
  for (const l of ls) t.merge(l);
  return t;
};

describe("merge laws", () => {
  test("commutative: merge order does not matter", () => {
    fc.assert(
      fc.property(
        fc.array(arbLease, { maxLength: 20 }).chain((ls) => fc.tuple(fc.constant(ls), fc.shuffledSubarray(ls, { minLength: ls.length, maxLength: ls.length }))),
        ([ls, shuffled]) => {
          expect(dump(fold(shuffled))).toBe(dump(fold(ls)));
          expect(dump(fold([...ls].reverse()))).toBe(dump(fold(ls)));
        },
      ),
      { numRuns: 300 },
    );
  });

  test("associative: merging tables in any grouping gives the same table", () => {
    fc.assert(
      fc.property(fc.array(arbLease), fc.array(arbLease), fc.array(arbLease), (a, b, c) => {
        const ab_c = fold([...fold(c).all()], fold([...fold(b).all()], fold(a)));
        const bc = fold([...fold(c).all()], fold(b));
        const a_bc = fold([...bc.all()], fold(a));
        expect(dump(ab_c)).toBe(dump(a_bc));
      }),
      { numRuns: 300 },
    );
  });

  test("idempotent: merging a table into itself changes nothing", () => {
    fc.assert(
      fc.property(fc.array(arbLease), (ls) => {
        const t = fold(ls);
        const before = dump(t);
        const rev = t.revision;
        for (const l of [...t.all()]) expect(t.merge(l)).toBe(false);
        for (const l of [...t.all()]) expect(t.merge({ ...l, backend: { ...l.backend } })).toBe(false);
        expect(dump(t)).toBe(before);
        expect(t.revision).toBe(rev);
      }),
    );
  });

  test("two nodes that exchanged full state (through the wire codec) hold the same table", () => {
    const range = rangeOf(parseNetConf({ Network: "10.244.0.0/16" }));
    const v = new RecordValidator({ 4: range });
    const exchange = (from: LeaseTable, to: LeaseTable) => {
      const d = decodePayload(encodeState(from.all()));
      if ("error" in d) throw new Error(d.error);
      for (const raw of d.raw) {
        const l = v.check(raw);
        if (typeof l === "string") throw new Error(l);
        to.merge(l);
      }
    };
    fc.assert(
      fc.property(fc.array(arbLease), fc.array(arbLease), (a, b) => {
        const ta = fold(a);
        const tb = fold(b);
        exchange(ta, tb); // push
        exchange(tb, ta); // pull
        expect(dump(ta)).toBe(dump(tb));
        // Decoded records hash as the originals do (their wire bytes are cached from the
        // received tuple, not rebuilt), so the digests agree too.
        expect([...ta.digest()]).toEqual([...tb.digest()]);
        const rebuilt = [...tb.all()].map((l) => ({ ...l, backend: { ...l.backend } }));
        expect([...tb.digest()]).toEqual([...stateDigest(rebuilt)]);
      }),
      { numRuns: 200 },
    );
  });

  test("skipping records the receiver holds byte for byte changes no merge result", () => {
    const range = rangeOf(parseNetConf({ Network: "10.244.0.0/16" }));
    const v = new RecordValidator({ 4: range });
    const merged = (from: LeaseTable, to: LeaseTable, skip: boolean) => {
      const payload = encodeState(from.all());
      const d = decodePayload(payload, skip ? (n) => to.get(n) : undefined);
      if ("error" in d) throw new Error(d.error);
      for (let i = 0; i < d.raw.length; i++) {
        const l = checkDecoded(v, d, i, payload);
        if (typeof l === "string") throw new Error(l);
        to.merge(l);
      }
      return d;
    };
    fc.assert(
      fc.property(fc.array(arbLease), fc.array(arbLease), (a, b) => {
        const plain = fold(b);
        const skipping = fold(b);
        const same = [...fold(a).all()].filter((l) => { const h = plain.get(l.nodeName); return h !== undefined && canonicalText(h) === canonicalText(l); }).length;
        merged(fold(a), plain, false);
        const d = merged(fold(a), skipping, true);
        expect(dump(skipping)).toBe(dump(plain));
        // Exactly the records held identically were left out (decoded copies, so by value).
        expect(d.skipped).toBe(same);
        expect(d.raw.length + d.skipped).toBe(fold(a).size);
      }),
      { numRuns: 300 },
    );
  });

  test("skipping: a malformed state payload reports the same error as a full decode", () => {
    const t = fold([{ nodeName: "a", nodeId: "0".repeat(32), generation: 1, version: 0, subnet: "10.244.1.0/24", publicIp: "192.0.2.1", backend: { type: "vxlan" }, claimedAt: 1, renewedAt: 1 }]);
    const state = encodeState(t.all());
    for (const bytes of [state.slice(0, state.length - 1), new Uint8Array([...state, 0xc0]), new Uint8Array([...state.slice(0, 4), 0xc1, ...state.slice(5)])]) {
      const whole = decodePayload(bytes);
      const skipping = decodePayload(bytes, (n) => t.get(n));
      expect(skipping).toEqual(whole);
    }
  });

  test("the order is total: ties on (generation, version) with different content resolve by content", () => {
    const a: Lease = { nodeName: "a", nodeId: "0".repeat(32), generation: 2, version: 1, subnet: "10.244.1.0/24", publicIp: "192.0.2.1", backend: { type: "vxlan" }, claimedAt: 1, renewedAt: 1 };
    const b: Lease = { ...a, subnet: "10.244.2.0/24" };
    expect(compareRecords(a, b)).toBe(-compareRecords(b, a));
    expect(compareRecords(a, b)).not.toBe(0);
    expect(compareRecords(a, { ...a })).toBe(0);
    expect(compareRecords({ ...a, generation: 3, version: 0 }, { ...a, version: 9 })).toBe(1);
  });

  test("a tombstone with a higher version wins and a stale live copy cannot resurrect it", () => {
    const live: Lease = { nodeName: "a", nodeId: "0".repeat(32), generation: 1, version: 3, subnet: "10.244.1.0/24", publicIp: "192.0.2.1", backend: { type: "vxlan" }, claimedAt: 1 };
    const tomb = { ...live, version: 4, deleted: true };
    const t = fold([live, tomb]);
    expect(t.merge(live)).toBe(false);
    expect(t.get("a")!.deleted).toBe(true);
    expect(t.claimants("10.244.1.0/24")).toEqual([]);
  });
});

describe("stateDigest", () => {
  const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
  test("equal exactly when two tables hold the same records, whatever the merge order", () => {
    fc.assert(
      fc.property(
        fc.array(arbLease, { maxLength: 20 }).chain((ls) => fc.tuple(fc.constant(ls), fc.shuffledSubarray(ls, { minLength: ls.length, maxLength: ls.length }))),
        fc.array(arbLease, { maxLength: 20 }),
        ([ls, shuffled], other) => {
          const a = fold(ls);
          expect(hex(stateDigest(fold(shuffled).all()))).toBe(hex(stateDigest(a.all())));
          const b = fold(other);
          expect(hex(stateDigest(b.all())) === hex(stateDigest(a.all()))).toBe(dump(b) === dump(a));
        },
      ),
      { numRuns: 300 },
    );
  });

  test("the table's incremental digest() equals stateDigest of its records after any merges and removals", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(arbLease.map((l) => ({ merge: l })), fc.constantFrom(...names).map((n) => ({ remove: n })), fc.constant({ digest: true })), { maxLength: 40 }),
        (ops) => {
          const t = new LeaseTable();
          for (const op of ops) {
            if ("merge" in op) t.merge(op.merge);
            else if ("remove" in op) t.remove(op.remove);
            else expect(hex(t.digest())).toBe(hex(stateDigest(t.all())));
          }
          expect(hex(t.digest())).toBe(hex(stateDigest(t.all())));
        },
      ),
      { numRuns: 300 },
    );
  });

  test("claimants() and claimedSubnets() agree with the records after any merges and removals", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(arbLease.map((l) => ({ merge: l })), fc.constantFrom(...names).map((n) => ({ remove: n }))), { maxLength: 40 }), (ops) => {
        const t = new LeaseTable();
        for (const op of ops) {
          if ("merge" in op) t.merge(op.merge);
          else t.remove(op.remove);
          const want = new Map<string, string[]>();
          for (const l of t.all()) if (!l.deleted) for (const s of subnetsOf(l)) want.set(s, [...(want.get(s) ?? []), l.nodeName].sort());
          expect([...t.claimedSubnets()].sort()).toEqual([...want.keys()].sort());
          for (const [subnet, ns] of want) expect(t.claimants(subnet).map((l) => l.nodeName).sort()).toEqual(ns);
        }
      }),
      { numRuns: 300 },
    );
  });

  test("a table nobody asks for a digest does not grow a backlog, and still digests right", () => {
    const t = new LeaseTable();
    const gen = fc.sample(arbLease, { numRuns: 2000, seed: 5 });
    for (const l of gen) t.merge({ ...l, version: l.version + gen.indexOf(l) });
    expect((t as unknown as { pending: unknown[] }).pending.length).toBeLessThanOrEqual(2 * t.size + 64);
    expect(hex(t.digest())).toBe(hex(stateDigest(t.all())));
  });
});
