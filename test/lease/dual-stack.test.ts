/**
 * The lease layer with two address families, on the fake gossip layer: dual-stack and
 * IPv6-only claims, restarts, enabling and disabling IPv6 on a node with a persisted
 * lease, a conflict on one family only, and a cluster part-way through enabling IPv6.
 */
import { describe, expect, test } from "bun:test";
import { parseNetConf } from "../../src/net-conf.ts";
import { encodeRecord } from "../../src/lease/record-codec.ts";
import { subnetProblem, rangeOf } from "../../src/lease/record-validate.ts";
import type { Lease } from "../../src/lease/types.ts";
import { FakeSim } from "./harness.ts";

const v6 = { EnableIPv6: true, IPv6Network: "fd00:10:244::/56" };
const dual = parseNetConf({ Network: "10.244.0.0/16", ...v6, Backend: { Type: "host-gw" } });
const v6only = parseNetConf({ EnableIPv4: false, ...v6, Backend: { Type: "host-gw" } });
const v4only = parseNetConf({ Network: "10.244.0.0/16", Backend: { Type: "host-gw" } });

async function cluster(seed: number, net = dual, names = ["a", "b", "c"]) {
  const sim = new FakeSim({ seed, net });
  for (const n of names) {
    sim.addNode(n, [`${names[0]}:7946`, `${n}:7946`]);
    sim.start(n);
  }
  expect(await sim.runUntil(() => names.every((n) => sim.nodes.get(n)!.lease), 20_000)).toBe(true);
  return sim;
}

describe("dual-stack and IPv6-only leases", () => {
  test("dual-stack: every node commits one subnet of each family, all distinct, persisted, seen by all", async () => {
    const sim = await cluster(11);
    const leases = [...sim.nodes.values()].map((e) => e.lease!);
    for (const l of leases) {
      expect(subnetProblem(l.subnet!, rangeOf(dual, 4))).toBeUndefined();
      expect(subnetProblem(l.ipv6Subnet!, rangeOf(dual, 6))).toBeUndefined();
      expect(l.publicIp).toMatch(/^198\.51\./);
      expect(l.publicIpv6).toMatch(/^2001:db8::/);
    }
    expect(new Set(leases.map((l) => l.subnet)).size).toBe(3);
    expect(new Set(leases.map((l) => l.ipv6Subnet)).size).toBe(3);
    for (const e of sim.nodes.values()) expect(e.store.lease).toEqual(e.lease);
    await sim.run(6000);
    const want = leases.map((l) => `${l.nodeName} ${l.subnet} ${l.ipv6Subnet} ${l.publicIpv6}`).sort();
    for (const e of sim.nodes.values()) expect(e.cluster.leases().map((l) => `${l.nodeName} ${l.subnet} ${l.ipv6Subnet} ${l.publicIpv6}`).sort()).toEqual(want);
  });

  test("IPv6-only: leases have an IPv6 subnet and address and no IPv4 fields", async () => {
    const sim = await cluster(12, v6only);
    for (const e of sim.nodes.values()) {
      const l = e.lease!;
      expect(l.subnet).toBeUndefined();
      expect(l.publicIp).toBeUndefined();
      expect(subnetProblem(l.ipv6Subnet!, rangeOf(v6only, 6))).toBeUndefined();
      expect(l.publicIpv6).toMatch(/^2001:db8::/);
    }
    expect(sim.duplicates()).toEqual([]);
    expect(new Set([...sim.nodes.values()].map((e) => e.lease!.ipv6Subnet)).size).toBe(3);
  });

  test("a restart reuses the persisted dual-stack lease at once: both subnets and the claim date kept", async () => {
    const sim = await cluster(13);
    const first = sim.nodes.get("b")!.lease!;
    await sim.nodes.get("b")!.cluster.stop({ leave: false });
    sim.addNode("b", ["zz:7946"]); // same store, a seed that never answers
    const p = sim.start("b");
    await sim.run(0);
    const again = await p;
    expect([again.subnet, again.ipv6Subnet, again.claimedAt, again.generation]).toEqual([first.subnet, first.ipv6Subnet, first.claimedAt, first.generation + 1]);
  });

  test("enabling IPv6 on a node with a persisted IPv4 lease: it keeps its IPv4 subnet and claims an IPv6 one (a new claim, after joining)", async () => {
    const sim = await cluster(14, v4only);
    const before = sim.nodes.get("c")!.lease!;
    await sim.nodes.get("c")!.cluster.stop({ leave: false });
    sim.o.net = dual;
    sim.addNode("c", ["a:7946"]);
    const p = sim.start("c");
    await sim.run(0);
    expect(sim.nodes.get("c")!.lease).toBeUndefined(); // not at once: the IPv6 subnet must settle
    expect(await sim.runUntil(() => !!sim.nodes.get("c")!.lease, 10_000)).toBe(true);
    const after = await p;
    expect(after.subnet).toBe(before.subnet);
    expect(subnetProblem(after.ipv6Subnet!, rangeOf(dual, 6))).toBeUndefined();
    expect(after.claimedAt).toBeGreaterThan(before.claimedAt);
    expect(sim.duplicates()).toEqual([]);
  });

  test("disabling IPv6: the persisted dual-stack lease is reused at once without its IPv6 subnet, claim date kept", async () => {
    const sim = await cluster(15);
    const before = sim.nodes.get("a")!.lease!;
    await sim.nodes.get("a")!.cluster.stop({ leave: false });
    sim.o.net = v4only;
    sim.addNode("a", ["zz:7946"]);
    const p = sim.start("a");
    await sim.run(0);
    const after = await p;
    expect([after.subnet, after.claimedAt]).toEqual([before.subnet, before.claimedAt]);
    expect(after.ipv6Subnet).toBeUndefined();
    expect(after.publicIpv6).toBeUndefined();
  });

  test("a conflict on the IPv6 subnet only: peers route the loser's IPv4 subnet meanwhile, and its renumber keeps the IPv4 subnet", async () => {
    const sim = await cluster(16);
    const a = sim.nodes.get("a")!;
    const lease = a.lease!;
    const now = sim.clock.now();
    // Another node's earlier claim on a's IPv6 subnet (its IPv4 subnet is a free one).
    const early: Lease = { nodeName: "early", nodeId: "e".repeat(32), generation: 1, version: 0, subnet: "10.244.250.0/24", ipv6Subnet: lease.ipv6Subnet!, publicIp: "192.0.2.200", publicIpv6: "2001:db8::200", backend: { type: "host-gw" }, claimedAt: lease.claimedAt - 1, renewedAt: now };
    // b hears of it first: it routes a's IPv4 subnet to a and the contested IPv6 subnet to early.
    sim.hub.nodes.get("b")!.delegate.notifyMessage(encodeRecord(early), "x");
    const viewOfB = sim.nodes.get("b")!.cluster.leases();
    expect(viewOfB.find((l) => l.nodeName === "a")).toMatchObject({ subnet: lease.subnet });
    expect(viewOfB.find((l) => l.nodeName === "a")!.ipv6Subnet).toBeUndefined();
    expect(viewOfB.find((l) => l.nodeName === "early")).toMatchObject({ ipv6Subnet: lease.ipv6Subnet });
    // a hears of it: it renumbers its IPv6 subnet only.
    const renumbered: [Lease, Lease][] = [];
    a.cluster.onRenumber((o, n) => void renumbered.push([o, n]));
    sim.hub.nodes.get("a")!.delegate.notifyMessage(encodeRecord(early), "x");
    expect(await sim.runUntil(() => renumbered.length === 1, 10_000)).toBe(true);
    const [, now2] = renumbered[0]!;
    expect(now2.subnet).toBe(lease.subnet);
    expect(now2.ipv6Subnet).not.toBe(lease.ipv6Subnet);
    expect(subnetProblem(now2.ipv6Subnet!, rangeOf(dual, 6))).toBeUndefined();
    expect(a.cluster.renumbering()).toBeUndefined();
    expect(a.cluster.metrics().renumbers).toBe(1);
  });

  test("part-way through enabling IPv6: IPv4-only and dual-stack nodes keep each other's records, no record rejected, no duplicate", async () => {
    const sim = new FakeSim({ seed: 17, net: v4only });
    sim.addNode("a", []);
    sim.start("a");
    expect(await sim.runUntil(() => !!sim.nodes.get("a")!.lease, 5000)).toBe(true);
    sim.o.net = dual;
    for (const n of ["b", "c"]) {
      sim.addNode(n, ["a:7946"]);
      sim.start(n);
    }
    expect(await sim.runUntil(() => ["b", "c"].every((n) => sim.nodes.get(n)!.lease), 20_000)).toBe(true);
    await sim.run(12_000);
    const a = sim.nodes.get("a")!.cluster;
    const b = sim.nodes.get("b")!.cluster;
    for (const n of ["a", "b", "c"]) expect(sim.nodes.get(n)!.cluster.metrics().rejectedRecords).toBe(0);
    // The IPv4-only node carries the dual-stack nodes' IPv6 fields unchanged.
    expect(a.table().get("b")).toMatchObject({ ipv6Subnet: sim.nodes.get("b")!.lease!.ipv6Subnet, publicIpv6: sim.nodes.get("b")!.lease!.publicIpv6 });
    // The dual-stack nodes route a's IPv4 subnet; a has no IPv6 subnet yet.
    expect(b.leases().find((l) => l.nodeName === "a")).toMatchObject({ subnet: sim.nodes.get("a")!.lease!.subnet });
    expect(b.leases().find((l) => l.nodeName === "a")!.ipv6Subnet).toBeUndefined();
    expect(sim.duplicates()).toEqual([]);
  });
});
