import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { RECORD_HASH_BYTES, xorRecordHash } from "../../src/wire/record-hash.ts";

const hashOf = (b: Uint8Array): string => {
  const acc = new Uint8Array(RECORD_HASH_BYTES);
  xorRecordHash(acc, b);
  return Buffer.from(acc).toString("hex");
};

describe("record hash", () => {
  test("XORs into the accumulator: twice is nothing, order does not matter", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.uint8Array({ maxLength: 100 }), (a, b) => {
        const acc = new Uint8Array(RECORD_HASH_BYTES);
        xorRecordHash(acc, a);
        xorRecordHash(acc, b);
        const other = new Uint8Array(RECORD_HASH_BYTES);
        xorRecordHash(other, b);
        xorRecordHash(other, a);
        expect(acc).toEqual(other);
        xorRecordHash(acc, a);
        xorRecordHash(acc, b);
        expect(acc).toEqual(new Uint8Array(RECORD_HASH_BYTES));
      }),
    );
  });

  test("every single-bit change and every length (each tail size) gives another hash, in both halves", () => {
    const base = Uint8Array.from({ length: 70 }, (_, i) => (i * 37) & 255);
    const seen = new Set<string>();
    const halves = [new Set<string>(), new Set<string>()];
    const add = (b: Uint8Array) => {
      const h = hashOf(b);
      seen.add(h);
      halves[0]!.add(h.slice(0, 32));
      halves[1]!.add(h.slice(32));
    };
    let n = 0;
    for (let len = 0; len <= base.length; len++, n++) add(base.subarray(0, len));
    for (let i = 0; i < base.length; i++)
      for (let bit = 0; bit < 8; bit++, n++) {
        const b = base.slice();
        b[i]! ^= 1 << bit;
        add(b);
      }
    expect(seen.size).toBe(n);
    expect(halves[0]!.size).toBe(n);
    expect(halves[1]!.size).toBe(n);
  });

  test("the two halves are different hashes (different seeds)", () => {
    const h = hashOf(new TextEncoder().encode("node-1"));
    expect(h.slice(0, 32)).not.toBe(h.slice(32));
  });
});
