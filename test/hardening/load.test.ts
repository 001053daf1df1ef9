/**
 * 1000 leases from simulated peers against one real agent,
 * correctness only: every fictitious lease becomes a route (and vxlan neighbour + FDB
 * entry), /v1/nodes lists them all. Timing and memory figures: bench/load.ts.
 */
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { requireRoot } from "../../sim/netns.ts";
import { BIN } from "../../sim/agents.ts";
import { runLoadScenario } from "../../sim/load-scenario.ts";

const skip = requireRoot() ?? (existsSync(BIN) ? undefined : "dist/weft is not built (npm test builds it)") ?? (Bun.which("curl") ? undefined : "needs curl");

describe.skipIf(!!skip)("1000 leases from a fake peer", () => {
  test("the agent programs a route, neighbour and FDB entry for every lease and lists them all", async () => {
    const r = await runLoadScenario({ leases: 1000, prefix: "whd-l", requests: 20 });
    expect(r.routes).toBe(1000);
    expect(r.neighbours).toBe(1000);
    expect(r.fdb).toBe(1000);
    // The 1000 fictitious leases plus the agent's own.
    expect(r.nodesListed).toBe(1001);
    console.log(`load (correctness run): ${JSON.stringify(r)}`);
  }, 180_000);
});
