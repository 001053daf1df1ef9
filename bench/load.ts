/**
 * 1000 leases against one real agent (root; builds nothing: run `bun run build.ts` first).
 * A fake key-holding peer serves the leases of fictitious nodes over real gossip; the
 * agent in a namespace must program them. Prints one JSON object: time to ready and to
 * all routes programmed, routes/neighbours/FDB entries, agent RSS (current and peak,
 * target 150 MB), /v1/nodes latency p50/p99/max over --requests sequential calls; then
 * (--flood N, default 32, 0 = off) the agent's RSS while N keyless connections each hold
 * an almost complete 8 MB push-pull request (docs/hardening-findings.md F3). Results: bench/RESULTS.md.
 *
 *   sudo bun run bench/load.ts [--leases 1000] [--requests 500] [--runs 1] [--flood 32]
 */
import { parseArgs } from "node:util";
import { runLoadScenario, type LoadResult } from "../sim/load-scenario.ts";

const { values: a } = parseArgs({
  options: {
    leases: { type: "string", default: "1000" },
    requests: { type: "string", default: "500" },
    runs: { type: "string", default: "1" },
    flood: { type: "string", default: "32" },
  },
});
if (process.getuid?.() !== 0) {
  console.error("bench/load.ts needs root (network namespaces)");
  process.exit(2);
}
const RSS_TARGET_MB = 150;
const results: LoadResult[] = [];
for (let i = 0; i < Number(a.runs); i++) {
  results.push(await runLoadScenario({ leases: Number(a.leases), requests: Number(a.requests), prefix: "whd-b", flood: Number(a.flood) }));
}
const worst = (k: keyof LoadResult) => Math.max(...results.map((r) => r[k] as number));
console.log(
  JSON.stringify({
    date: new Date().toISOString(),
    runs: results,
    worst: { programMs: worst("programMs"), rssPeakMb: worst("rssPeakMb"), nodesP99Ms: worst("nodesP99Ms"), ...(Number(a.flood) > 0 ? { floodRssPeakMb: worst("floodRssPeakMb") } : {}) },
    rssTargetMb: RSS_TARGET_MB,
    withinRssTarget: worst("rssPeakMb") <= RSS_TARGET_MB,
    ...(Number(a.flood) > 0 ? { withinRssTargetUnderFlood: worst("floodRssPeakMb") <= RSS_TARGET_MB } : {}),
  }, null, 2),
);
