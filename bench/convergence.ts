/**
 * Lease convergence on the real gossip layer: N nodes on one MemNetwork with lan timings
 * and a FakeClock (simulated time, so results do not depend on the machine's speed, only
 * the wall time does). Convergence of a lease = simulated time from its owner committing
 * it until every node that was running at commit time holds it (0 if all held it
 * already at commit; nodes started later get the table when they join).
 *
 *   bun run bench/convergence.ts [--nodes 100] [--loss 0] [--partition-ms 0] [--seed 1]
 *                                [--staggered] [--quiet-ms 30000] [--steady-ms 60000] [--json]
 */
import { parseArgs } from "node:util";
import { parseNetConf } from "../src/config.ts";
import { parseKeyFile } from "../src/gossip/keyring.ts";
import { GossipSim } from "../test/lease/gossip-sim.ts";
import type { Lease } from "../src/lease/types.ts";

const { values: a } = parseArgs({
  options: {
    nodes: { type: "string", default: "100" },
    loss: { type: "string", default: "0" },
    "partition-ms": { type: "string", default: "0" },
    seed: { type: "string", default: "1" },
    staggered: { type: "boolean", default: false },
    "quiet-ms": { type: "string", default: "30000" },
    "steady-ms": { type: "string", default: "60000" },
    json: { type: "boolean", default: false },
  },
});
const N = Number(a.nodes);
const loss = Number(a.loss);
const partitionMs = Number(a["partition-ms"]);
const seed = Number(a.seed);
const steadyMs = Number(a["steady-ms"]);
const quietMs = Number(a["quiet-ms"]);
if (!(Number.isInteger(N) && N >= 2 && N <= 4000)) throw new Error(`--nodes: expected 2..4000, got ${a.nodes}`);
if (!(loss >= 0 && loss < 1)) throw new Error(`--loss: expected 0 ≤ p < 1, got ${a.loss}`);
if (!(partitionMs >= 0)) throw new Error(`--partition-ms: expected ≥ 0, got ${a["partition-ms"]}`);

const wall0 = performance.now();
// A /12 cut into /24s: 4096 subnets, room for the largest run.
const net = parseNetConf({ Network: "10.240.0.0/12", SubnetLen: 24, Backend: { Type: "vxlan" } });
const keyring = parseKeyFile(Buffer.alloc(32, 42).toString("base64"));
const sim = new GossipSim({ seed, net, loss, keyring, settleMs: 2000, delayMs: [1, 10] });
const start0 = sim.clock.now();

// Per lease (name|generation|subnet|claimedAt): which nodes hold it; at commit, how many
// of the nodes started by then still miss it; when the last of those got it.
interface Track {
  heldBy: Uint8Array;
  commitAt?: number;
  /** Nodes started before the commit that do not hold the lease yet. */
  missing?: number;
  /** Only nodes with index < this (started before the commit) are waited for. */
  required?: number;
  fullAt?: number;
  /** Replaced by a renumbered lease before everyone held it: not counted. */
  superseded?: boolean;
}
const tracks = new Map<string, Track>();
const keyOf = (l: { nodeName: string; generation: number; subnet: string; claimedAt: number }) => `${l.nodeName}|${l.generation}|${l.subnet}|${l.claimedAt}`;
const track = (k: string) => {
  let t = tracks.get(k);
  if (!t) tracks.set(k, (t = { heldBy: new Uint8Array(N) }));
  return t;
};
let live = 0;
const names = Array.from({ length: N }, (_, i) => `node-${i}`);
const seeds = [GossipSim.addr(1)];
const committed = (l: Lease) => {
  const t = track(keyOf(l));
  t.commitAt = sim.clock.now();
  t.required = live;
  let missing = 0;
  for (let i = 0; i < live; i++) if (!t.heldBy[i]) missing++;
  t.missing = missing;
  if (missing === 0) t.fullAt = t.commitAt;
};
for (const [i, name] of names.entries()) {
  const n = sim.add(name, GossipSim.addr(i + 1), seeds);
  n.cluster.onRecord((l) => {
    const t = track(keyOf(l));
    if (t.heldBy[i]) return;
    t.heldBy[i] = 1;
    if (t.missing !== undefined && i < t.required! && --t.missing === 0) t.fullAt = sim.clock.now();
  });
  n.cluster.onRenumber((old, now) => {
    track(keyOf(old)).superseded = true;
    committed(now);
  });
}

const startNode = (name: string) => {
  live++;
  sim.start(name).then(committed, () => {});
};
if (a.staggered) {
  names.forEach((name, i) => sim.clock.after(i * 100, () => startNode(name)));
} else {
  for (const name of names) startNode(name);
}
if (partitionMs > 0) {
  const half = names.slice(0, Math.floor(N / 2)).map((_, i) => GossipSim.addr(i + 1));
  sim.clock.after(500, () => sim.network.partition([half]));
  sim.clock.after(500 + partitionMs, () => sim.network.heal());
}

// Phase timings on stderr, so a long run shows where it is (stdout stays one JSON object).
const phase = (name: string) =>
  process.stderr.write(`[convergence] ${name}: sim ${((sim.clock.now() - start0) / 1000).toFixed(1)} s, wall ${((performance.now() - wall0) / 1000).toFixed(1)} s\n`);
const allCommitted = () => live === N && sim.upNodes().every((n) => n.lease || n.error);
const okCommit = await sim.runUntil(allCommitted, 600_000, 50);
const committedAtMs = sim.clock.now() - start0;
// What the join storm put on the simulated wire, up to the last commit.
const storm = sim.network.stats();
phase("all committed");
// Wait until every committed lease is held everywhere (and a partition has healed).
const pending = () => [...tracks.values()].some((t) => t.commitAt !== undefined && t.fullAt === undefined && !t.superseded);
const okConverge = await sim.runUntil(() => !pending() && sim.clock.now() - start0 > 500 + partitionMs, 600_000, 50);
const convergedAtMs = sim.clock.now() - start0;
phase("converged");

// Steady state: after the join storm's broadcasts have drained, bytes on the wire
// (packets + push-pull requests and replies) per node per second. The default window
// (60 s) holds about 60 probe rounds. It may miss the periodic push-pull: nodes started
// together first push-pull within 30 s of start, then every 30 s × pushPullScale (3 min
// at N=1000). Since those exchanges are digest-first (two ~100-byte messages when the
// tables agree) that changes the figure by about 1 byte/s per node; --steady-ms 200000
// spans a whole round at N=1000.
await sim.run(quietMs, 100);
phase("quiet period over");
const before = sim.network.stats().bytes;
await sim.run(steadyMs, 100);
const bytesPerNodePerSec = (sim.network.stats().bytes - before) / N / (steadyMs / 1000);
phase("steady window measured");

const conv = [...tracks.values()]
  .filter((t) => t.commitAt !== undefined && t.fullAt !== undefined && !t.superseded)
  .map((t) => Math.max(0, t.fullAt! - t.commitAt!))
  .sort((x, y) => x - y);
const pct = (p: number) => (conv.length ? conv[Math.min(conv.length - 1, Math.ceil((p / 100) * conv.length) - 1)]! : NaN);
let conflictsResolved = 0;
let renumbers = 0;
let rejected = 0;
for (const n of sim.upNodes()) {
  const m = n.cluster.metrics();
  conflictsResolved += m.conflictsResolved;
  renumbers += m.renumbers;
  rejected += m.rejectedRecords;
}
const result = {
  nodes: N,
  loss,
  partitionMs,
  staggered: a.staggered,
  seed,
  committed: sim.upNodes().filter((n) => n.cluster.ownLease()).length,
  errors: sim.upNodes().filter((n) => n.error).length,
  allCommittedAtMs: okCommit ? committedAtMs : null,
  allConvergedAtMs: okConverge ? convergedAtMs : null,
  convergenceP50Ms: pct(50),
  convergenceP99Ms: pct(99),
  convergenceMaxMs: conv.at(-1) ?? NaN,
  duplicates: sim.duplicates().length,
  views: sim.views(),
  bytesPerNodePerSec: Math.round(bytesPerNodePerSec),
  conflictsResolved,
  renumbers,
  rejectedRecords: rejected,
  stormPackets: storm.packets,
  stormStreams: storm.streams,
  stormMB: Math.round(storm.bytes / 1e5) / 10,
  wallMs: Math.round(performance.now() - wall0),
};
await sim.stopAll();
if (a.json) console.log(JSON.stringify(result));
else for (const [k, v] of Object.entries(result)) console.log(`${k.padEnd(20)} ${v}`);
process.exit(0);
