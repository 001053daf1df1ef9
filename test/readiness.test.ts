/**
 * The agent's readiness (/readyz and systemd STATUS=) across a renumber, without root:
 * LeaseReadiness (src/readiness.ts) following a real lease layer on the fake gossip layer,
 * with a recording notifier and a reprogram step the test resolves by hand. The whole
 * agent across the same paths is test/agent.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { LeaseReadiness } from "../src/readiness.ts";
import { parseNetConf } from "../src/net-conf.ts";
import { encodeRecord } from "../src/lease/record-codec.ts";
import type { Lease } from "../src/lease/types.ts";
import type { Notifier } from "../src/sys/sdnotify.ts";
import { flush } from "../sim/run.ts";
import { FakeSim, earlierClaim } from "./lease/harness.ts";

const net4 = parseNetConf({ Network: "10.244.0.0/16", SubnetMin: "10.244.1.0", SubnetMax: "10.244.4.0", Backend: { Type: "host-gw" } });

function recordingNotifier(statuses: string[]): Notifier {
  return {
    socket: "(test)",
    notify: () => true,
    ready: () => true,
    stopping: () => true,
    status: (text) => statuses.push(text) > 0,
    watchdog: () => true,
    startWatchdog: () => null,
    close() {},
  };
}

/** Nodes a…(n) on net4; the last one is followed by a LeaseReadiness whose reprograms wait for the test. */
async function followed(seed: number, names: string[]) {
  const sim = new FakeSim({ seed, net: net4, extra: { exhaustedRetryMs: 20_000 } });
  for (const n of names) {
    sim.addNode(n, n === names[0] ? [] : [`${names[0]}:7946`]);
    sim.start(n);
    expect(await sim.runUntil(() => !!sim.nodes.get(n)!.lease, 20_000)).toBe(true);
  }
  const me = sim.nodes.get(names.at(-1)!)!;
  const statuses: string[] = [];
  const ready = new LeaseReadiness({ notifier: recordingNotifier(statuses), backend: "host-gw" });
  const reprograms: { old: Lease; now: Lease; done: () => void; fail: (e: Error) => void }[] = [];
  const failures: Error[] = [];
  ready.follow(me.cluster, (old, now) => new Promise<void>((done, fail) => void reprograms.push({ old, now, done, fail })), (e) => void failures.push(e));
  // What Agent.start does once the dataplane is up.
  ready.serving(me.lease!);
  ready.update(me.cluster);
  return { sim, me, lease: me.lease!, ready, statuses, reprograms, failures };
}

describe("agent readiness across a renumber", () => {
  test("range full: not ready with the lease layer's reason while the renumber backs off; ready on the new subnet once it succeeds", async () => {
    const { sim, me, lease, ready, statuses, reprograms } = await followed(41, ["a", "b", "c", "d"]);
    expect(ready.readiness()).toEqual({ ready: true });
    expect(statuses).toEqual([`ready: ${lease.subnet} via host-gw`]);
    sim.hub.nodes.get("d")!.delegate.notifyMessage(encodeRecord(earlierClaim(lease, sim.clock.now())), "a");
    for (let i = 0; i < 10; i++) await flush();
    const r = ready.readiness();
    expect(r.ready).toBe(false);
    expect(r.reason).toMatch(new RegExp(`^cannot renumber ${lease.subnet!.replaceAll(".", "\\.")} \\(early holds an earlier claim\\): subnet exhausted: all 4 subnets`));
    expect(statuses.at(-1)).toBe(`not ready: ${r.reason}`);
    await sim.run(60_000, 100);
    expect(ready.readiness().ready).toBe(false);
    expect(reprograms).toEqual([]);
    // c decommissions; d's next attempt takes c's subnet and the agent reprograms.
    const freed = sim.nodes.get("c")!.lease!.subnet;
    await sim.nodes.get("c")!.cluster.stop({ leave: false, release: true });
    expect(await sim.runUntil(() => reprograms.length === 1, 30_000)).toBe(true);
    expect([reprograms[0]!.old.subnet, reprograms[0]!.now.subnet]).toEqual([lease.subnet, freed]);
    expect(ready.readiness()).toEqual({ ready: false, reason: `renumbering from ${lease.subnet} to ${freed}` });
    await sim.run(1000);
    expect(ready.readiness().ready).toBe(false); // not before the dataplane is moved
    reprograms[0]!.done();
    await flush();
    expect(ready.readiness()).toEqual({ ready: true });
    expect(statuses.at(-1)).toBe(`ready: ${freed} via host-gw`);
    expect(me.cluster.ownLease()!.subnet).toBe(freed);
  });

  test("a renumber with a free subnet: not ready while claiming and reprogramming, then STATUS= names the new subnet", async () => {
    const { sim, lease, ready, statuses, reprograms } = await followed(42, ["a", "b"]);
    sim.hub.nodes.get("b")!.delegate.notifyMessage(encodeRecord(earlierClaim(lease, sim.clock.now())), "a");
    expect(ready.readiness()).toEqual({ ready: false, reason: `renumbering: early holds an earlier claim on ${lease.subnet}` });
    expect(await sim.runUntil(() => reprograms.length === 1, 30_000)).toBe(true);
    const now = reprograms[0]!.now.subnet;
    expect(now).not.toBe(lease.subnet);
    reprograms[0]!.done();
    await flush();
    expect(statuses).toEqual([
      `ready: ${lease.subnet} via host-gw`,
      `not ready: renumbering: early holds an earlier claim on ${lease.subnet}`,
      `not ready: renumbering from ${lease.subnet} to ${now}`,
      `ready: ${now} via host-gw`,
    ]);
  });

  test("the better claim goes away during the back-off: ready again on the old subnet", async () => {
    const { sim, lease, ready, statuses, failures } = await followed(43, ["a", "b", "c", "d"]);
    const rival = earlierClaim(lease, sim.clock.now());
    const deliver = (l: Lease) => sim.hub.nodes.get("d")!.delegate.notifyMessage(encodeRecord(l), "a");
    deliver(rival);
    await sim.run(3000, 100);
    expect(ready.readiness().ready).toBe(false);
    deliver({ ...rival, version: 1, renewedAt: sim.clock.now(), deleted: true });
    expect(await sim.runUntil(() => ready.readiness().ready, 30_000)).toBe(true);
    expect(statuses.at(-1)).toBe(`ready: ${lease.subnet} via host-gw`);
    expect(failures).toEqual([]);
  });

  test("a failed reprogram is final: not ready with the error, reported once, also after a later renumber", async () => {
    const { sim, lease, ready, reprograms, failures } = await followed(44, ["a", "b"]);
    sim.hub.nodes.get("b")!.delegate.notifyMessage(encodeRecord(earlierClaim(lease, sim.clock.now())), "a");
    expect(await sim.runUntil(() => reprograms.length === 1, 30_000)).toBe(true);
    reprograms[0]!.fail(new Error("Cannot add route: boom"));
    await flush();
    expect(ready.readiness()).toEqual({ ready: false, reason: "renumber failed: Cannot add route: boom" });
    expect(failures.map((e) => e.message)).toEqual(["Cannot add route: boom"]);
    // A later renumber whose reprogram works does not make the node ready again: the
    // dataplane is in an unknown state until a restart.
    const second = { ...earlierClaim(reprograms[0]!.now, sim.clock.now()), nodeName: "earlier-still", nodeId: "d".repeat(32), publicIp: "192.0.2.201" };
    sim.hub.nodes.get("b")!.delegate.notifyMessage(encodeRecord(second), "a");
    expect(await sim.runUntil(() => reprograms.length === 2, 30_000)).toBe(true);
    reprograms[1]!.done();
    await flush();
    expect(ready.readiness()).toEqual({ ready: false, reason: "renumber failed: Cannot add route: boom" });
  });
});
