/**
 * Randomized allocation simulations on the fake gossip layer (cheap enough for hundreds
 * of seeds): 50 nodes join at once into ranges of exactly 50 subnets, with 10% broadcast
 * loss and a partition that heals, for an IPv4-only, a dual-stack and an IPv6-only
 * cluster (and a dual-stack one whose IPv4 range is larger than its IPv6 one, so the two
 * families conflict independently). Every seed must end with every node committed with
 * a subnet of each family, no subnet of either family held twice, and every node's view
 * identical. WEFT_SIM_SEEDS overrides the IPv4 seed count, WEFT_SIM_SEEDS_V6 the others'.
 */
import { expect, test } from "bun:test";
import { seededRandom as seeded } from "../../src/gossip/prng.ts";
import { familiesOf, subnetOf } from "../../src/lease/families.ts";
import { rangesOf } from "../../src/lease/record-validate.ts";
import type { NetConf } from "../../src/net-conf.ts";
import { viewText } from "../../sim/duplicates.ts";
import { FakeSim, net50, netDual50, netDualSkewed, netV6only50 } from "./harness.ts";

const SEEDS = Number(process.env.WEFT_SIM_SEEDS ?? 200);
const SEEDS_V6 = Number(process.env.WEFT_SIM_SEEDS_V6 ?? 30);
const N = 50;

export async function runScenario(seed: number, net: NetConf = net50) {
  const sim = new FakeSim({ seed, net, loss: 0.1, settleMs: 1000 });
  const rnd = seeded(seed ^ 0x5eed);
  const names = Array.from({ length: N }, (_, i) => `n${i}`);
  for (const n of names) {
    const other = names[Math.floor(rnd() * N)]!;
    sim.addNode(n, n === "n0" ? ["n0:7946"] : ["n0:7946", `${other}:7946`, `${n}:7946`]);
  }
  for (const n of names) sim.start(n);
  // A partition into 2 or 3 random groups, starting within the join storm, healing later.
  const at = Math.floor(rnd() * 3000);
  const len = 1000 + Math.floor(rnd() * 8000);
  const k = 2 + Math.floor(rnd() * 2);
  const groups: string[][] = Array.from({ length: k }, () => []);
  for (const n of names) groups[Math.floor(rnd() * k)]!.push(n);
  await sim.run(at);
  sim.hub.partition(groups);
  await sim.run(len);
  sim.hub.heal();
  const done = () => [...sim.nodes.values()].every((e) => e.lease) && sim.duplicates().length === 0;
  const ok = await sim.runUntil(done, 120_000, 50);
  // Anti-entropy (push-pull every 5 s with one random peer) makes all views equal.
  const viewSet = () => new Set([...sim.nodes.values()].map((e) => viewText(e.cluster.leases())));
  const t = sim.clock.now();
  await sim.runUntil(() => viewSet().size === 1, 60_000, 500);
  const convergeMs = sim.clock.now() - t;
  const errors = [...sim.nodes].filter(([, e]) => e.error).map(([n, e]) => `${n}: ${e.error!.message}`);
  const views = viewSet();
  const renumbers = [...sim.nodes.values()].reduce((s, e) => s + e.cluster.metrics().renumbers, 0);
  const conflicts = [...sim.nodes.values()].reduce((s, e) => s + e.cluster.metrics().conflictsResolved, 0);
  // Every committed lease holds a subnet of every family the cluster runs.
  const families = familiesOf(rangesOf(net));
  const incomplete = [...sim.nodes]
    .filter(([, e]) => e.cluster.ownLease() && families.some((f) => subnetOf(e.cluster.ownLease()!, f) === undefined))
    .map(([n]) => n);
  for (const e of sim.nodes.values()) await e.cluster.stop({ leave: false });
  return { ok, errors, duplicates: sim.duplicates(), incomplete, views: views.size, committed: [...sim.nodes.values()].filter((e) => e.lease).length, renumbers, conflicts, convergeMs, simMs: sim.clock.now() - 1_700_000_000_000 };
}

const scenarios: [string, NetConf, number][] = [
  ["IPv4 only", net50, SEEDS],
  ["dual-stack", netDual50, SEEDS_V6],
  ["dual-stack, IPv4 range larger than IPv6", netDualSkewed, SEEDS_V6],
  ["IPv6 only", netV6only50, SEEDS_V6],
];

for (const [what, net, seeds] of scenarios) test(`${what}, ${seeds} seeds: 50 simultaneous joins into exactly 50 subnets per family, 10% loss, healed partition`, async () => {
  const t0 = performance.now();
  let renumbers = 0;
  let conflicts = 0;
  let worstConverge = 0;
  for (let seed = 1; seed <= seeds; seed++) {
    const r = await runScenario(seed, net);
    const summary = `seed ${seed}: ${JSON.stringify(r)}`;
    expect(r.errors, summary).toEqual([]);
    expect(r.committed, summary).toBe(N);
    expect(r.duplicates, summary).toEqual([]);
    expect(r.incomplete, summary).toEqual([]);
    expect(r.views, summary).toBe(1);
    expect(r.ok, summary).toBe(true);
    renumbers += r.renumbers;
    conflicts += r.conflicts;
    worstConverge = Math.max(worstConverge, r.convergeMs);
  }
  console.log(`${what}: ${seeds} seeds in ${((performance.now() - t0) / 1000).toFixed(1)} s wall; conflicts resolved ${conflicts}, renumbers after commit ${renumbers}, slowest view convergence after all committed ${worstConverge} ms`);
}, 600_000);
