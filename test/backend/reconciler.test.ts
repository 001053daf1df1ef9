import { describe, expect, test } from "bun:test";
import { FakeClock } from "../../sim/fake-clock.ts";
import { RecordingNetlink } from "../fakes/netlink.ts";
import { createHostGwBackend } from "../../src/backend/host-gw.ts";
import { createVxlanBackend } from "../../src/backend/vxlan.ts";
import { createReconciler } from "../../src/backend/reconciler.ts";
import type { PeerLease } from "../../src/backend/backend.ts";
import { silentLogger } from "../../src/log.ts";

function setup(opts: { vxlan?: boolean; events?: boolean } = {}) {
  const clock = new FakeClock();
  const nl = new RecordingNetlink();
  nl.outside((n) => {
    n.addLinkRaw({ name: "eth0" });
    n.addAddress({ dev: "eth0", cidr: "192.0.2.11/24" });
  });
  const deps = { nl, publicIp: "192.0.2.11", underlayIface: "eth0", underlayMtu: 1500, ownSubnet: "10.244.1.0/24", network: "10.244.0.0/16", vtepMac: "0a:00:00:00:00:01", logger: silentLogger };
  const backend = opts.vxlan ? createVxlanBackend({ type: "vxlan", vni: 1, port: 8472, directRouting: false }, deps) : createHostGwBackend(deps);
  let peers: PeerLease[] = [];
  const listeners = new Set<() => void>();
  const setPeers = (p: PeerLease[]) => {
    peers = p;
    for (const l of listeners) l();
  };
  const rec = createReconciler({
    backend,
    peers: () => peers,
    clock,
    logger: silentLogger,
    onLeasesChange: (fn) => (listeners.add(fn), () => listeners.delete(fn)),
    ...(opts.events === false ? {} : { watchEvents: (fn: () => void) => nl.watch(fn) }),
    periodMs: 10_000,
    debounceMs: 100,
    retryMs: 1_000,
  });
  return { clock, nl, backend, rec, setPeers, listeners };
}

const b = { nodeName: "b", subnet: "10.244.2.0/24", publicIp: "192.0.2.12", vtepMac: "0a:00:00:00:00:02" };
const c = { nodeName: "c", subnet: "10.244.3.0/24", publicIp: "192.0.2.13", vtepMac: "0a:00:00:00:00:03" };

describe("reconciler", () => {
  test("start removes stale weft routes and programs current leases", () => {
    const { nl, rec, setPeers } = setup();
    nl.outside((n) => n.replaceRoute({ dst: "10.244.7.0/24", gateway: "192.0.2.7", dev: "eth0" }));
    setPeers([b]);
    const r = rec.start();
    expect(r.changes).toBe(2);
    expect(nl.takeOps()).toEqual(["replace route 10.244.2.0/24 via 192.0.2.12 dev eth0 proto 87", "delete route 10.244.7.0/24 via 192.0.2.7 dev eth0 proto 87"]);
    expect(rec.metrics()).toMatchObject({ runs: 1, errors: 0, changes: 2 });
    rec.stop();
  });

  test("a lease change is applied after the debounce, bursts coalesce into one run", () => {
    const { clock, nl, rec, setPeers } = setup();
    rec.start();
    setPeers([b]);
    setPeers([b, c]);
    clock.advance(99);
    expect(rec.metrics().runs).toBe(1);
    clock.advance(1);
    expect(rec.metrics().runs).toBe(2);
    expect(nl.takeOps()).toEqual(["replace route 10.244.2.0/24 via 192.0.2.12 dev eth0 proto 87", "replace route 10.244.3.0/24 via 192.0.2.13 dev eth0 proto 87"]);
    // events the run itself caused (synchronous in the fake) do not start another run
    clock.advance(5_000);
    expect(rec.metrics()).toMatchObject({ runs: 2, changes: 2 });
    rec.stop();
  });

  test("an outsider deleting a route is repaired after the netlink event", () => {
    const { clock, nl, rec, setPeers } = setup();
    setPeers([b, c]);
    rec.start();
    clock.advance(1_000);
    nl.takeOps();
    nl.outside((n) => n.deleteRoute({ dst: "10.244.3.0/24" }));
    clock.advance(100);
    expect(nl.takeOps()).toEqual(["replace route 10.244.3.0/24 via 192.0.2.13 dev eth0 proto 87"]);
    rec.stop();
  });

  test("without events, the periodic pass repairs damage within periodMs", () => {
    const { clock, nl, rec, setPeers } = setup({ vxlan: true, events: false });
    setPeers([b]);
    rec.start();
    nl.takeOps();
    nl.outside((n) => n.deleteLink("weft.1"));
    clock.advance(9_999);
    expect(nl.takeOps()).toEqual([]);
    clock.advance(1);
    expect(nl.takeOps()).toEqual([
      "add link weft.1 type vxlan id 1 local 192.0.2.11 dstport 8472 nolearning mtu 1450 address 0a:00:00:00:00:01 dev-index 2",
      "add address 10.244.1.0/32 dev weft.1",
      "replace neigh 10.244.2.0 lladdr 0a:00:00:00:00:02 dev weft.1 nud permanent",
      "replace fdb 0a:00:00:00:00:02 dst 192.0.2.12 dev weft.1",
      "replace route 10.244.2.0/24 via 10.244.2.0 dev weft.1 onlink proto 87",
    ]);
    rec.stop();
  });

  test("a run with errors is counted and retried after retryMs", () => {
    const { clock, nl, rec, setPeers } = setup();
    setPeers([b]);
    nl.failOn(/replace route 10\.244\.2\.0/, "Operation not permitted");
    const r = rec.start();
    expect(r.errors).toHaveLength(1);
    expect(rec.metrics()).toMatchObject({ runs: 1, errors: 1, changes: 0, lastErrors: ["replace route 10.244.2.0/24 via 192.0.2.12 dev eth0 proto 87: Operation not permitted"] });
    clock.advance(1_000);
    expect(rec.metrics()).toMatchObject({ runs: 2, errors: 1, changes: 1, lastErrors: [] });
    rec.stop();
  });

  test("lasting errors back off (1, 2, 4, 8, 10, 10 s) and the backoff resets after a clean run", () => {
    const clock = new FakeClock();
    let failing = true;
    const runsAt: number[] = [];
    const t0 = clock.now();
    const rec = createReconciler({
      backend: {
        apply() {
          runsAt.push(clock.now() - t0);
          return failing ? { changes: 0, errors: ["replace route 10.244.2.0/24: Operation not permitted"], problems: [] } : { changes: 0, errors: [], problems: [] };
        },
      },
      peers: () => [],
      clock,
      logger: silentLogger,
    });
    rec.start();
    clock.advance(35_000);
    expect(runsAt).toEqual([0, 1_000, 3_000, 7_000, 15_000, 25_000, 35_000]);
    failing = false;
    clock.advance(10_000); // clean run at 45 s
    failing = true;
    clock.advance(10_000); // fails at 55 s → next retry after 1 s again
    clock.advance(1_000);
    expect(runsAt.slice(7)).toEqual([45_000, 55_000, 56_000]);
    rec.stop();
  });

  test("kernel events: neighbour churn is left to the periodic pass; event runs are spaced", () => {
    const clock = new FakeClock();
    let runs = 0;
    let emit: (e: unknown) => void = () => {};
    const rec = createReconciler({
      backend: { apply: () => (runs++, { changes: 0, errors: [], problems: [] }) },
      peers: () => [],
      clock,
      logger: silentLogger,
      watchEvents: (fn) => void (emit = fn),
    });
    rec.start();
    emit({ kind: "neigh", action: "new" });
    clock.advance(1_000);
    expect(runs).toBe(1);
    emit({ kind: "route", action: "del" });
    clock.advance(100);
    expect(runs).toBe(2);
    emit({ kind: "neigh", action: "del" }); // right after the last run: waits until 500 ms after it
    clock.advance(499);
    expect(runs).toBe(2);
    clock.advance(1);
    expect(runs).toBe(3);
    rec.stop();
  });

  test("a backend that throws counts as an error and does not stop the loop", () => {
    const clock = new FakeClock();
    let calls = 0;
    const rec = createReconciler({
      backend: {
        apply() {
          calls++;
          if (calls === 1) throw new Error("add link weft.1: Operation not permitted");
          return { changes: 0, errors: [], problems: [] };
        },
      },
      peers: () => [],
      clock,
      logger: silentLogger,
    });
    expect(rec.start().errors).toEqual(["add link weft.1: Operation not permitted"]);
    clock.advance(1_000);
    expect(rec.metrics()).toMatchObject({ runs: 2, errors: 1 });
    rec.stop();
  });

  test("leases, not liveness, decide: the same leases keep their routes across periodic runs", () => {
    const { clock, nl, rec, setPeers } = setup();
    setPeers([b, c]);
    rec.start();
    nl.takeOps();
    clock.advance(60_000);
    expect(rec.metrics().runs).toBe(7);
    expect(nl.takeOps()).toEqual([]);
    setPeers([b]); // c's lease expired: the lease layer no longer hands it in
    clock.advance(100);
    expect(nl.takeOps()).toEqual(["delete route 10.244.3.0/24 via 192.0.2.13 dev eth0 proto 87"]);
    rec.stop();
  });

  test("stop cancels timers and unsubscribes; problems and duration are exposed", () => {
    const { clock, rec, setPeers, listeners } = setup();
    setPeers([{ nodeName: "far", subnet: "10.244.9.0/24", publicIp: "198.51.100.9" }]);
    rec.start();
    expect(rec.metrics().lastProblems).toHaveLength(1);
    expect(rec.metrics().lastDurationSeconds).toBeGreaterThan(0);
    rec.stop();
    expect(listeners.size).toBe(0);
    expect(clock.pending).toBe(0);
    clock.advance(60_000);
    expect(rec.metrics().runs).toBe(1);
  });

  test("rejects bad options by name", () => {
    expect(() => createReconciler({ backend: { apply: () => ({ changes: 0, errors: [], problems: [] }) }, peers: () => [], clock: new FakeClock(), logger: silentLogger, periodMs: -1 })).toThrow("periodMs must be a non-negative number");
  });
});
