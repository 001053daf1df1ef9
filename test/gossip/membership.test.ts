import { describe, expect, test } from "bun:test";
import { Sim, allSee, view } from "./harness.ts";

const enc = (s: string) => new TextEncoder().encode(s);

describe("membership on MemNetwork (FakeClock)", () => {
  test("N nodes join through one seed and all see all alive", async () => {
    const sim = new Sim({ seed: 11 });
    const nodes = await sim.cluster(8);
    const names = nodes.map((n) => n.name);
    expect(await sim.runUntil(() => allSee(nodes, names, "alive"), 10_000)).toBeGreaterThanOrEqual(0);
    // Every join is a push-pull, so the joiners delivered their delegate state too.
    expect(nodes[0]!.delegate.merges.filter((m) => m.join).length).toBe(7);
  });

  test("a killed node is suspected, then declared dead by all within a bound", async () => {
    const sim = new Sim({ seed: 12 });
    const nodes = await sim.cluster(6);
    await sim.runUntil(() => allSee(nodes, nodes.map((n) => n.name), "alive"), 10_000);
    await nodes[3]!.gossip.shutdown();
    const rest = nodes.filter((_, i) => i !== 3);
    let suspected = false;
    const took = await sim.runUntil(() => {
      suspected ||= rest.some((n) => view(n).get("n3") === "suspect");
      return allSee(rest, ["n3"], "dead");
    }, 10_000);
    expect(suspected).toBe(true);
    // Bound: a probe round over 5 peers (5 × 200 ms), plus the maximum suspicion timeout
    // (4 × 600 ms), plus dissemination; suspicion confirmations usually make it faster.
    expect(took).toBeGreaterThan(0);
    expect(took).toBeLessThan(5 * 200 + 4 * 600 + 1000);
    expect(rest[0]!.delegate.events).toContain("leave n3 dead");
  });

  test("broadcasts reach every node, once each, attributed to their origin", async () => {
    const sim = new Sim({ seed: 13 });
    const nodes = await sim.cluster(10);
    await sim.runUntil(() => allSee(nodes, nodes.map((n) => n.name), "alive"), 10_000);
    nodes[4]!.gossip.broadcast("lease/n4", enc("v1"));
    const others = nodes.filter((_, i) => i !== 4);
    expect(await sim.runUntil(() => others.every((n) => n.delegate.messages.length === 1), 5_000)).toBeGreaterThanOrEqual(0);
    await sim.run(3_000); // let retransmissions finish: no duplicate deliveries
    for (const n of others) expect(n.delegate.messages).toEqual([{ payload: "v1", from: "n4" }]);
    expect(nodes[4]!.delegate.messages).toEqual([]); // not delivered to its own origin
  });

  test("push-pull merges delegate state both ways", async () => {
    const sim = new Sim({ seed: 14, config: { pushPullIntervalMs: 0 } });
    const nodes = await sim.cluster(3);
    await sim.runUntil(() => allSee(nodes, ["n0", "n1", "n2"], "alive"), 5_000);
    nodes[1]!.delegate.state.set("a", "from-n1");
    nodes[2]!.delegate.state.set("b", "from-n2");
    await sim.runUntilSettled(nodes[1]!.gossip.pushPull("n2"), 5_000);
    expect(nodes[1]!.delegate.state.get("b")).toBe("from-n2");
    expect(nodes[2]!.delegate.state.get("a")).toBe("from-n1");
    expect(nodes[2]!.delegate.merges.at(-1)).toEqual({ from: "n1", join: false });
    await expect(nodes[1]!.gossip.pushPull("nobody")).rejects.toThrow(/unknown member/);
  });
});
