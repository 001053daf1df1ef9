import { describe, expect, test } from "bun:test";
import { parseNetConf } from "../../src/net-conf.ts";
import { canonicalText, encodeRecord, encodeState } from "../../src/lease/record-codec.ts";
import { compareRecords } from "../../src/lease/record-order.ts";
import { rangeOf } from "../../src/lease/record-validate.ts";
import { pickSubnet } from "../../src/lease/allocator.ts";
import type { Lease } from "../../src/lease/types.ts";
import { MemStore } from "../../sim/mem-store.ts";
import { FakeSim } from "./harness.ts";

const net4 = parseNetConf({ Network: "10.244.0.0/16", SubnetMin: "10.244.1.0", SubnetMax: "10.244.4.0", Backend: { Type: "host-gw" } });
const HOUR = 3_600_000;
const net16 = parseNetConf({ Network: "10.244.0.0/16", Backend: { Type: "host-gw" } });

describe("cluster on a fake gossip layer", () => {
  test("a lone node bootstraps, commits and persists; three nodes agree on three distinct leases", async () => {
    const sim = new FakeSim({ seed: 1 });
    sim.addNode("a", ["a:7946"]); // own address only: bootstrap
    sim.start("a");
    expect(await sim.runUntil(() => !!sim.nodes.get("a")!.lease, 5000)).toBe(true);
    const a = sim.nodes.get("a")!;
    expect(a.store.lease).toEqual(a.lease);
    expect(a.store.identity!.generation).toBe(1);
    for (const n of ["b", "c"]) {
      sim.addNode(n, ["a:7946", `${n}:7946`]);
      sim.start(n);
    }
    expect(await sim.runUntil(() => [...sim.nodes.values()].every((e) => e.lease), 10_000)).toBe(true);
    const subnets = [...sim.nodes.values()].map((e) => e.lease!.subnet);
    expect(new Set(subnets).size).toBe(3);
    await sim.run(1000);
    for (const e of sim.nodes.values()) {
      expect(e.cluster.leases().map((l) => `${l.nodeName}=${l.subnet}`).sort()).toEqual(
        [...sim.nodes].map(([n, x]) => `${n}=${x.lease!.subnet}`).sort(),
      );
    }
  });

  test("a node without a persisted lease claims only after a seed answered", async () => {
    const sim = new FakeSim({ seed: 2 });
    sim.addNode("b", ["a:7946"]);
    sim.start("b");
    await sim.run(20_000);
    expect(sim.nodes.get("b")!.lease).toBeUndefined();
    expect(sim.nodes.get("b")!.cluster.table().size).toBe(0);
    sim.addNode("a", []);
    sim.start("a");
    expect(await sim.runUntil(() => !!sim.nodes.get("b")!.lease && !!sim.nodes.get("a")!.lease, 10_000)).toBe(true);
    expect(sim.nodes.get("b")!.lease!.subnet).not.toBe(sim.nodes.get("a")!.lease!.subnet);
  });

  test("a restarted node reuses its persisted lease at once (seeds unreachable), generation bumped", async () => {
    const sim = new FakeSim({ seed: 3 });
    sim.addNode("a", []);
    sim.start("a");
    await sim.runUntil(() => !!sim.nodes.get("a")!.lease, 5000);
    const first = sim.nodes.get("a")!.lease!;
    await sim.nodes.get("a")!.cluster.stop({ leave: false });
    sim.addNode("a", ["zz:7946"]); // same store, a seed that never answers
    const p = sim.start("a");
    await sim.run(0);
    const again = await p;
    expect(again.subnet).toBe(first.subnet);
    expect(again.claimedAt).toBe(first.claimedAt);
    expect(again.nodeId).toBe(first.nodeId);
    expect(again.generation).toBe(first.generation + 1);
  });

  test("a full network rejects start with the exhaustion error", async () => {
    const sim = new FakeSim({ seed: 4, net: net4 });
    for (const n of ["a", "b", "c", "d"]) {
      sim.addNode(n, ["a:7946"]);
      sim.start(n);
    }
    expect(await sim.runUntil(() => ["a", "b", "c", "d"].every((n) => sim.nodes.get(n)!.lease), 20_000)).toBe(true);
    sim.addNode("e", ["a:7946"]);
    sim.start("e");
    expect(await sim.runUntil(() => !!sim.nodes.get("e")!.error, 10_000)).toBe(true);
    expect(sim.nodes.get("e")!.error!.message).toBe(
      "subnet exhausted: all 4 subnets of 10.244.0.0/16 between 10.244.1.0 and 10.244.4.0 are leased",
    );
    expect(sim.duplicates()).toEqual([]);
  });

  test("with onExhausted, a full network is reported and retried until a subnet frees up", async () => {
    const sim = new FakeSim({ seed: 4, net: net4, extra: { leaseTtlMs: 60_000 } });
    for (const n of ["a", "b", "c", "d"]) {
      sim.addNode(n, ["a:7946"]);
      sim.start(n);
    }
    expect(await sim.runUntil(() => ["a", "b", "c", "d"].every((n) => sim.nodes.get(n)!.lease), 20_000)).toBe(true);
    const reported: string[] = [];
    sim.o.extra = { leaseTtlMs: 60_000, onExhausted: (err) => reported.push(err.message), exhaustedRetryMs: 10_000 }; // for e only
    sim.addNode("e", ["a:7946"]);
    sim.start("e");
    expect(await sim.runUntil(() => reported.length === 1, 10_000)).toBe(true);
    expect(reported[0]).toMatch(/^subnet exhausted: all 4 subnets/);
    expect(sim.nodes.get("e")!.error).toBeUndefined(); // still trying, not failed
    // d's machine dies for good: after the lease TTL its subnet is free, and e takes it
    // at its next attempt, without a restart.
    const freed = sim.nodes.get("d")!.lease!.subnet;
    await sim.nodes.get("d")!.cluster.stop({ leave: false });
    sim.hub.nodes.get("d")!.up = false;
    await sim.run(50_000);
    expect(sim.nodes.get("e")!.lease).toBeUndefined(); // inside the TTL d's lease holds
    expect(await sim.runUntil(() => !!sim.nodes.get("e")!.lease, 30_000)).toBe(true);
    expect(sim.nodes.get("e")!.lease!.subnet).toBe(freed);
    expect(reported.length).toBeGreaterThanOrEqual(5); // one report per attempt, 10 s apart
    expect(sim.duplicates()).toEqual([]);
  });

  test("conflicting commits in two partitions: after healing the later claim renumbers and reports it", async () => {
    const sim = new FakeSim({ seed: 5, net: net4 });
    await sim.startPair();
    // Two names whose hash start lands on the same free subnet, so the halves collide.
    const range = rangeOf(net4);
    const taken = new Set([sim.nodes.get("a")!.lease!.subnet, sim.nodes.get("b")!.lease!.subnet]);
    const pickFor = (n: string) => pickSubnet(n, range, (x) => taken.has(x));
    const names = Array.from({ length: 50 }, (_, i) => `n${i}`);
    const cName = names[0]!;
    const dName = names.find((n) => n !== cName && pickFor(n) === pickFor(cName))!;
    sim.hub.partition([["a", cName], ["b", dName]]);
    sim.addNode(cName, ["a:7946"]);
    sim.addNode(dName, ["b:7946"]);
    sim.start(cName);
    await sim.run(100); // c claims first: earlier claimedAt
    sim.start(dName);
    expect(await sim.runUntil(() => !!sim.nodes.get(cName)!.lease && !!sim.nodes.get(dName)!.lease, 10_000)).toBe(true);
    const c = sim.nodes.get(cName)!.lease!;
    const d = sim.nodes.get(dName)!.lease!;
    expect(d.subnet).toBe(c.subnet);
    expect(sim.duplicates()).toHaveLength(1);
    const renumbered: [Lease, Lease][] = [];
    sim.nodes.get(dName)!.cluster.onRenumber((o, n) => void renumbered.push([o, n]));
    sim.hub.heal();
    expect(await sim.runUntil(() => renumbered.length > 0 && sim.duplicates().length === 0, 30_000)).toBe(true);
    expect(renumbered[0]![0].subnet).toBe(c.subnet);
    expect(renumbered[0]![1].subnet).not.toBe(c.subnet);
    expect(sim.nodes.get(cName)!.cluster.ownLease()!.subnet).toBe(c.subnet);
    expect(sim.nodes.get(dName)!.cluster.metrics().renumbers).toBe(1);
    const { leases, unrouted } = sim.nodes.get(dName)!.cluster.metrics();
    expect(leases).toBe(sim.nodes.get(dName)!.cluster.leases().length);
    expect(unrouted).toBe(0);
    expect(sim.nodes.get(dName)!.store.lease!.subnet).toBe(renumbered[0]![1].subnet);
    await sim.run(10_000);
    const views = [...sim.nodes].map(([n, e]) => n + ":" + e.cluster.leases().map((l) => `${l.nodeName}=${l.subnet}`).sort().join(","));
    expect(views.map((v) => v.replace(/^[^:]*:/, "")).join("\n"), views.join("\n")).toBe(views.map(() => views[0]!.replace(/^[^:]*:/, "")).join("\n"));
  });

  test("a silent node's lease is kept for the TTL, then freed; a refresh keeps live leases", async () => {
    const sim = new FakeSim({ seed: 6, extra: { leaseTtlMs: 2 * HOUR, refreshMs: HOUR / 2, sweepMs: 60_000 } });
    await sim.startPair();
    const a = sim.nodes.get("a")!.cluster;
    let changes = 0;
    a.onChange(() => changes++);
    await sim.nodes.get("b")!.cluster.stop({ leave: false });
    await sim.run(HOUR, 60_000);
    const bView = a.leases().find((l) => l.nodeName === "b");
    expect(bView?.state).toBe("dead");
    expect(bView!.expiresAt).toBeGreaterThan(sim.clock.now());
    await sim.run(1.5 * HOUR, 60_000);
    expect(a.leases().map((l) => l.nodeName)).toEqual(["a"]);
    expect(changes).toBeGreaterThan(0);
    expect(a.ownLease()!.version).toBeGreaterThanOrEqual(4); // refreshed every 30 min
    // After 2×TTL the record itself is dropped (tombstone/GC window).
    await sim.run(2 * HOUR, 60_000);
    expect(a.table().get("b")).toBeUndefined();
    expect(a.metrics().expired).toBe(1);
  });

  test("stop({ release: true }) frees the subnet at once (tombstone), and a restart claims afresh", async () => {
    const sim = new FakeSim({ seed: 11 });
    expect(await sim.startPair()).toBe(true);
    const b = sim.nodes.get("b")!;
    const released = b.lease!;
    const a = sim.nodes.get("a")!.cluster;
    expect(await sim.runUntil(() => a.leases().some((l) => l.nodeName === "b"), 5000)).toBe(true);
    await b.cluster.stop({ leave: false, release: true }); // release leaves anyway
    // The peer drops b's lease long before any TTL, and holds the tombstone, not the lease.
    expect(await sim.runUntil(() => !a.leases().some((l) => l.nodeName === "b"), 10_000)).toBe(true);
    expect(a.table().get("b")).toMatchObject({ subnet: released.subnet, deleted: true, version: released.version + 1 });
    expect(b.store.lease).toMatchObject({ subnet: released.subnet, deleted: true });
    // A released lease is not reused on restart: the node claims (and commits) again.
    sim.addNode("b", ["a:7946"]);
    sim.start("b");
    expect(await sim.runUntil(() => !!sim.nodes.get("b")!.lease, 10_000)).toBe(true);
    const again = sim.nodes.get("b")!.lease!;
    expect(again.deleted).toBeUndefined();
    expect(again.version).toBe(0);
    expect(again.subnet).not.toBe(sim.nodes.get("a")!.lease!.subnet);
    expect(await sim.runUntil(() => a.leases().some((l) => l.nodeName === "b" && l.subnet === again.subnet), 10_000)).toBe(true);
  });

  test("a reinstalled node (fresh state, same name) re-learns its subnet with a higher generation", async () => {
    const sim = new FakeSim({ seed: 7 });
    await sim.startPair();
    const old = sim.nodes.get("b")!.lease!;
    await sim.nodes.get("b")!.cluster.stop({ leave: false });
    sim.addNode("b", ["a:7946"], new MemStore());
    sim.start("b");
    expect(await sim.runUntil(() => !!sim.nodes.get("b")!.lease, 10_000)).toBe(true);
    const now = sim.nodes.get("b")!.lease!;
    expect(now.nodeId).not.toBe(old.nodeId);
    expect(now.subnet).toBe(old.subnet);
    expect(now.generation).toBeGreaterThan(old.generation);
    await sim.run(2000);
    expect(sim.nodes.get("a")!.cluster.table().get("b")!.nodeId).toBe(now.nodeId);
  });

  test("a running node whose name is claimed by another nodeId steps aside, deterministically", async () => {
    const sim = new FakeSim({ seed: 8 });
    sim.addNode("a", []);
    sim.start("a");
    await sim.runUntil(() => !!sim.nodes.get("a")!.lease, 5000);
    const a = sim.nodes.get("a")!;
    const own = a.lease!;
    // A forged record for "a" from another nodeId with a higher generation arrives.
    const forged: Lease = { ...own, nodeId: "f".repeat(32), generation: own.generation + 5, subnet: "10.244.200.0/30" };
    const forgedValid = { ...forged, subnet: "10.244.0.100/30" };
    sim.addNode("x", ["a:7946"]);
    sim.start("x");
    await sim.runUntil(() => !!sim.nodes.get("x")!.lease, 5000);
    const da = sim.hub.nodes.get("a")!.delegate;
    da.notifyMessage(encodeRecord(forged), "x"); // subnet outside the range: rejected
    expect(a.cluster.metrics().rejectedRecords).toBe(1);
    expect(a.cluster.ownLease()).toEqual(own);
    // Any key holder can send any well-formed record; the merge rules decide.
    da.notifyMessage(encodeRecord(forgedValid), "x");
    expect(a.cluster.metrics().nameConflicts).toBe(1);
    expect(a.cluster.ownLease()).toBeUndefined();
    expect(a.cluster.table().get("a")!.nodeId).toBe("f".repeat(32));
  });

  test("a record under our name and nodeId with a higher generation (restored state dir) is overtaken", async () => {
    const sim = new FakeSim({ seed: 10 });
    sim.addNode("a", []);
    sim.start("a");
    await sim.runUntil(() => !!sim.nodes.get("a")!.lease, 5000);
    const a = sim.nodes.get("a")!;
    const own = a.lease!;
    const newer: Lease = { ...own, generation: own.generation + 3, version: 2 };
    sim.hub.nodes.get("a")!.delegate.notifyMessage(encodeRecord(newer), "a");
    const now = a.cluster.ownLease()!;
    expect(now.generation).toBe(own.generation + 4);
    expect(now.subnet).toBe(own.subnet);
    expect(a.cluster.table().get("a")).toEqual(now);
    expect(a.store.lease).toEqual(now);
    expect(a.store.identity!.generation).toBe(own.generation + 4);
    expect(a.cluster.metrics().nameConflicts).toBe(0);
  });

  test("two records with equal counters resolve by content on every node, also from bytes another node decoded", async () => {
    const sim = new FakeSim({ seed: 11 });
    for (const n of ["a", "b"]) {
      sim.addNode(n, n === "a" ? [] : ["a:7946"]);
      sim.start(n);
    }
    expect(await sim.runUntil(() => !!sim.nodes.get("a")!.lease && !!sim.nodes.get("b")!.lease, 5000)).toBe(true);
    const x: Lease = { nodeName: "z", nodeId: "c".repeat(32), generation: 1, version: 1, subnet: "10.244.0.192/30", publicIp: "192.0.2.9", backend: { type: "host-gw" }, claimedAt: 1, renewedAt: 1 };
    const y: Lease = { ...x, subnet: "10.244.0.196/30" };
    const [lo, hi] = compareRecords(x, y) < 0 ? [x, y] : [y, x];
    const da = sim.hub.nodes.get("a")!.delegate;
    const db = sim.hub.nodes.get("b")!.delegate;
    da.notifyMessage(encodeRecord(lo), "x");
    db.notifyMessage(encodeRecord(hi), "x");
    // Each now gets the bytes the other has already decoded.
    da.notifyMessage(encodeRecord(hi), "x");
    db.notifyMessage(encodeRecord(lo), "x");
    for (const n of ["a", "b"]) {
      expect(canonicalText(sim.nodes.get(n)!.cluster.table().get("z")!)).toBe(canonicalText(hi));
      expect(sim.nodes.get(n)!.cluster.metrics().rejectedRecords).toBe(0);
    }
  });

  test("malformed payloads and out-of-range records are dropped and counted, never thrown", async () => {
    const sim = new FakeSim({ seed: 9 });
    sim.addNode("a", []);
    sim.start("a");
    await sim.runUntil(() => !!sim.nodes.get("a")!.lease, 5000);
    const d = sim.hub.nodes.get("a")!.delegate;
    const base: Lease = { nodeName: "evil", nodeId: "e".repeat(32), generation: 1, version: 0, subnet: "10.99.0.0/30", publicIp: "192.0.2.9", backend: { type: "host-gw" }, claimedAt: 0 };
    d.notifyMessage(new Uint8Array([1, 2, 3]), "x");
    d.mergeRemoteState(encodeState([base, { ...base, nodeName: "evil2", subnet: "10.244.0.8/30" }]), false, "x");
    d.notifyMessage(encodeRecord({ ...base, subnet: "10.244.0.1/30" }), "evil");
    expect(sim.nodes.get("a")!.cluster.metrics().rejectedRecords).toBe(3);
    expect(sim.nodes.get("a")!.cluster.table().get("evil2")!.subnet).toBe("10.244.0.8/30");
    expect(sim.nodes.get("a")!.cluster.table().get("evil")).toBeUndefined();
  });
});

describe("expiry and returning nodes", () => {
  test("a node down longer than the TTL does not evict the node that took its freed subnet", async () => {
    const net1 = parseNetConf({ Network: "10.244.0.0/16", SubnetMin: "10.244.1.0", SubnetMax: "10.244.3.0", Backend: { Type: "host-gw" } });
    const sim = new FakeSim({ seed: 13, net: net1, extra: { leaseTtlMs: 2 * HOUR, refreshMs: HOUR / 2 } });
    for (const n of ["a", "b", "c"]) {
      sim.addNode(n, n === "a" ? [] : ["a:7946"]);
      sim.start(n);
    }
    expect(await sim.runUntil(() => ["a", "b", "c"].every((n) => sim.nodes.get(n)!.lease), 10_000)).toBe(true);
    const cOld = sim.nodes.get("c")!.lease!;
    await sim.nodes.get("c")!.cluster.stop({ leave: false });
    // The network is full until c's lease expires; then d gets c's old subnet.
    sim.addNode("d", ["a:7946"]);
    sim.start("d");
    expect(await sim.runUntil(() => !!sim.nodes.get("d")!.error, 10_000)).toBe(true);
    expect(sim.nodes.get("d")!.error!.message).toMatch(/^subnet exhausted: all 3 subnets/);
    await sim.nodes.get("d")!.cluster.stop({ leave: false });
    await sim.run(2 * HOUR + 5 * 60_000, 60_000);
    sim.addNode("d", ["a:7946"]);
    sim.start("d");
    expect(await sim.runUntil(() => !!sim.nodes.get("d")!.lease, 10_000)).toBe(true);
    expect(sim.nodes.get("d")!.lease!.subnet).toBe(cOld.subnet);
    // c returns with its persisted (expired) lease: it must not take the subnet back.
    sim.addNode("c", ["a:7946"]);
    sim.start("c");
    expect(await sim.runUntil(() => !!sim.nodes.get("c")!.error || !!sim.nodes.get("c")!.lease, 10_000)).toBe(true);
    expect(sim.nodes.get("c")!.error?.message).toMatch(/^subnet exhausted/);
    expect(sim.nodes.get("d")!.cluster.ownLease()!.subnet).toBe(cOld.subnet);
    expect(sim.nodes.get("d")!.cluster.metrics().renumbers).toBe(0);
  });

  test("a node down longer than the TTL gets its old subnet back if nobody took it, as a new claim", async () => {
    const sim = new FakeSim({ seed: 14, extra: { leaseTtlMs: 2 * HOUR, refreshMs: HOUR / 2 } });
    await sim.startPair();
    const old = sim.nodes.get("b")!.lease!;
    await sim.nodes.get("b")!.cluster.stop({ leave: false });
    await sim.run(3 * HOUR, 60_000);
    sim.addNode("b", ["a:7946"]);
    sim.start("b");
    expect(await sim.runUntil(() => !!sim.nodes.get("b")!.lease, 10_000)).toBe(true);
    const now = sim.nodes.get("b")!.lease!;
    expect(now.subnet).toBe(old.subnet);
    expect(now.claimedAt).toBeGreaterThan(old.claimedAt);
  });
});

describe("partition heal", () => {
  test("a member back from suspect/dead gets a push-pull, rate-limited to 3 then 1 per 5 s", async () => {
    const sim = new FakeSim({ seed: 15, pushPullMs: 0 });
    sim.addNode("a", []);
    sim.start("a");
    await sim.runUntil(() => !!sim.nodes.get("a")!.lease, 5000);
    const names = ["p0", "p1", "p2", "p3", "p4", "p5"];
    for (const n of names) {
      sim.addNode(n, ["a:7946"]);
      sim.start(n);
    }
    await sim.runUntil(() => names.every((n) => sim.nodes.get(n)!.lease), 10_000);
    const a = sim.nodes.get("a")!.cluster;
    const count = () => sim.hub.pushPulls.get("a") ?? 0;
    const member = (name: string, state: "alive" | "suspect" | "dead") => ({ name, addr: `${name}:7946`, state, incarnation: 1, lastSeen: sim.clock.now() });
    let changes = 0;
    a.onChange(() => changes++);
    const before = count();
    a.memberEvent("update", member("p0", "alive")); // first sight: no exchange
    await sim.run(1000);
    expect(count()).toBe(before);
    for (const n of names) a.memberEvent("update", member(n, "suspect"));
    for (const n of names) a.memberEvent("update", member(n, "alive"));
    await sim.run(1000);
    expect(count()).toBe(before + 3);
    expect(changes).toBeGreaterThanOrEqual(12);
    await sim.run(5000);
    a.memberEvent("leave", member("p5", "dead"));
    a.memberEvent("join", member("p5", "alive"));
    await sim.run(1000);
    expect(count()).toBe(before + 4);
  });
});

describe("seeds", () => {
  test("own address (literal or resolved name) is skipped; names resolve; abort while joining rejects", async () => {
    const sim = new FakeSim({
      seed: 11,
      extra: { resolveHost: async (h) => (h === "me.example" ? ["a"] : h === "peer.example" ? ["b"] : []) },
    });
    sim.addNode("b", []);
    sim.start("b");
    await sim.runUntil(() => !!sim.nodes.get("b")!.lease, 5000);
    // "me.example" resolves to a's own address: with only that seed, a bootstraps at once.
    const lone = new FakeSim({ seed: 12, extra: { resolveHost: async () => ["a"] } });
    lone.addNode("a", ["me.example:7946"]);
    lone.start("a");
    expect(await lone.runUntil(() => !!lone.nodes.get("a")!.lease, 3000)).toBe(true);
    // A seed name that resolves to a peer is joined through the peer.
    sim.addNode("a", ["me.example:7946", "peer.example:7946"]);
    sim.start("a");
    expect(await sim.runUntil(() => !!sim.nodes.get("a")!.lease, 5000)).toBe(true);
    expect(sim.nodes.get("a")!.cluster.table().get("b")).toBeDefined();
    // Unreachable seeds and an abort: start rejects, nothing is claimed.
    const ac = new AbortController();
    sim.addNode("c", ["nowhere:7946"]);
    sim.start("c", ac.signal);
    await sim.run(3000);
    ac.abort();
    expect(await sim.runUntil(() => !!sim.nodes.get("c")!.error, 3000)).toBe(true);
    expect(sim.nodes.get("c")!.error!.name).toBe("AbortError");
    expect(sim.nodes.get("c")!.store.lease).toBeUndefined();
  });
});

describe("settle window during a join storm", () => {
  /** a is up; b claims at t0 while d1…d8 start 400 ms apart. Returns b's commit time and its last table change. */
  async function storm(extra: { settleQuietMs?: number; settleQuietRecords?: number; settleMaxMs?: number }) {
    const sim = new FakeSim({ seed: 41, net: net16, extra });
    sim.addNode("a", []);
    sim.start("a");
    expect(await sim.runUntil(() => !!sim.nodes.get("a")!.lease, 5000)).toBe(true);
    const t0 = sim.clock.now();
    const b = sim.addNode("b", ["a:7946"]);
    let lastChange = -1;
    b.onRecord((l) => {
      if (l.nodeName !== "b") lastChange = sim.clock.now();
    });
    let committedAt = -1;
    sim.start("b").then(() => (committedAt = sim.clock.now()));
    for (let i = 1; i <= 8; i++) {
      sim.clock.after(400 * i, () => {
        sim.addNode(`d${i}`, ["a:7946"]);
        sim.start(`d${i}`);
      });
    }
    expect(await sim.runUntil(() => committedAt >= 0, 40_000)).toBe(true);
    return { t0, committedAt, lastChange, sim, last: () => lastChange };
  }

  test("a claim commits only once peers' records stopped arriving for settleQuietMs", async () => {
    // Threshold 0: any arriving record counts (the default lets a trickle of 16/s through).
    const { t0, committedAt, lastChange, sim } = await storm({ settleQuietMs: 1000, settleQuietRecords: 0 });
    // The last joiner's claim reaches b about 3.2 s after t0; b waited a quiet second after it.
    expect(lastChange).toBeGreaterThan(t0 + 3200);
    expect(committedAt - lastChange).toBeGreaterThanOrEqual(1000);
    await sim.runUntil(() => [...sim.nodes.values()].every((e) => e.lease), 20_000);
    expect(sim.duplicates()).toEqual([]);
  });

  test("…but no longer than settleMaxMs after the claim", async () => {
    const { t0, committedAt, sim, last } = await storm({ settleQuietMs: 1000, settleQuietRecords: 0, settleMaxMs: 1500 });
    expect(committedAt).toBeLessThan(t0 + 2500); // 1.5 s plus the join and the verifying push-pulls
    await sim.run(4000);
    expect(last()).toBeGreaterThan(committedAt + 1000); // records were still arriving
  });

  test("late news at a low rate (old claims still arriving: a storm's tail) holds the commit", async () => {
    const sim = new FakeSim({ seed: 42, net: net16 });
    sim.addNode("a", []);
    sim.start("a");
    expect(await sim.runUntil(() => !!sim.nodes.get("a")!.lease, 5000)).toBe(true);
    const t0 = sim.clock.now();
    sim.addNode("b", ["a:7946"]);
    let committedAt = -1;
    sim.start("b").then(() => (committedAt = sim.clock.now()));
    const own = sim.nodes.get("a")!.lease!;
    let lastLate = -1;
    for (let i = 1; i <= 7; i++) {
      sim.clock.after(400 * i, () => {
        // A claim made 5 s ago by a node b never heard of, reaching b only now.
        const late: Lease = { ...own, nodeName: `late${i}`, nodeId: `${i}`.repeat(32), subnet: `10.244.${100 + i}.0/24`, claimedAt: sim.clock.now() - 5000, renewedAt: sim.clock.now() - 5000 };
        sim.hub.nodes.get("b")!.delegate.notifyMessage(encodeRecord(late), "a");
        lastLate = sim.clock.now();
      });
    }
    expect(await sim.runUntil(() => committedAt >= 0, 20_000)).toBe(true);
    expect(lastLate).toBeGreaterThanOrEqual(t0 + 2800);
    expect(committedAt - lastLate).toBeGreaterThanOrEqual(1000);
  });

  test("a trickle of joins (2.5 records/s, under settleQuietRecords) does not hold the commit", async () => {
    const { t0, committedAt, sim, last } = await storm({});
    expect(committedAt).toBeLessThan(t0 + 1500); // settleMs (500) plus the join and the push-pulls
    await sim.run(4000);
    expect(last()).toBeGreaterThan(committedAt + 1000);
  });
});
