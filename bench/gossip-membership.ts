/**
 * Prints gossip convergence figures for docs/gossip.md (not a test: run it by hand).
 *
 *   bun run bench/gossip-membership.ts [N=50] [loss=0]
 *
 * N nodes with lanConfig() on a MemNetwork (1–5 ms one-way delay) and a FakeClock, all
 * joining through one seed at once; then one 100-byte broadcast; then one node killed.
 * Times are simulated ms; wallMs is real time for the whole run (including this
 * script's all-pairs checks every step). A state never reached is reported as null, and
 * the script then exits 1.
 */
import { lanConfig } from "../src/gossip/config.ts";
import { Sim, type SimNode, allSee, view } from "../sim/gossip-sim.ts";

const N = Number(process.argv[2] ?? 50);
const loss = Number(process.argv[3] ?? 0);
const t0 = performance.now();
const sim = new Sim({ seed: 5, net: { delayMs: [1, 5], loss }, config: { ...lanConfig() } });
const nodes: SimNode[] = [];
for (let i = 0; i < N; i++) nodes.push(await sim.add(`n${i}`, i));
const startJoin = sim.clock.now();
await sim.runUntilSettled(Promise.all(nodes.slice(1).map((n) => n.gossip.join([nodes[0]!.addr]))), 60_000);
const names = nodes.map((n) => n.name);
/** Simulated ms a wait took, or null when its state was never reached (runUntil's -1). */
const reached = (ms: number): number | null => (ms < 0 ? null : ms);
const allAlive = await sim.runUntil(() => allSee(nodes, names, "alive"), 300_000, 50);
const joinToAllAliveMs = allAlive < 0 ? null : sim.clock.now() - startJoin;
const s0 = sim.net.stats();
const c0 = sim.clock.now();
nodes[1]!.gossip.broadcast("x", new Uint8Array(100));
const broadcastAllMs = reached(await sim.runUntil(() => nodes.every((n, i) => i === 1 || n.delegate.messages.length === 1), 60_000));
await nodes[2]!.gossip.shutdown();
const rest = nodes.filter((_, i) => i !== 2);
const firstSuspectMs = reached(await sim.runUntil(() => rest.some((n) => view(n).get("n2") !== "alive"), 120_000));
const deadEverywhereAfterSuspectMs = reached(await sim.runUntil(() => allSee(rest, ["n2"], "dead"), 120_000));
await sim.run(30_000, 50);
const s1 = sim.net.stats();
const secs = (sim.clock.now() - c0) / 1000;
console.log(
  JSON.stringify({
    N,
    loss,
    joinToAllAliveMs,
    broadcastAllMs,
    firstSuspectMs,
    deadEverywhereAfterSuspectMs,
    packetsPerNodePerSec: +((s1.packets - s0.packets) / N / secs).toFixed(1),
    bytesPerNodePerSec: Math.round((s1.bytes - s0.bytes) / N / secs),
    wallMs: Math.round(performance.now() - t0),
  }),
);
process.exit([joinToAllAliveMs, broadcastAllMs, firstSuspectMs, deadEverywhereAfterSuspectMs].includes(null) ? 1 : 0);
