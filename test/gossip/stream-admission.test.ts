import { describe, expect, test } from "bun:test";
import { StreamAdmission } from "../../src/gossip/stream-admission.ts";

function make(over: Partial<{ maxStreams: number; maxPerSource: number; budgetBytes: number }> = {}) {
  let t = 0;
  const a = new StreamAdmission<string>({ maxStreams: 4, maxPerSource: 2, budgetBytes: 100, staleAfterMs: 1000, smallBytes: 5, ...over }, () => t);
  return { a, tick: (ms: number) => void (t += ms) };
}

describe("StreamAdmission", () => {
  test("refuses a source's streams beyond its cap, without touching its open ones", () => {
    const { a } = make();
    expect(a.admit("x1", "10.0.0.1")).toEqual([]);
    expect(a.admit("x2", "10.0.0.1")).toEqual([]);
    expect(a.admit("x3", "10.0.0.1")).toBeNull();
    expect(a.admit("y1", "10.0.0.2")).toEqual([]);
    a.release("x1");
    expect(a.admit("x3", "10.0.0.1")).toEqual([]);
    expect(a.size()).toBe(3);
  });

  test("when full, evicts only a stale incomplete stream, of the heaviest source first", () => {
    const { a, tick } = make();
    for (const [c, s] of [["b1", "2"], ["a1", "1"], ["a2", "1"], ["c1", "3"]] as const) expect(a.admit(c, s)).toEqual([]);
    expect(a.admit("d1", "4")).toBeNull(); // nobody is stale yet: refuse, do not churn
    tick(1000);
    expect(a.admit("d1", "4")).toEqual(["a1"]); // b1 is older, but source 1 holds two
    a.complete("a2");
    expect(a.admit("e1", "5")).toEqual(["b1"]); // all hold one now: the oldest stale incomplete
    tick(1000);
    for (const c of ["c1", "d1", "e1"]) a.complete(c);
    expect(a.admit("f1", "6")).toBeNull(); // everything serves a complete request
  });

  test("announced request lengths share a budget; stale reservations make room", () => {
    const { a, tick } = make({ maxStreams: 10, maxPerSource: 4, budgetBytes: 200 });
    a.admit("a", "1");
    a.admit("b", "2");
    expect(a.reserve("a", 50)).toEqual([]);
    expect(a.reserve("b", 50)).toEqual([]);
    a.admit("c", "3");
    a.admit("d", "4");
    expect(a.reserve("c", 50)).toEqual([]);
    expect(a.reservedBytes()).toBe(150);
    expect(a.reserve("d", 50)).toEqual([]);
    tick(1000);
    a.release("d");
    a.admit("e", "5");
    expect(a.reserve("e", 50)).toEqual([]); // 150 + 50 fits exactly
    a.release("e");
    a.admit("f", "6");
    a.admit("g", "7");
    expect(a.reserve("f", 50)).toEqual([]);
    expect(a.reserve("g", 40)).toEqual(["a"]); // the oldest stale reservation makes room
    expect(a.reservedBytes()).toBe(190);
    expect(a.reserve("g", 201)).toBeNull(); // can never fit
    a.complete("b"); // a complete request holds no budget
    expect(a.reservedBytes()).toBe(140);
    expect(a.reserve("zzz", 10)).toBeNull(); // unknown stream
  });

  test("small requests need no budget; one source may hold a quarter of it", () => {
    const { a } = make({ maxPerSource: 4, budgetBytes: 400 });
    a.admit("a", "1");
    a.admit("b", "1");
    a.admit("c", "2");
    expect(a.reserve("a", 5)).toEqual([]);
    expect(a.reservedBytes()).toBe(0);
    expect(a.reserve("a", 100)).toEqual([]);
    expect(a.reserve("b", 1)).toEqual([]); // small: fine
    expect(a.reserve("b", 6)).toBeNull(); // source 1 would hold 106 > 400/4
    expect(a.reserve("c", 100)).toEqual([]);
  });

  test("a fresh reservation is never evicted: the newcomer that does not fit is refused", () => {
    const { a } = make({ maxStreams: 10, maxPerSource: 4, budgetBytes: 200 });
    for (const [c, src] of [["a", "1"], ["b", "2"], ["c", "3"], ["d", "4"], ["e", "5"]]) a.admit(c!, src!);
    for (const c of ["a", "b", "c", "d"]) expect(a.reserve(c, 50)).toEqual([]);
    expect(a.reserve("e", 50)).toBeNull();
    a.complete("a");
    expect(a.reserve("e", 50)).toEqual([]);
  });
});
