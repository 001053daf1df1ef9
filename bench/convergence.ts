/**
 * Lease convergence on the real gossip layer: N nodes on a simulated network with lan
 * timings and a FakeClock (simulated time, so results do not depend on the machine's
 * speed, only the wall time does). Convergence of a lease = simulated time from its owner
 * committing it until every node that was running at commit time holds it (0 if all held
 * it already at commit; nodes started later get the table when they join).
 *
 * The nodes are split over `--workers` threads (default: one per CPU, at most 2), each
 * running its share on its own MemNetwork part in `--window-ms` lockstep windows (the
 * default 1 ms, the shortest hop, is exact; 3 ms is ~10 % faster but lets a few crossings
 * between parts land up to 2 ms late, which shows in tails: see convergence-part.ts).
 * Results depend on the seed, the worker count and the window.
 *
 *   bun run bench/convergence.ts [--nodes 100] [--loss 0] [--partition-ms 0] [--seed 1]
 *                                [--staggered] [--quiet-ms 30000] [--steady-ms 60000]
 *                                [--workers 2] [--window-ms 1] [--json]
 */
import { parseArgs } from "node:util";
import { availableParallelism } from "node:os";
import { type PartOptions, type PartResult, runPart } from "./convergence-part.ts";
import { newChannelBuffers } from "./window-channel.ts";

const { values: a } = parseArgs({
  options: {
    nodes: { type: "string", default: "100" },
    loss: { type: "string", default: "0" },
    "partition-ms": { type: "string", default: "0" },
    seed: { type: "string", default: "1" },
    staggered: { type: "boolean", default: false },
    "quiet-ms": { type: "string", default: "30000" },
    "steady-ms": { type: "string", default: "60000" },
    workers: { type: "string", default: String(Math.min(2, availableParallelism())) },
    "window-ms": { type: "string", default: "1" },
    json: { type: "boolean", default: false },
  },
});

// All nodes' state lives in this process (GBs at 1000 nodes), for which the allocator and
// GC defaults are slow, so the bench runs itself again with them changed (all are read
// at start-up). Bun's GC timer starts a young-generation collection about once a second,
// and each re-scans the big tables the nodes keep changing (JSC's own heuristics collect
// several times less often). mimalloc hands freed pages back to the kernel and faults
// them in again for the next push-pull buffer. With worker threads, concurrent marking
// runs a collector thread beside the worker it collects for, which on 2 CPUs takes its
// core from the other worker while both must finish each window: stop-the-world
// collections (marking in parallel) are faster there and use less memory. One thread
// keeps concurrent marking: there the other core is idle. Figures: bench/RESULTS.md.
const TUNED_ENV = { BUN_GC_TIMER_DISABLE: "1", MIMALLOC_PURGE_DELAY: "-1" };
const STOP_THE_WORLD_GC = { BUN_JSC_useConcurrentGC: "false" };
if (process.env.BUN_GC_TIMER_DISABLE === undefined) {
  const child = Bun.spawn([process.execPath, ...process.argv.slice(1)], {
    env: { ...TUNED_ENV, ...(Number(a.workers) > 1 ? STOP_THE_WORLD_GC : {}), ...process.env },
    stdio: ["inherit", "inherit", "inherit"],
  });
  process.exit(await child.exited);
}

const N = Number(a.nodes);
const loss = Number(a.loss);
const partitionMs = Number(a["partition-ms"]);
const seed = Number(a.seed);
const steadyMs = Number(a["steady-ms"]);
const quietMs = Number(a["quiet-ms"]);
if (!(Number.isInteger(N) && N >= 2 && N <= 4000)) throw new Error(`--nodes: expected 2..4000, got ${a.nodes}`);
if (!(loss >= 0 && loss < 1)) throw new Error(`--loss: expected 0 ≤ p < 1, got ${a.loss}`);
if (!(partitionMs >= 0)) throw new Error(`--partition-ms: expected ≥ 0, got ${a["partition-ms"]}`);

const workers = Number(a.workers);
if (!(Number.isInteger(workers) && workers >= 1 && workers <= 16)) throw new Error(`--workers: expected 1..16, got ${a.workers}`);
const windowMs = Number(a["window-ms"]);
if (!(Number.isInteger(windowMs) && windowMs >= 1 && windowMs <= 10)) throw new Error(`--window-ms: expected 1..10, got ${a["window-ms"]}`);
const wall0 = performance.now();
const opts = (part: number): PartOptions => ({ nodes: N, loss, partitionMs, seed, staggered: a.staggered, quietMs, steadyMs, part, parts: workers, windowMs });

// Phase timings on stderr, so a long run shows where it is (stdout stays one JSON object).
const log = (s: string) => process.stderr.write(`${s}, wall ${((performance.now() - wall0) / 1000).toFixed(1)} s\n`);
let parts: PartResult[];
if (workers === 1) {
  parts = [await runPart(opts(0), async () => [], log)];
} else {
  // A full mesh of ports: ports[w][p] is worker w's end of the channel to worker p. Window
  // messages go through shared buffers (window-channel.ts), the ports carry only the rare
  // message too large for them; bufs[w][p] holds what w sends to p.
  const ports: (MessagePort | null)[][] = Array.from({ length: workers }, () => Array<MessagePort | null>(workers).fill(null));
  const bufs = Array.from({ length: workers }, (_, w) => Array.from({ length: workers }, (_, p) => (p === w ? null : newChannelBuffers())));
  for (let w = 0; w < workers; w++)
    for (let p = w + 1; p < workers; p++) {
      const ch = new MessageChannel();
      ports[w]![p] = ch.port1;
      ports[p]![w] = ch.port2;
    }
  parts = await Promise.all(
    Array.from({ length: workers }, (_, w) => {
      const worker = new Worker(new URL("./convergence-worker.ts", import.meta.url).href);
      return new Promise<PartResult>((resolve, reject) => {
        worker.onmessage = (e: MessageEvent<PartResult>) => {
          resolve(e.data);
          worker.terminate();
        };
        worker.onerror = (e) => reject(new Error(`worker ${w}: ${e.message}`));
        const mine = ports[w]!.filter((p): p is MessagePort => p !== null);
        const channels = ports[w]!.map((_, p) => (p === w ? null : { out: bufs[w]![p]!, in: bufs[p]![w]! }));
        worker.postMessage({ opts: opts(w), ports: ports[w], channels }, mine);
      });
    }),
  );
}

// Merge the parts: a lease has converged when no part misses it; it took until the last
// part's last required node got it.
const merged = new Map<string, { commitAt: number; superseded: boolean; missing: number; fullAt: number }>();
for (const p of parts)
  for (const t of p.tracks) {
    const m = merged.get(t.key);
    if (!m) merged.set(t.key, { ...t });
    else {
      m.superseded ||= t.superseded;
      m.missing += t.missing;
      m.fullAt = Math.max(m.fullAt, t.fullAt);
    }
  }
const conv = [...merged.values()]
  .filter((t) => !t.superseded && t.missing === 0)
  .map((t) => Math.max(0, t.fullAt - t.commitAt))
  .sort((x, y) => x - y);
const pct = (p: number) => (conv.length ? conv[Math.min(conv.length - 1, Math.ceil((p / 100) * conv.length) - 1)]! : NaN);
const sum = (f: (p: PartResult) => number) => parts.reduce((k, p) => k + f(p), 0);
const bySubnet = new Map<string, string>();
const duplicates: string[] = [];
for (const p of parts)
  for (const o of p.own) {
    if (bySubnet.has(o.subnet)) duplicates.push(`${o.subnet} (${bySubnet.get(o.subnet)}, ${o.name})`);
    else bySubnet.set(o.subnet, o.name);
  }
const result = {
  nodes: N,
  loss,
  partitionMs,
  staggered: a.staggered,
  seed,
  workers,
  windowMs: workers > 1 ? windowMs : null,
  committed: sum((p) => p.committed),
  errors: sum((p) => p.errors),
  allCommittedAtMs: parts[0]!.allCommittedAtMs,
  allConvergedAtMs: parts[0]!.allConvergedAtMs,
  convergenceP50Ms: pct(50),
  convergenceP99Ms: pct(99),
  convergenceMaxMs: conv.at(-1) ?? NaN,
  duplicates: duplicates.length,
  views: new Set(parts.flatMap((p) => p.views)).size,
  bytesPerNodePerSec: Math.round(sum((p) => p.steadyBytes) / N / (steadyMs / 1000)),
  conflictsResolved: sum((p) => p.conflictsResolved),
  renumbers: sum((p) => p.renumbers),
  rejectedRecords: sum((p) => p.rejectedRecords),
  stormPackets: sum((p) => p.storm.packets),
  stormStreams: sum((p) => p.storm.streams),
  stormMB: Math.round(sum((p) => p.storm.bytes) / 1e5) / 10,
  wallMs: Math.round(performance.now() - wall0),
};
if (a.json) console.log(JSON.stringify(result));
else for (const [k, v] of Object.entries(result)) console.log(`${k.padEnd(20)} ${v}`);
process.exit(0);
