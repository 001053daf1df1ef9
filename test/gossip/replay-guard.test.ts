import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { FRESH, REPLAYED, ReplayGuard, SKEWED } from "../../src/gossip/replay-guard.ts";

const NOW = 1_700_000_000_000;
const SKEW = 30_000;
const name = (v: number) => ["fresh", "skewed", "replayed"][v];

describe("ReplayGuard", () => {
  test("the window: sent-at within ±maxSkew of now is fresh, outside (or NaN) is skewed", () => {
    const cases: [string, number, string][] = [
      ["now", NOW, "fresh"],
      ["skew ago", NOW - SKEW, "fresh"],
      ["skew ahead", NOW + SKEW, "fresh"],
      ["skew + 1 ms ago", NOW - SKEW - 1, "skewed"],
      ["skew + 1 ms ahead", NOW + SKEW + 1, "skewed"],
      ["two days ago", NOW - 2 * 86_400_000, "skewed"],
      ["NaN", Number.NaN, "skewed"],
    ];
    const g = new ReplayGuard(SKEW, 1024);
    const got = cases.map(([what, at], i) => [what, at, name(g.admit(at, i, NOW))!]);
    expect(got).toEqual(cases);
  });

  test("an id is accepted once; another id at the same time is fresh", () => {
    const g = new ReplayGuard(SKEW, 1024);
    expect(name(g.admit(NOW, 42, NOW))).toBe("fresh");
    expect(name(g.admit(NOW, 42, NOW))).toBe("replayed");
    expect(name(g.admit(NOW, 42, NOW + 1000))).toBe("replayed");
    expect(name(g.admit(NOW, 43, NOW))).toBe("fresh");
  });

  test("an id is forgotten once its time has left the window, where the window refuses it", () => {
    const g = new ReplayGuard(SKEW, 1024);
    g.admit(NOW, 1, NOW);
    const later = NOW + SKEW + 1;
    expect(name(g.admit(later, 2, later))).toBe("fresh");
    expect(g.size).toBe(1); // id 1 dropped on the way
    expect(name(g.admit(NOW, 1, later))).toBe("skewed");
    // Even if our clock steps back, the forgotten id stays refused: the floor rose to its time.
    expect(g.floor).toBe(NOW);
    expect(name(g.admit(NOW, 1, NOW))).toBe("replayed");
  });

  test("a full cache forgets its oldest id and refuses anything sent at or before that id's time", () => {
    const g = new ReplayGuard(SKEW, 16);
    for (let i = 0; i < 16; i++) expect(g.admit(NOW + i, i, NOW + 20)).toBe(FRESH);
    expect(g.floor).toBe(-Infinity);
    expect(g.admit(NOW + 16, 16, NOW + 20)).toBe(FRESH);
    expect({ size: g.size, floor: g.floor }).toEqual({ size: 16, floor: NOW });
    expect(g.admit(NOW, 0, NOW + 20)).toBe(REPLAYED); // the forgotten id
    expect(g.admit(NOW, 99, NOW + 20)).toBe(REPLAYED); // never seen, but at the floor
    expect(g.admit(NOW + 1, 1, NOW + 20)).toBe(REPLAYED); // still remembered
    expect(g.admit(NOW + 1, 100, NOW + 20)).toBe(FRESH); // above the floor
    expect(g.size).toBe(16);
  });

  test("the cache grows on demand up to its cap", () => {
    const g = new ReplayGuard(SKEW, 1000);
    expect(g.capacity).toBe(256);
    for (let i = 0; i < 700; i++) g.admit(NOW, i, NOW);
    expect({ size: g.size, capacity: g.capacity, floor: g.floor }).toEqual({ size: 700, capacity: 1000, floor: -Infinity });
    for (let i = 0; i < 700; i++) expect(g.admit(NOW, i, NOW)).toBe(REPLAYED);
  });

  test("never accepts a message twice, whatever the order of times, clock steps and cache size", () => {
    // Against a model that remembers every accepted message forever. A message is its id
    // and sent-at time (both are sealed: a replay repeats both).
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }),
        fc.array(fc.record({ id: fc.integer({ min: 0, max: 200 }), sentAt: fc.integer({ min: -40, max: 40 }), step: fc.integer({ min: -15, max: 30 }) }), { maxLength: 600 }),
        (cap, ops) => {
          const g = new ReplayGuard(10, cap);
          const accepted = new Set<string>();
          let now = 0;
          for (const { id, sentAt, step } of ops) {
            now += step;
            const v = g.admit(now + sentAt, id, now);
            const msg = `${id}@${now + sentAt}`;
            if (v === FRESH) {
              if (accepted.has(msg)) return false;
              accepted.add(msg);
            } else if (v === SKEWED && Math.abs(sentAt) <= 10) return false;
            if (g.size > cap) return false;
          }
          return true;
        },
      ),
      { numRuns: 500, seed: 7 },
    );
  });

  test("rejects bad parameters", () => {
    expect(() => new ReplayGuard(0, 10)).toThrow(/maxSkewMs/);
    expect(() => new ReplayGuard(10, 0)).toThrow(/maxEntries/);
  });
});
