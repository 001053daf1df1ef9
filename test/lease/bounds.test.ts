/**
 * Record timestamps against the nodes' clocks (maxClockSkewMs, 60 s by default): records
 * dated further ahead are refused, a node's own claims stay within half the skew of its
 * clock, a node whose clock is far behind its peers claims nothing, and a persisted lease
 * dated ahead of the clock is claimed anew. Nodes get their own clocks by an offset on
 * the simulation's FakeClock.
 */
import { describe, expect, test } from "bun:test";
import type { Clock } from "../../src/clock.ts";
import { parseNetConf } from "../../src/net-conf.ts";
import type { ClaimBlockedError } from "../../src/lease/allocator.ts";
import { encodeRecord } from "../../src/lease/record-codec.ts";
import type { Lease } from "../../src/lease/types.ts";
import { FakeSim } from "./harness.ts";

const net3 = parseNetConf({ Network: "10.244.0.0/16", SubnetMin: "10.244.1.0", SubnetMax: "10.244.3.0", Backend: { Type: "host-gw" } });
const net16 = parseNetConf({ Network: "10.244.0.0/16", Backend: { Type: "host-gw" } });

/** The simulation's clock shifted by `offset.ms` (changeable later: a clock that gets fixed). */
const shifted = (sim: FakeSim, offset: { ms: number }): Clock => ({
  now: () => sim.clock.now() + offset.ms,
  after: (ms, fn) => sim.clock.after(ms, fn),
});

const record = (over: Partial<Lease> & { nodeName: string; claimedAt: number }): Lease => ({
  nodeId: "f".repeat(32),
  generation: 1,
  version: 0,
  subnet: "10.244.200.0/24",
  publicIp: "192.0.2.250",
  backend: { type: "host-gw" },
  renewedAt: over.claimedAt,
  ...over,
});

describe("record timestamps and the clocks", () => {
  test("a record dated up to maxClockSkewMs ahead is accepted, one millisecond more is rejected and counted", async () => {
    const sim = new FakeSim({ seed: 31, net: net16 });
    sim.addNode("a", []);
    sim.start("a");
    expect(await sim.runUntil(() => !!sim.nodes.get("a")!.lease, 5000)).toBe(true);
    const a = sim.nodes.get("a")!.cluster;
    const deliver = (l: Lease) => sim.hub.nodes.get("a")!.delegate.notifyMessage(encodeRecord(l), "x");
    const now = sim.clock.now();
    deliver(record({ nodeName: "at-bound", claimedAt: now + 60_000 }));
    deliver(record({ nodeName: "claimed-beyond", claimedAt: now + 60_001, subnet: "10.244.201.0/24" }));
    deliver(record({ nodeName: "renewed-beyond", claimedAt: now, renewedAt: now + 60_001, subnet: "10.244.202.0/24" }));
    deliver(record({ nodeName: "max", claimedAt: Number.MAX_SAFE_INTEGER, subnet: "10.244.203.0/24" }));
    expect(a.table().get("at-bound")).toBeDefined();
    for (const n of ["claimed-beyond", "renewed-beyond", "max"]) expect({ n, held: a.table().get(n) }).toEqual({ n, held: undefined });
    expect(a.metrics().rejectedRecords).toBe(3);
    expect(a.problems()).toEqual([
      `lease records of 3 peer(s) rejected as dated more than 60 s ahead of this node's clock (max: ${Math.round((Number.MAX_SAFE_INTEGER - now) / 1000)} s ahead): this clock is behind, theirs ahead, or the records are forged`,
    ]);
  });

  test("a claim after a record dated near the bound stays within half the skew, so a peer 29 s behind accepts it", async () => {
    const sim = new FakeSim({ seed: 32, net: net16 });
    sim.addNode("a", []);
    sim.start("a");
    expect(await sim.runUntil(() => !!sim.nodes.get("a")!.lease, 5000)).toBe(true);
    const now = sim.clock.now();
    // A key holder's record dated 59 s ahead: within the bound, so a keeps it.
    sim.hub.nodes.get("a")!.delegate.notifyMessage(encodeRecord(record({ nodeName: "soon", claimedAt: now + 59_000 })), "x");
    expect(sim.nodes.get("a")!.cluster.table().get("soon")).toBeDefined();
    sim.addNode("b", ["a:7946"]);
    sim.start("b");
    expect(await sim.runUntil(() => !!sim.nodes.get("b")!.lease, 10_000)).toBe(true);
    const b = sim.nodes.get("b")!.lease!;
    expect(b.claimedAt).toBeLessThanOrEqual(sim.clock.now() + 30_000);
    // c's clock is 29 s behind: b's claim is at most 59 s ahead of it, inside the bound.
    sim.o.extra = { clock: shifted(sim, { ms: -29_000 }) };
    sim.addNode("c", ["a:7946"]);
    sim.start("c");
    expect(await sim.runUntil(() => !!sim.nodes.get("c")!.lease, 10_000)).toBe(true);
    const c = sim.nodes.get("c")!.cluster;
    expect(c.table().get("b")?.subnet).toBe(b.subnet);
    expect(c.leases().map((l) => l.nodeName).sort()).toEqual(["a", "b", "c"]);
    expect(sim.duplicates()).toEqual([]);
  });

  test("a node whose clock is 10 min behind its peers claims nothing (no eviction) and says why; once its clock is fixed it goes on", async () => {
    const sim = new FakeSim({ seed: 33, net: net3 });
    for (const n of ["a", "b", "c"]) {
      sim.addNode(n, n === "a" ? [] : ["a:7946"]);
      sim.start(n);
    }
    expect(await sim.runUntil(() => ["a", "b", "c"].every((n) => sim.nodes.get(n)!.lease), 20_000)).toBe(true);
    const before = ["a", "b", "c"].map((n) => sim.nodes.get(n)!.lease!);
    const offset = { ms: -600_000 };
    const reported: ClaimBlockedError[] = [];
    sim.o.extra = { clock: shifted(sim, offset), onExhausted: (e) => void reported.push(e), exhaustedRetryMs: 10_000 };
    sim.addNode("late", ["a:7946"]);
    sim.start("late");
    await sim.run(30_000);
    // Its peers' records all look 10 min ahead to it: a claim would see a free range and
    // out-rank every lease with its early claimedAt.
    for (const [i, n] of ["a", "b", "c"].entries()) {
      const cl = sim.nodes.get(n)!.cluster;
      expect(cl.table().get("late")).toBeUndefined();
      expect(cl.ownLease()).toEqual(before[i]!);
      expect(cl.renumbering()).toBeUndefined();
    }
    const late = sim.nodes.get("late")!;
    expect(late.lease).toBeUndefined();
    expect(reported[0]!.name).toBe("ClockSkewError");
    expect(reported[0]!.message).toMatch(/^Cannot claim a subnet: lease records of 3 of 3 peers are dated up to (59|60)\d s ahead of this node's clock \(allowed: 60 s\); fix time synchronisation$/);
    // Clock fixed: the peers' records are accepted at the next exchange, and the range is full.
    offset.ms = 0;
    expect(await sim.runUntil(() => reported.at(-1)!.name === "SubnetExhaustedError", 60_000)).toBe(true);
    expect(sim.duplicates()).toEqual([]);
  });

  test("a persisted lease dated ahead of the clock (clock set back) is claimed anew, for the same subnet when free", async () => {
    const sim = new FakeSim({ seed: 34, net: net16 });
    sim.addNode("a", []);
    sim.start("a");
    expect(await sim.runUntil(() => !!sim.nodes.get("a")!.lease, 5000)).toBe(true);
    const first = sim.nodes.get("a")!.lease!;
    await sim.nodes.get("a")!.cluster.stop({ leave: false });
    const clock = shifted(sim, { ms: -600_000 });
    sim.o.extra = { clock };
    sim.addNode("a", []);
    sim.start("a");
    expect(await sim.runUntil(() => sim.nodes.get("a")!.lease?.generation === first.generation + 1, 10_000)).toBe(true);
    const again = sim.nodes.get("a")!.lease!;
    expect(again.subnet).toBe(first.subnet);
    expect(again.claimedAt).toBeLessThanOrEqual(clock.now());
    expect(again.claimedAt).toBeLessThan(first.claimedAt);
  });
});
