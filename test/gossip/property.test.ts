/**
 * Randomised scenarios on MemNetwork + FakeClock: whatever mix of loss, partitions,
 * kills, restarts and graceful leaves happens, once the network heals every running
 * node sees exactly the running nodes alive, sees the others as not alive (or has
 * reaped them), and push-pull has spread every running node's delegate state.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { Sim, type SimNode, view } from "../../sim/gossip-sim.ts";

type Event =
  | { kind: "partition"; cut: number; ms: number }
  | { kind: "kill"; who: number }
  | { kind: "restart"; who: number }
  | { kind: "leave"; who: number }
  | { kind: "wait"; ms: number };

const event: fc.Arbitrary<Event> = fc.oneof(
  fc.record({ kind: fc.constant("partition" as const), cut: fc.integer({ min: 1, max: 9 }), ms: fc.integer({ min: 500, max: 15_000 }) }),
  fc.record({ kind: fc.constant("kill" as const), who: fc.nat(9) }),
  fc.record({ kind: fc.constant("restart" as const), who: fc.nat(9) }),
  fc.record({ kind: fc.constant("leave" as const), who: fc.nat(9) }),
  fc.record({ kind: fc.constant("wait" as const), ms: fc.integer({ min: 100, max: 5_000 }) }),
);

async function scenario(seed: number, n: number, loss: number, events: Event[]): Promise<string | null> {
  const sim = new Sim({ seed, net: { loss, delayMs: [1, 10], reorder: true } });
  const nodes: (SimNode | null)[] = [];
  for (let i = 0; i < n; i++) {
    const nd = await sim.add(`n${i}`, i);
    nd.delegate.state.set(`n${i}`, "x");
    nodes.push(nd);
  }
  await sim.runUntilSettled(Promise.all(nodes.slice(1).map((nd) => nd!.gossip.join([nodes[0]!.addr]))), 30_000);
  for (const e of events) {
    const live = nodes.filter((x): x is SimNode => x !== null);
    if (e.kind === "partition") {
      const addrs = nodes.map((_, i) => Sim.addr(i));
      sim.net.partition([addrs.slice(0, e.cut % n), addrs.slice(e.cut % n)]);
      await sim.run(e.ms, 20);
      sim.net.heal();
    } else if (e.kind === "kill" || e.kind === "leave") {
      const i = e.who % n;
      const nd = nodes[i];
      if (!nd || live.length <= 2) continue;
      if (e.kind === "kill") await nd.gossip.shutdown();
      else await sim.runUntilSettled(nd.gossip.leave(2_000), 5_000);
      nodes[i] = null;
    } else if (e.kind === "restart") {
      const i = e.who % n;
      if (nodes[i]) continue;
      const nd = await sim.add(`n${i}`, i);
      nd.delegate.state.set(`n${i}`, "x");
      nodes[i] = nd;
      const seeds = nodes.filter((x, j) => x && j !== i).map((x) => x!.addr);
      void nd.gossip.join(seeds);
    } else {
      await sim.run(e.ms, 20);
    }
  }
  sim.net.heal();
  sim.net.setLoss(0);
  const running = nodes.filter((x): x is SimNode => x !== null);
  const names = new Set(running.map((x) => x.name));
  const converged = () =>
    running.every((o) => {
      const v = view(o);
      for (const [name, state] of v) if ((state === "alive") !== names.has(name)) return false;
      for (const name of names) if (v.get(name) !== "alive") return false;
      return [...names].every((name) => o.delegate.state.has(name));
    });
  if ((await sim.runUntil(converged, 90_000, 50)) < 0) {
    return JSON.stringify(running.map((o) => [o.name, [...view(o)].filter(([k, s]) => (s === "alive") !== names.has(k))]));
  }
  return null;
}

describe("randomised partitions, kills, restarts and leaves", () => {
  test("always reconverge after the network heals", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.integer({ min: 3, max: 8 }),
        fc.constantFrom(0, 0.05, 0.15),
        fc.array(event, { minLength: 1, maxLength: 5 }),
        async (seed, n, loss, events) => {
          const bad = await scenario(seed, n, loss, events);
          if (bad) throw new Error(`did not reconverge: ${bad}`);
        },
      ),
      { numRuns: 40, seed: 424242 },
    );
  }, 60_000);
});
