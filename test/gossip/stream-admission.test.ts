import { describe, expect, test } from "bun:test";
import { StreamAdmission } from "../../src/gossip/stream-admission.ts";

const limits = { maxStreams: 4, maxPerSource: 2, budgetBytes: 100 };

describe("StreamAdmission", () => {
  test("refuses a source's streams beyond its cap, without touching its open ones", () => {
    const a = new StreamAdmission<string>(limits);
    expect(a.admit("x1", "10.0.0.1")).toEqual([]);
    expect(a.admit("x2", "10.0.0.1")).toEqual([]);
    expect(a.admit("x3", "10.0.0.1")).toBeNull();
    expect(a.admit("y1", "10.0.0.2")).toEqual([]);
    a.release("x1");
    expect(a.admit("x3", "10.0.0.1")).toEqual([]);
    expect(a.size()).toBe(3);
  });

  test("when full, closes the oldest incomplete stream of the heaviest source", () => {
    const a = new StreamAdmission<string>(limits);
    for (const [c, s] of [["b1", "2"], ["a1", "1"], ["a2", "1"], ["c1", "3"]] as const) expect(a.admit(c, s)).toEqual([]);
    expect(a.admit("d1", "4")).toEqual(["a1"]); // b1 is older, but source 1 holds two
    a.complete("a2");
    expect(a.admit("e1", "5")).toEqual(["b1"]); // all hold one now: the oldest incomplete
    for (const c of ["c1", "d1", "e1"]) a.complete(c);
    expect(a.admit("f1", "6")).toBeNull(); // everything serves a complete request
  });

  test("announced request lengths share a budget; the oldest incomplete make room", () => {
    const a = new StreamAdmission<string>({ ...limits, maxPerSource: 4 });
    a.admit("a", "1");
    a.admit("b", "2");
    a.admit("c", "3");
    expect(a.reserve("a", 60)).toEqual([]);
    expect(a.reserve("b", 30)).toEqual([]);
    expect(a.reservedBytes()).toBe(90);
    expect(a.reserve("c", 50)).toEqual(["a"]);
    expect(a.reservedBytes()).toBe(80);
    expect(a.reserve("c", 101)).toBeNull(); // can never fit
    a.complete("b"); // a complete request holds no budget
    expect(a.reservedBytes()).toBe(50);
    expect(a.reserve("zzz", 10)).toBeNull(); // unknown stream
  });

  test("budget held by complete streams is not reclaimed; refused when it cannot fit", () => {
    const a = new StreamAdmission<string>({ maxStreams: 10, maxPerSource: 10, budgetBytes: 100 });
    a.admit("a", "1");
    a.admit("b", "1");
    expect(a.reserve("a", 80)).toEqual([]);
    a.complete("a");
    expect(a.reserve("b", 80)).toEqual([]);
    a.admit("c", "1");
    expect(a.reserve("c", 30)).toEqual(["b"]);
    expect(a.reserve("c", 100)).toEqual([]);
  });
});
