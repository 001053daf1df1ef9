/**
 * A replayed push-pull must not bring a dead node's lease back. X's join push-pull (a
 * restart with its lease) is captured; X dies, its lease expires and is swept, Y takes
 * X's subnet; then the captured push-pull is replayed to its receiver from X's address.
 * Without anti-replay that node merged X's record and X's member entry (alive), and gave
 * Y's subnet back to X's old address.
 * Real gossip layer on MemNetwork with a FakeClock.
 */
import { expect, test } from "bun:test";
import { parseNetConf } from "../../src/net-conf.ts";
import { parseKeyFile } from "../../src/gossip/keyring.ts";
import { LeaseSim } from "../../sim/lease-sim.ts";

const keyring = parseKeyFile(Buffer.alloc(32, 5).toString("base64"));
// Exactly three subnets: once X's lease is gone, the only free one is X's.
const net = parseNetConf({ Network: "10.244.0.0/16", SubnetLen: 24, SubnetMin: "10.244.1.0", SubnetMax: "10.244.3.0", Backend: { Type: "vxlan" } });
const TTL = 60_000;

test("an old push-pull from a dead node, replayed after its lease was swept and its subnet re-leased, changes nothing and gets no reply", async () => {
  const sim = new LeaseSim({ seed: 3, net, keyring, settleMs: 1000, extra: { leaseTtlMs: TTL, sweepMs: 5_000 } });
  const requests: { from: string; to: string; req: Uint8Array }[] = [];
  const stream = sim.network.stream.bind(sim.network);
  sim.network.stream = (from, to, req, signal, maxBytes) => {
    requests.push({ from, to, req: req.slice() });
    return stream(from, to, req, signal, maxBytes);
  };
  const [a, b, x] = ["a", "b", "x"].map((name, i) => LeaseSim.addr(i + 1));
  sim.add("a", a!, []);
  sim.add("b", b!, [a!]);
  sim.add("x", x!, [a!]);
  for (const n of ["a", "b", "x"]) sim.start(n);
  expect(await sim.runUntil(() => sim.upNodes().every((n) => n.lease) && sim.views() === 1, 60_000)).toBe(true);
  const xSubnet = sim.nodes.get("x")!.lease!.subnet;
  // X restarts with its persisted lease: its join is a full push-pull carrying its member
  // entry and its lease record. That request is what the attacker keeps.
  await sim.kill("x");
  requests.length = 0;
  sim.add("x", x!, [a!]);
  sim.start("x");
  expect(await sim.runUntil(() => sim.views() === 1 && sim.upNodes().length === 3, 60_000)).toBe(true);
  const captured = requests.find((r) => r.from === x && r.to === a)!;
  expect(captured.req.length).toBeGreaterThan(150);

  await sim.kill("x");
  const swept = () => ["a", "b"].every((n) => sim.nodes.get(n)!.cluster.table().get("x") === undefined);
  expect(await sim.runUntil(swept, 4 * TTL, 200)).toBe(true);
  sim.add("y", LeaseSim.addr(4), [a!]);
  sim.start("y");
  const holder = (n: string) => sim.nodes.get(n)!.cluster.leases().find((l) => l.subnet === xSubnet)?.nodeName;
  expect(await sim.runUntil(() => ["a", "b", "y"].every((n) => holder(n) === "y"), 60_000)).toBe(true);

  const replay = sim.network.stream(x!, a!, captured.req, new AbortController().signal, 1 << 24);
  let outcome = "pending";
  replay.then(() => void (outcome = "answered"), (e: Error) => void (outcome = e.message));
  await sim.run(10_000);
  expect(outcome).toContain("closed by peer");
  for (const n of ["a", "b", "y"]) {
    const c = sim.nodes.get(n)!.cluster;
    expect({ n, holder: holder(n), x: c.table().get("x"), xMember: c.members().find((m) => m.name === "x")?.state }).toEqual({ n, holder: "y", x: undefined, xMember: undefined });
  }
  expect(sim.nodes.get("a")!.cluster.gossipMetrics().staleRejected).toBe(1);
  await sim.stopAll();
}, 120_000);
