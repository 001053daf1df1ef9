import { describe, expect, test } from "bun:test";
import { Awareness } from "../../src/gossip/awareness.ts";
import { BroadcastQueue } from "../../src/gossip/broadcast-queue.ts";
import { lanConfig, localConfig, pushPullScale, retransmitLimit, suspicionTimeout } from "../../src/gossip/config.ts";
import { Suspicion, remainingTimeout } from "../../src/gossip/suspicion.ts";
import { FakeClock } from "../../sim/fake-clock.ts";

const b = (s: string) => new TextEncoder().encode(s);
const s = (x: Uint8Array) => new TextDecoder().decode(x);

describe("config math", () => {
  test.each([
    [4, 0, 0],
    [4, 1, 4],
    [4, 9, 4],
    [4, 10, 8],
    [4, 99, 8],
    [4, 100, 12],
    [3, 1000, 12],
  ])("retransmitLimit(mult %d, n %d) = %d", (mult, n, want) => expect(retransmitLimit(mult, n)).toBe(want));

  test.each([
    [4, 1, 1000, 4000],
    [4, 10, 1000, 4000],
    [4, 100, 1000, 8000],
    [4, 1000, 1000, 12000],
    [3, 5, 200, 600],
  ])("suspicionTimeout(mult %d, n %d, interval %d) = %d", (mult, n, iv, want) => expect(suspicionTimeout(mult, n, iv)).toBe(want));

  test.each([
    [30_000, 1, 30_000],
    [30_000, 32, 30_000],
    [30_000, 33, 60_000],
    [30_000, 64, 60_000],
    [30_000, 65, 90_000],
    [30_000, 1000, 30_000 * 6],
  ])("pushPullScale(%d, n %d) = %d", (iv, n, want) => expect(pushPullScale(iv, n)).toBe(want));

  test("LAN defaults are memberlist's DefaultLANConfig timings (docs/gossip.md, Config knobs); local ones are faster; overrides apply", () => {
    const c = lanConfig();
    expect([c.probeIntervalMs, c.probeTimeoutMs, c.indirectChecks, c.gossipIntervalMs, c.gossipNodes]).toEqual([1000, 500, 3, 200, 3]);
    expect([c.retransmitMult, c.suspicionMult, c.suspicionMaxTimeoutMult, c.pushPullIntervalMs, c.awarenessMaxMultiplier, c.udpBufferSize]).toEqual([4, 4, 6, 30_000, 8, 1400]);
    expect(localConfig().probeIntervalMs).toBeLessThan(c.probeIntervalMs);
    expect(lanConfig({ gossipNodes: 5 }).gossipNodes).toBe(5);
  });

  test("bad overrides throw naming the knob", () => {
    expect(() => lanConfig({ probeIntervalMs: 0 })).toThrow(/probeIntervalMs/);
    expect(() => lanConfig({ probeTimeoutMs: 5000 })).toThrow(/probeTimeoutMs: must not exceed/);
    expect(() => lanConfig({ udpBufferSize: 100 })).toThrow(/udpBufferSize/);
    expect(() => lanConfig({ indirectChecks: -1 })).toThrow(/indirectChecks/);
    expect(() => lanConfig({ gossipIntervalMs: Number.NaN })).toThrow(/gossipIntervalMs/);
    expect(() => lanConfig({ maxClockSkewMs: 0 })).toThrow(/maxClockSkewMs/);
    expect(() => lanConfig({ replayCacheMax: 8 })).toThrow(/replayCacheMax: must be an integer ≥ 16/);
    expect(() => lanConfig({ legacyWire: "on" as never })).toThrow(/legacyWire: must be one of off, accept, send/);
  });
});

describe("BroadcastQueue", () => {
  test("a newer broadcast with the same key replaces the queued one (and finishes it)", () => {
    const q = new BroadcastQueue(100);
    let done = 0;
    q.enqueue("k", b("old"), () => done++);
    q.enqueue("k", b("new"));
    expect(done).toBe(1);
    expect(q.size()).toBe(1);
    expect(q.take(1000, 3, 10).map(s)).toEqual(["new"]);
  });

  test("sends each broadcast `limit` times, least-sent first, newest first among equals", () => {
    const q = new BroadcastQueue(100);
    let done = 0;
    q.enqueue("a", b("a"), () => done++);
    q.enqueue("b", b("b"));
    expect(q.take(1000, 2, 1).map(s)).toEqual(["b"]);
    expect(q.take(1000, 2, 1).map(s)).toEqual(["a"]);
    expect(q.take(1000, 2, 10).map(s)).toEqual(["b", "a"]);
    expect(q.size()).toBe(0);
    expect(done).toBe(1);
    expect(q.take(1000, 2, 10)).toEqual([]);
  });

  test("fills the byte budget, skipping what does not fit", () => {
    const q = new BroadcastQueue(100);
    q.enqueue("big", new Uint8Array(50));
    q.enqueue("small1", new Uint8Array(10));
    q.enqueue("small2", new Uint8Array(10));
    const got = q.take(40, 5, 10, 2);
    expect(got.map((x) => x.length)).toEqual([10, 10]);
    expect(q.take(60, 5, 10, 2).map((x) => x.length)).toEqual([50]);
  });

  test("prunes the most-sent, oldest broadcasts beyond the depth cap", () => {
    const q = new BroadcastQueue(2);
    q.enqueue("a", b("a"));
    q.take(1000, 10, 1); // a sent once
    q.enqueue("b", b("b"));
    q.enqueue("c", b("c"));
    expect(q.size()).toBe(2);
    expect(q.peek("a")).toBeUndefined();
  });
});

describe("Suspicion timer", () => {
  test.each([
    [0, 3, 1000, 6000, 6000],
    [1, 3, 1000, 6000, 3500],
    [2, 3, 1000, 6000, 2037],
    [3, 3, 1000, 6000, 1000],
    [5, 3, 1000, 6000, 1000],
    [0, 0, 1000, 6000, 1000],
  ])("after %d of %d confirmations (min %d, max %d) the timeout is %d ms", (c, k, min, max, want) => {
    expect(remainingTimeout(c, k, min, max)).toBe(want);
  });

  test("fires at max without confirmations, earlier with them, never for duplicates or the accuser", () => {
    const clock = new FakeClock(0);
    let fired = -1;
    new Suspicion(clock, "a", 3, 1000, 6000, () => (fired = clock.now()));
    clock.advance(10_000);
    expect(fired).toBe(6000);

    const c2 = new FakeClock(0);
    let at = -1;
    const sus = new Suspicion(c2, "a", 3, 1000, 6000, () => (at = c2.now()));
    c2.advance(500);
    expect(sus.confirm("a")).toBe(false);
    expect(sus.confirm("b")).toBe(true);
    expect(sus.confirm("b")).toBe(false);
    c2.advance(1000);
    expect(sus.confirm("c")).toBe(true); // 2 confirmations → 2037 ms from start
    c2.advance(10_000);
    expect(at).toBe(2037);
  });

  test("a confirmation after the new deadline passed fires at once; cancel stops it", () => {
    const clock = new FakeClock(0);
    let fired = 0;
    const sus = new Suspicion(clock, "a", 3, 1000, 6000, () => fired++);
    clock.advance(4000);
    sus.confirm("b");
    sus.confirm("c");
    clock.advance(0);
    expect(fired).toBe(1);
    const sus2 = new Suspicion(clock, "a", 3, 1000, 6000, () => fired++);
    sus2.cancel();
    clock.advance(10_000);
    expect(fired).toBe(1);
  });
});

describe("Awareness", () => {
  test("scales timeouts by health+1 and clamps to [0, max−1]", () => {
    const a = new Awareness(8);
    expect(a.scale(500)).toBe(500);
    a.applyDelta(3);
    expect(a.scale(500)).toBe(2000);
    a.applyDelta(100);
    expect(a.health()).toBe(7);
    a.applyDelta(-100);
    expect(a.health()).toBe(0);
  });
});
