/**
 * A committed lease that loses its subnet when no other subnet is free: the renumber
 * fails, and every further attempt waits for a growing timer (capped at
 * exhaustedRetryMs) while renumbering() says why. Four nodes fill net4 (4 subnets); a
 * record of a fictitious node with an earlier claim on d's subnet reaches d.
 */
import { describe, expect, test } from "bun:test";
import { parseNetConf } from "../../src/net-conf.ts";
import { encodeRecord } from "../../src/lease/record-codec.ts";
import type { Lease } from "../../src/lease/types.ts";
import { silentLogger, type LogFields, type Logger } from "../../src/log.ts";
import { flush } from "../../sim/run.ts";
import { FakeSim, earlierClaim } from "./harness.ts";

const net4 = parseNetConf({ Network: "10.244.0.0/16", SubnetMin: "10.244.1.0", SubnetMax: "10.244.4.0", Backend: { Type: "host-gw" } });

type Line = { msg: string; fields?: LogFields };

const failures = (lines: Line[]) => lines.filter((l) => l.msg.startsWith("Cannot renumber own lease")).length;

/**
 * a–d hold all 4 subnets. d's error lines are recorded; after 1000 failed renumbers d is
 * stopped, so an implementation that retries without a timer fails a test with the count
 * instead of hanging the event loop.
 */
async function fullRange(seed: number, extra: { exhaustedRetryMs?: number } = {}) {
  const sim = new FakeSim({ seed, net: net4 });
  for (const n of ["a", "b", "c"]) {
    sim.addNode(n, n === "a" ? [] : ["a:7946"]);
    sim.start(n);
  }
  expect(await sim.runUntil(() => ["a", "b", "c"].every((n) => sim.nodes.get(n)!.lease), 20_000)).toBe(true);
  const lines: Line[] = [];
  const logger: Logger = {
    ...silentLogger,
    error(msg, fields) {
      lines.push({ msg, ...(fields ? { fields } : {}) });
      if (failures(lines) === 1000) void sim.nodes.get("d")?.cluster.stop({ leave: false });
    },
    child: () => logger,
  };
  sim.o.logger = logger; // for d only
  sim.o.extra = extra;
  sim.addNode("d", ["a:7946"]);
  sim.start("d");
  expect(await sim.runUntil(() => !!sim.nodes.get("d")!.lease, 20_000)).toBe(true);
  return { sim, d: sim.nodes.get("d")!, lease: sim.nodes.get("d")!.lease!, lines };
}

describe("renumbering into a full range", () => {
  test("with the clock standing still, a failed renumber is tried once, not in a loop", async () => {
    const w = await fullRange(21);
    const { d, lines } = w;
    const t = w.sim.clock.now();
    w.sim.hub.nodes.get("d")!.delegate.notifyMessage(encodeRecord(earlierClaim(w.lease, t)), "a");
    for (let i = 0; i < 50; i++) await flush();
    expect(w.sim.clock.now()).toBe(t);
    expect(failures(lines)).toBe(1);
    expect(d.cluster.renumbering()).toMatch(/^cannot renumber 10\.244\.\d\.0\/24 \(early holds an earlier claim\): subnet exhausted: all 4 subnets .*; next attempt in 1 s$/);
    // The lease is kept (persisted, owned) while peers route its subnet to the winner.
    expect(d.cluster.ownLease()).toEqual(w.lease);
    expect(d.cluster.metrics().renumbers).toBe(0);
    await d.cluster.stop({ leave: false });
  });

  test("the waits grow up to exhaustedRetryMs; renumbering() clears once a subnet frees up and the renumber succeeds", async () => {
    const { sim, d, lease, lines } = await fullRange(22, { exhaustedRetryMs: 20_000 });
    const renumbered: [Lease, Lease][] = [];
    d.cluster.onRenumber((o, n) => void renumbered.push([o, n]));
    const whys: (string | undefined)[] = [];
    d.cluster.onChange(() => {
      const why = d.cluster.renumbering();
      if (why !== whys.at(-1)) whys.push(why);
    });
    sim.hub.nodes.get("d")!.delegate.notifyMessage(encodeRecord(earlierClaim(lease, sim.clock.now())), "a");
    await sim.run(5 * 60_000, 100);
    expect(d.cluster.renumbering()).toMatch(/^cannot renumber/);
    const waits = lines.filter((l) => l.msg.startsWith("Cannot renumber own lease")).map((l) => l.fields!.retryInMs as number);
    // 1, 2, 4, 8, 16 s, then 20 s (the cap), each shortened by up to a quarter (jitter).
    expect(waits.length).toBeGreaterThanOrEqual(15);
    expect(waits.length).toBeLessThanOrEqual(22);
    const nominal = [1000, 2000, 4000, 8000, 16_000];
    waits.forEach((ms, i) => {
      const top = nominal[i] ?? 20_000;
      expect(ms).toBeGreaterThanOrEqual(0.75 * top);
      expect(ms).toBeLessThanOrEqual(top);
    });
    expect(d.cluster.renumbering()).toMatch(/^cannot renumber/);
    expect(renumbered).toEqual([]);
    // c decommissions: its tombstone frees a subnet, and d's next attempt takes it.
    const freed = sim.nodes.get("c")!.lease!.subnet;
    await sim.nodes.get("c")!.cluster.stop({ leave: false, release: true });
    expect(await sim.runUntil(() => renumbered.length === 1, 30_000)).toBe(true);
    expect(renumbered[0]![0].subnet).toBe(lease.subnet);
    expect(renumbered[0]![1].subnet).toBe(freed);
    expect(d.cluster.renumbering()).toBeUndefined();
    expect(d.cluster.metrics().renumbers).toBe(1);
    expect(whys[0]).toBe(`renumbering: early holds an earlier claim on ${lease.subnet}`);
    expect(whys.at(-1)).toBeUndefined();
  });

  test("when the better claim goes away during the wait, the lease is kept and renumbering() clears", async () => {
    const { sim, d, lease } = await fullRange(23);
    const rival = earlierClaim(lease, sim.clock.now());
    const deliver = (l: Lease) => sim.hub.nodes.get("d")!.delegate.notifyMessage(encodeRecord(l), "a");
    deliver(rival);
    await sim.run(3000, 100);
    expect(d.cluster.renumbering()).toMatch(/^cannot renumber/);
    deliver({ ...rival, version: 1, renewedAt: sim.clock.now(), deleted: true });
    expect(await sim.runUntil(() => d.cluster.renumbering() === undefined, 10_000)).toBe(true);
    expect(d.cluster.ownLease()!.subnet).toBe(lease.subnet);
    expect(d.cluster.table().get("d")!.subnet).toBe(lease.subnet);
    expect(d.cluster.metrics().renumbers).toBe(0);
  });
});
