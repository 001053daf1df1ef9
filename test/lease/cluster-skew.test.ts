/**
 * createCluster sets both layers' time bounds from one value, clockSkewMs: gossip refuses
 * sealed messages sent more than clockSkewMs away from the receiver's clock, and the lease
 * layer refuses records dated more than twice that ahead. Real gossip on the simulated
 * network; a node gets its own clock by an offset on the simulation's FakeClock.
 */
import { describe, expect, test } from "bun:test";
import type { Clock } from "../../src/clock.ts";
import { parseNetConf } from "../../src/net-conf.ts";
import { createGossip, lanConfig } from "../../src/gossip/index.ts";
import { parseKeyFile } from "../../src/gossip/keyring.ts";
import { encodeRecord, encodeState } from "../../src/lease/record-codec.ts";
import type { Lease } from "../../src/lease/types.ts";
import { silentLogger } from "../../src/log.ts";
import { LeaseSim } from "../../sim/lease-sim.ts";

const net = parseNetConf({ Network: "10.244.0.0/16", Backend: { Type: "vxlan" } });
const keyring = parseKeyFile(Buffer.alloc(32, 9).toString("base64"));

const ahead = (sim: LeaseSim, ms: number): Clock => ({ now: () => sim.clock.now() + ms, after: (d, fn) => sim.clock.after(d, fn) });

describe("one clock-skew value for both layers", () => {
  test.each([
    [5_000, false],
    [10_000, true],
  ])("clockSkewMs %d: a node whose clock runs 7 s ahead joins: %p (gossip's bound is clockSkewMs)", async (clockSkewMs, joins) => {
    const sim = new LeaseSim({ seed: 61, net, keyring, settleMs: 1000, clockSkewMs });
    const a = sim.add("a", LeaseSim.addr(1), []);
    void sim.start("a");
    expect(await sim.runUntil(() => !!a.lease, 10_000)).toBe(true);
    sim.o.extra = { clock: ahead(sim, 7_000) };
    const b = sim.add("b", LeaseSim.addr(2), [LeaseSim.addr(1)]);
    void sim.start("b");
    await sim.run(15_000);
    expect({ lease: !!b.lease, member: a.cluster.members().some((m) => m.name === "b" && m.state === "alive") }).toEqual({ lease: joins, member: joins });
    expect(a.cluster.gossipMetrics().staleRejected > 0).toBe(!joins);
    await sim.stopAll();
  });

  test("clockSkewMs 5 s: a record dated 9 s ahead is kept, one dated 11 s ahead is refused (the lease layer's bound is twice clockSkewMs)", async () => {
    const sim = new LeaseSim({ seed: 62, net, keyring, settleMs: 1000, clockSkewMs: 5_000 });
    const a = sim.add("a", LeaseSim.addr(1), []);
    void sim.start("a");
    expect(await sim.runUntil(() => !!a.lease, 10_000)).toBe(true);
    // A key holder on the simulation's own clock: its packets are current, only the records' dates are not.
    const x = createGossip({
      name: "x",
      advertiseAddr: LeaseSim.addr(9),
      transport: sim.network.transport(LeaseSim.addr(9)),
      config: lanConfig(),
      seed: 7,
      deps: { clock: sim.clock, logger: silentLogger, delegate: { notifyMessage() {}, localState: () => encodeState([]), mergeRemoteState() {} }, keyring, clusterName: "weft" },
    });
    let answered = -1;
    void x.join([LeaseSim.addr(1)]).then((n) => (answered = n));
    expect(await sim.runUntil(() => answered === 1 && a.cluster.members().some((m) => m.name === "x"), 10_000)).toBe(true);
    const now = sim.clock.now();
    const record = (nodeName: string, claimedAt: number, subnet: string): Lease => ({
      nodeName,
      nodeId: "f".repeat(32),
      generation: 1,
      version: 0,
      subnet,
      publicIp: "192.0.2.250",
      backend: { type: "vxlan", vtepMac: "02:00:00:00:00:01" },
      claimedAt,
      renewedAt: claimedAt,
    });
    x.broadcast("in-bound", encodeRecord(record("in-bound", Math.floor(now) + 9_000, "10.244.200.0/24")));
    x.broadcast("beyond", encodeRecord(record("beyond", Math.floor(now) + 11_000, "10.244.201.0/24")));
    await sim.run(2_000);
    expect({ inBound: !!a.cluster.table().get("in-bound"), beyond: !!a.cluster.table().get("beyond") }).toEqual({ inBound: true, beyond: false });
    expect(a.cluster.metrics().rejectedRecords).toBe(1);
    void x.shutdown();
    await sim.stopAll();
  });
});
