/**
 * Retiring a dead node (`weft forget`): the tombstone rule, and on the real gossip layer
 * (MemNetwork, FakeClock) that every node drops the forgotten lease within 5 s, that a
 * live node cannot be forgotten, and — over many seeds — that a forgotten node coming
 * back with its persisted lease, after its subnet may have been handed out again, never
 * leaves a subnet with two owners.
 */
import { describe, expect, test } from "bun:test";
import { parseKeyFile } from "../../src/gossip/keyring.ts";
import { seededRandom } from "../../src/gossip/prng.ts";
import type { Member } from "../../src/gossip/types.ts";
import { forgetTombstone } from "../../src/lease/forget.ts";
import type { Lease } from "../../src/lease/types.ts";
import { parseNetConf } from "../../src/net-conf.ts";
import { LeaseSim, type LeaseSimNode } from "../../sim/lease-sim.ts";

const keyring = parseKeyFile(Buffer.alloc(32, 9).toString("base64"));
const SEEDS = Number(process.env.WEFT_FORGET_SIM_SEEDS ?? 12);

const rec: Lease = {
  nodeName: "n2",
  nodeId: "a".repeat(32),
  generation: 3,
  version: 7,
  subnet: "10.244.2.0/24",
  publicIp: "192.0.2.12",
  backend: { type: "vxlan", vtepMac: "0e:00:00:00:00:02" },
  claimedAt: 1000,
  renewedAt: 5000,
};
const member = (state: Member["state"]): Member => ({ name: "n2", addr: "192.0.2.12:7946", state, incarnation: 1, lastSeen: 0 });

describe("forgetTombstone", () => {
  const cases: [string, Parameters<typeof forgetTombstone>[0], ReturnType<typeof forgetTombstone>][] = [
    ["a dead member's lease: its generation, the next version, deleted, dated now", { self: "n1", name: "n2", rec, member: member("dead"), now: 9000.5 }, { ok: true, tombstone: { ...rec, version: 8, renewedAt: 9000, deleted: true } }],
    ["an owner no longer a member (reaped): forgotten as well", { self: "n1", name: "n2", rec, member: undefined, now: 9000 }, { ok: true, tombstone: { ...rec, version: 8, renewedAt: 9000, deleted: true } }],
    ["a left member: forgotten", { self: "n1", name: "n2", rec, member: member("left"), now: 9000 }, { ok: true, tombstone: { ...rec, version: 8, renewedAt: 9000, deleted: true } }],
    ["never dated before the record (a clock behind the owner's)", { self: "n1", name: "n2", rec, member: member("dead"), now: 10 }, { ok: true, tombstone: { ...rec, version: 8, renewedAt: 5000, deleted: true } }],
    ["alive: refused", { self: "n1", name: "n2", rec, member: member("alive"), now: 9000 }, { ok: false, status: 409, reason: "node n2 is alive (gossiping from 192.0.2.12:7946); forget only a node that is gone: stop its agent first, or wait until the cluster declares it dead" }],
    ["suspect: refused", { self: "n1", name: "n2", rec, member: member("suspect"), now: 9000 }, { ok: false, status: 409, reason: "node n2 is suspect (gossiping from 192.0.2.12:7946); forget only a node that is gone: stop its agent first, or wait until the cluster declares it dead" }],
    ["this node: refused", { self: "n2", name: "n2", rec, member: member("alive"), now: 9000 }, { ok: false, status: 409, reason: "node n2 is this node; to give its subnet back, stop its agent with --release-on-stop" }],
    ["unknown name: 404", { self: "n1", name: "n9", rec: undefined, member: undefined, now: 9000 }, { ok: false, status: 404, reason: "no lease for node n9" }],
    ["already a tombstone: 404", { self: "n1", name: "n2", rec: { ...rec, deleted: true }, member: member("dead"), now: 9000 }, { ok: false, status: 404, reason: "node n2 has no lease any more (released or forgotten)" }],
  ];
  for (const [name, input, want] of cases) test(name, () => expect(forgetTombstone(input)).toEqual(want));
});

const state = (from: LeaseSimNode, name: string) => from.cluster.members().find((m) => m.name === name)?.state;
const hasLease = (n: LeaseSimNode, name: string) => n.cluster.leases().some((l) => l.nodeName === name);

describe("forget on the real gossip layer", () => {
  test("refused for a live node; for a killed node every node drops its lease within 5 s, and a new node may take the subnet", async () => {
    const net = parseNetConf({ Network: "10.244.0.0/16", SubnetMin: "10.244.1.0", SubnetMax: "10.244.4.0", Backend: { Type: "vxlan" } });
    const sim = new LeaseSim({ seed: 3, net, keyring });
    const names = ["n1", "n2", "n3", "n4"];
    const nodes = names.map((n, i) => sim.add(n, `10.0.0.${i + 1}:7946`, ["10.0.0.1:7946"]));
    for (const n of names) void sim.start(n);
    expect(await sim.runUntil(() => nodes.every((n) => n.lease) && nodes.every((n) => n.cluster.leases().length === 4), 30_000)).toBe(true);
    const [n1, n2, n3, n4] = nodes as [LeaseSimNode, LeaseSimNode, LeaseSimNode, LeaseSimNode];
    expect(n1.cluster.forget("n2")).toMatchObject({ ok: false, status: 409 });
    const freed = n2.lease!.subnet;
    await sim.kill("n2");
    expect(await sim.runUntil(() => [n1, n3, n4].every((n) => state(n, "n2") === "dead"), 30_000)).toBe(true);
    expect(hasLease(n1, "n2")).toBe(true); // dead, but its lease stands for the TTL
    const r = n3.cluster.forget("n2");
    expect(r).toMatchObject({ ok: true, tombstone: { nodeName: "n2", deleted: true } });
    const t0 = sim.clock.now();
    expect(await sim.runUntil(() => [n1, n3, n4].every((n) => !hasLease(n, "n2")), 5_000)).toBe(true);
    expect(sim.clock.now() - t0).toBeLessThan(5_000);
    expect(n1.cluster.forget("n2")).toMatchObject({ ok: false, status: 404 });
    // The range had exactly 4 subnets: the forgotten one is the only free one.
    const n5 = sim.add("n5", "10.0.0.5:7946", ["10.0.0.1:7946"]);
    void sim.start("n5");
    expect(await sim.runUntil(() => !!n5.lease, 30_000)).toBe(true);
    expect(n5.lease!.subnet).toBe(freed);
    expect(sim.duplicates()).toEqual([]);
    await sim.stopAll();
  }, 30_000);

  test(`${SEEDS} seeds: a forgotten node returns with its persisted lease after two newcomers took free subnets: 0 duplicates, one view`, async () => {
    let conflicts = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = await forgetAndReturn(seed);
      const summary = `seed ${seed}: ${JSON.stringify(r)}`;
      expect(r.duplicates, summary).toEqual([]);
      expect(r.committed, summary).toBe(r.nodes);
      expect(r.views, summary).toBe(1);
      expect(r.forgottenGone, summary).toBe(true);
      conflicts += r.releasedTaken ? 1 : 0;
    }
    // The case that matters happened: the forgotten subnet had been handed out again.
    expect(conflicts).toBeGreaterThan(0);
  }, 240_000);
});

/**
 * 6 nodes in a range of 8 subnets; one is killed and forgotten (3 free subnets); two
 * newcomers claim two of them; the forgotten node comes back with its persisted lease.
 */
async function forgetAndReturn(seed: number) {
  const net = parseNetConf({ Network: "10.244.0.0/16", SubnetMin: "10.244.1.0", SubnetMax: "10.244.8.0", Backend: { Type: "vxlan" } });
  const sim = new LeaseSim({ seed, net, keyring, loss: 0.05 });
  const rnd = seededRandom(seed * 31);
  const names = Array.from({ length: 6 }, (_, i) => `n${i}`);
  const addr = (i: number) => `10.0.1.${i + 1}:7946`;
  for (const [i, n] of names.entries()) sim.add(n, addr(i), [addr(0)]);
  for (const n of names) void sim.start(n);
  await sim.runUntil(() => sim.upNodes().every((n) => n.lease), 60_000);
  const k = 1 + Math.floor(rnd() * 5);
  const victim = `n${k}`;
  const subnet = sim.nodes.get(victim)!.lease!.subnet;
  await sim.kill(victim);
  const up = () => sim.upNodes();
  await sim.runUntil(() => up().every((n) => state(n, victim) === "dead"), 60_000);
  const by = up()[Math.floor(rnd() * up().length)]!;
  const forgot = by.cluster.forget(victim).ok;
  const forgottenGone = forgot && (await sim.runUntil(() => up().every((n) => !hasLease(n, victim)), 5_000));
  for (const [j, n] of ["x1", "x2"].entries()) {
    sim.add(n, addr(10 + j), [addr(0)]);
    void sim.start(n);
  }
  await sim.runUntil(() => up().every((n) => n.lease), 60_000);
  const releasedTaken = up().some((n) => n.lease?.subnet === subnet);
  // Back, with its state (persisted lease and identity): a new generation.
  sim.add(victim, addr(k), [addr(0)]);
  void sim.start(victim);
  const settled = () => up().every((n) => n.cluster.ownLease() && !n.cluster.renumbering()) && sim.duplicates().length === 0 && sim.views() === 1;
  await sim.runUntil(settled, 120_000, 50);
  const r = { nodes: up().length, committed: up().filter((n) => n.cluster.ownLease()).length, duplicates: sim.duplicates(), views: sim.views(), forgottenGone, releasedTaken };
  await sim.stopAll();
  return r;
}
