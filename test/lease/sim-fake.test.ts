/**
 * Randomized allocation simulations on the fake gossip layer (cheap enough for 200 seeds):
 * 50 nodes join at once into a range of exactly 50 subnets, with 10% broadcast loss and a
 * partition that heals. Every seed must end with every node committed, no subnet held
 * twice, and every node's view identical. WEFT_SIM_SEEDS overrides the seed count.
 */
import { expect, test } from "bun:test";
import { seededRandom as seeded } from "../../src/gossip/prng.ts";
import { FakeSim } from "./harness.ts";

const SEEDS = Number(process.env.WEFT_SIM_SEEDS ?? 200);
const N = 50;

export async function runScenario(seed: number) {
  const sim = new FakeSim({ seed, loss: 0.1, settleMs: 1000 });
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
  const viewSet = () => new Set([...sim.nodes.values()].map((e) => e.cluster.leases().map((l) => `${l.nodeName}=${l.subnet}`).sort().join(",")));
  const t = sim.clock.now();
  await sim.runUntil(() => viewSet().size === 1, 60_000, 500);
  const convergeMs = sim.clock.now() - t;
  const errors = [...sim.nodes].filter(([, e]) => e.error).map(([n, e]) => `${n}: ${e.error!.message}`);
  const views = viewSet();
  const renumbers = [...sim.nodes.values()].reduce((s, e) => s + e.cluster.metrics().renumbers, 0);
  const conflicts = [...sim.nodes.values()].reduce((s, e) => s + e.cluster.metrics().conflictsResolved, 0);
  for (const e of sim.nodes.values()) await e.cluster.stop({ leave: false });
  return { ok, errors, duplicates: sim.duplicates(), views: views.size, committed: [...sim.nodes.values()].filter((e) => e.lease).length, renumbers, conflicts, convergeMs, simMs: sim.clock.now() - 1_700_000_000_000 };
}

test(`${SEEDS} seeds: 50 simultaneous joins into exactly 50 subnets, 10% loss, healed partition`, async () => {
  const t0 = performance.now();
  let renumbers = 0;
  let conflicts = 0;
  let worstConverge = 0;
  for (let seed = 1; seed <= SEEDS; seed++) {
    const r = await runScenario(seed);
    const summary = `seed ${seed}: ${JSON.stringify(r)}`;
    expect(r.errors, summary).toEqual([]);
    expect(r.committed, summary).toBe(N);
    expect(r.duplicates, summary).toEqual([]);
    expect(r.views, summary).toBe(1);
    expect(r.ok, summary).toBe(true);
    renumbers += r.renumbers;
    conflicts += r.conflicts;
    worstConverge = Math.max(worstConverge, r.convergeMs);
  }
  console.log(`${SEEDS} seeds in ${((performance.now() - t0) / 1000).toFixed(1)} s wall; conflicts resolved ${conflicts}, renumbers after commit ${renumbers}, slowest view convergence after all committed ${worstConverge} ms`);
}, 600_000);
