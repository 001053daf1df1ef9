/**
 * Randomized allocation on the REAL gossip layer (SWIM, sealed packets, push-pull) over
 * MemNetwork with a FakeClock: 50 nodes join at once into exactly 50 subnets with 10%
 * packet loss and a partition that heals. Fewer seeds than sim-fake.test.ts because each
 * costs ~2 s of CPU; WEFT_GOSSIP_SIM_SEEDS raises the count.
 */
import { expect, test } from "bun:test";
import { parseKeyFile } from "../../src/gossip/keyring.ts";
import { LeaseSim } from "../../sim/lease-sim.ts";
import { seededRandom as seeded } from "../../src/gossip/prng.ts";
import type { NetConf } from "../../src/net-conf.ts";
import { net50, netDualSkewed, netV6only50 } from "./harness.ts";

const SEEDS = Number(process.env.WEFT_GOSSIP_SIM_SEEDS ?? 6);
const SEEDS_V6 = Number(process.env.WEFT_GOSSIP_SIM_SEEDS_V6 ?? 6);
const FIRST = Number(process.env.WEFT_GOSSIP_SIM_FIRST ?? 1);
const N = 50;
const keyring = parseKeyFile(Buffer.alloc(32, 7).toString("base64"));

// IPv6-only nodes gossip over IPv6: sealed sender addresses and reply budgets with
// bracketed IPv6 gossip addresses.
const variants: [string, NetConf, number, (i: number) => string][] = [
  ["IPv4", net50, SEEDS, LeaseSim.addr],
  ["dual-stack", netDualSkewed, SEEDS_V6, LeaseSim.addr],
  ["IPv6-only over IPv6 gossip", netV6only50, SEEDS_V6, LeaseSim.addr6],
];

for (const [what, net, seeds, addrOf] of variants) test(`${what}, ${seeds} seeds on real gossip: 50 joins into exactly 50 subnets per family, 10% loss, healed partition`, async () => {
  const t0 = performance.now();
  let renumbers = 0;
  for (let seed = FIRST; seed < FIRST + seeds; seed++) {
    const sim = new LeaseSim({ seed, net, loss: 0.1, keyring, settleMs: 1000 });
    const rnd = seeded(seed);
    const addrs = Array.from({ length: N }, (_, i) => addrOf(i + 1));
    for (let i = 0; i < N; i++) {
      const other = addrs[Math.floor(rnd() * N)]!;
      sim.add(`n${i}`, addrs[i]!, i === 0 ? [] : [addrs[0]!, other]);
    }
    for (let i = 0; i < N; i++) sim.start(`n${i}`);
    const at = Math.floor(rnd() * 3000);
    const len = 2000 + Math.floor(rnd() * 8000);
    await sim.run(at);
    const cut = addrs.filter(() => rnd() < 0.5);
    sim.network.partition([cut]);
    await sim.run(len);
    sim.network.heal();
    const committed = await sim.runUntil(() => sim.upNodes().every((n) => n.lease || n.error) && sim.duplicates().length === 0, 120_000, 50);
    const agreed = await sim.runUntil(() => sim.views() === 1 && sim.duplicates().length === 0, 240_000, 500);
    const summary = `seed ${seed}: partition at ${at} ms for ${len} ms of ${cut.length} nodes; committed ${sim.upNodes().filter((n) => n.lease).length}, views ${sim.views()}, dups ${sim.duplicates()}`;
    expect(sim.upNodes().filter((n) => n.error).map((n) => `${n.name}: ${n.error!.message}`), summary).toEqual([]);
    expect(committed, summary).toBe(true);
    expect(agreed, summary).toBe(true);
    expect(sim.duplicates(), summary).toEqual([]);
    for (const n of sim.upNodes()) renumbers += n.cluster.metrics().renumbers;
    await sim.stopAll();
  }
  console.log(`${what}: ${seeds} real-gossip seeds in ${((performance.now() - t0) / 1000).toFixed(1)} s wall; renumbers after commit ${renumbers}`);
}, 600_000);

test("on real gossip, a release reaches the peers even with leave: false (the tombstone is gossiped out before the node stops)", async () => {
  const sim = new LeaseSim({ seed: 5, net: net50, keyring, settleMs: 1000 });
  const addrs = [1, 2, 3].map((i) => LeaseSim.addr(i));
  sim.add("a", addrs[0]!, []);
  sim.add("b", addrs[1]!, [addrs[0]!]);
  sim.add("c", addrs[2]!, [addrs[0]!]);
  for (const n of ["a", "b", "c"]) sim.start(n);
  expect(await sim.runUntil(() => sim.upNodes().every((n) => n.lease) && sim.views() === 1, 30_000)).toBe(true);
  const b = sim.nodes.get("b")!;
  const subnet = b.lease!.subnet;
  b.up = false;
  // stop() waits on the simulated clock while the leave spreads: run the clock meanwhile.
  const stopping = b.cluster.stop({ leave: false, release: true });
  const others = ["a", "c"].map((n) => sim.nodes.get(n)!.cluster);
  // Long before the lease TTL (24 h), and well within the leave's 5 s.
  expect(await sim.runUntil(() => others.every((c) => c.table().get("b")?.deleted === true), 5000)).toBe(true);
  for (const c of others) {
    expect(c.leases().map((l) => l.nodeName).sort()).toEqual(["a", "c"]);
    expect(c.table().get("b")!.subnet).toBe(subnet);
  }
  let stopped = false;
  void stopping.then(() => (stopped = true));
  expect(await sim.runUntil(() => stopped, 10_000)).toBe(true);
  await sim.stopAll();
}, 60_000);
