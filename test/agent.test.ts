/**
 * The agent end to end without root: real lease layer and gossip on a MemNetwork driven
 * by a FakeClock, real backends on a RecordingNetlink, every other host effect recorded
 * as text (test/fakes/agent-host.ts). Peers are lease nodes of a LeaseSim on the same
 * network. Covers start-up order, readiness, renumbering (and its back-off), a node name
 * taken over by another machine, a full range, and stop.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { Agent } from "../src/agent.ts";
import { parseNetConf, type NetConf } from "../src/net-conf.ts";
import { type AgentFlags } from "../src/agent-flags.ts";
import { type Config } from "../src/config.ts";
import { createGossip, lanConfig, type GossipNode } from "../src/gossip/index.ts";
import { parseKeyFile } from "../src/gossip/keyring.ts";
import { seededRandom } from "../src/gossip/prng.ts";
import { encodeRecord, encodeState } from "../src/lease/record-codec.ts";
import type { Lease } from "../src/lease/types.ts";
import { silentLogger } from "../src/log.ts";
import { LeaseSim, type LeaseSimNode } from "../sim/lease-sim.ts";
import { FakeAgentHost, recordingNotifier, UNDERLAY_IP, UNDERLAY_IPV6 } from "./fakes/agent-host.ts";

const keyring = parseKeyFile(Buffer.alloc(32, 3).toString("base64"));
const net16 = parseNetConf({ Network: "10.244.0.0/16", Backend: { Type: "vxlan" } });
/** Exactly two subnets: 10.244.1.0/24 and 10.244.2.0/24. */
const net2 = parseNetConf({ Network: "10.244.0.0/16", SubnetMin: "10.244.1.0", SubnetMax: "10.244.2.0", Backend: { Type: "vxlan" } });

const flags = (over: Partial<AgentFlags> = {}): AgentFlags => ({
  netConfPath: "/etc/weft/net-conf.json",
  nodeName: "me",
  gossipPort: 7946,
  join: [{ host: "192.0.2.11", port: 7946 }],
  insecure: false,
  gossipLegacyWire: "off",
  stateDir: "/var/lib/weft",
  subnetFile: "/run/flannel/subnet.env",
  apiListen: { host: "127.0.0.1", port: 7947 },
  bridge: "cni0",
  ipMasq: true,
  logLevel: "info",
  logFormat: "text",
  releaseOnStop: false,
  ...over,
});

interface World {
  sim: LeaseSim;
  host: FakeAgentHost;
  agent: Agent;
  /** What the agent told systemd, in order. */
  systemd: string[];
  peer: LeaseSimNode;
  started: { done: boolean; error?: Error };
}

/** Drives the fake clock until `p` settles (at most `maxMs` of it); returns its value. */
async function drive<T>(sim: LeaseSim, p: Promise<T>, maxMs = 30_000): Promise<T> {
  let done = false;
  const q = p.finally(() => void (done = true));
  q.catch(() => {});
  if (!(await sim.runUntil(() => done, maxMs))) throw new Error(`not settled within ${maxMs} fake ms`);
  return q;
}

const worlds: World[] = [];
afterEach(async () => {
  for (const w of worlds.splice(0)) {
    await drive(w.sim, w.agent.stop());
    await drive(w.sim, w.sim.stopAll());
  }
});

/**
 * A peer "p1" at 192.0.2.11 (or `peerAddr`) holds a lease; then the agent "me" (vxlan,
 * 192.0.2.10, on an underlay of the families in `underlay`) starts, joining it.
 */
async function world(net: NetConf, o: { seed?: number; flags?: Partial<AgentFlags>; underlay?: { ipv4?: boolean; ipv6?: boolean }; peerAddr?: string } = {}): Promise<World> {
  const sim = new LeaseSim({ seed: o.seed ?? 1, net, keyring, settleMs: 1000 });
  const peer = sim.add("p1", o.peerAddr ?? "192.0.2.11:7946", []);
  void sim.start("p1");
  expect(await sim.runUntil(() => !!peer.lease, 10_000)).toBe(true);
  const host = new FakeAgentHost(sim.network, o.underlay);
  const systemd: string[] = [];
  const agent = new Agent({
    config: { agent: flags(o.flags), net } satisfies Config,
    keyring,
    logger: silentLogger,
    clock: sim.clock,
    notifier: recordingNotifier(systemd),
    host,
    random: seededRandom(o.seed ?? 1),
  });
  const started: World["started"] = { done: false };
  agent.start().then(
    () => void (started.done = true),
    (e) => Object.assign(started, { done: true, error: e as Error }),
  );
  const w = { sim, host, agent, systemd, peer, started };
  worlds.push(w);
  return w;
}

/** What programming the dataplane for `subnet` does on the host, in order (vxlan, ip-masq on). */
const dataplaneFor = (subnet: string): string[] => [
  `backend vxlan for ${subnet}`,
  "sysctl net.ipv6.conf.weft/1.accept_ra=0",
  `bridge cni0 for ${subnet}`,
  `ip-masq 10.244.0.0/16 from ${subnet}`,
  `write /run/flannel/subnet.env subnet ${subnet} mtu 1450`,
];

const readiness = (w: World) => w.host.source!.readiness();
const ownSubnet = (w: World) => w.host.source!.status().subnet;

describe("agent start-up", () => {
  test("runs in order: underlay, API, gossip, kernel event watch, lease, ip_forward, backend device, first reconcile (peers, bridge, ip-masq), subnet.env, READY", async () => {
    const w = await world(net16);
    expect(await w.sim.runUntil(() => w.started.done, 20_000)).toBe(true);
    expect(w.started.error).toBeUndefined();
    const subnet = ownSubnet(w)!;
    const peerSubnet = w.peer.lease!.subnet!;
    expect(w.host.take()).toEqual([
      "open netlink",
      `underlay eth0 ${UNDERLAY_IP} mtu 1500`,
      "serve api 127.0.0.1:7947",
      `bind gossip ${UNDERLAY_IP}:7946`,
      "state store /var/lib/weft",
      "watch netlink events",
      "sysctl net.ipv4.ip_forward=1",
      ...dataplaneFor(subnet),
    ]);
    expect(w.systemd).toEqual(["STATUS=joining the cluster", "STATUS=not ready: programming the dataplane", "READY=1", `STATUS=ready: ${subnet} via vxlan`]);
    expect(readiness(w)).toEqual({ ready: true });
    const ops = w.host.nl.takeOps().join("\n");
    expect(ops).toContain(`add link weft.1 type vxlan id 1 local ${UNDERLAY_IP} dstport 8472`);
    expect(ops).toContain(`route ${peerSubnet} via ${peerSubnet.replace("/24", "")} dev weft.1 onlink`);
    expect(ops).toContain("add link cni0 type bridge");
  });
});

/** A key holder on the simulated network that broadcasts lease records it makes up. */
async function keyHolder(w: World): Promise<{ send(l: Lease): void; gossip: GossipNode }> {
  const addr = "192.0.2.99:7946";
  const gossip = createGossip({
    name: "x",
    advertiseAddr: addr,
    transport: w.sim.network.transport(addr),
    config: lanConfig(),
    seed: 5,
    deps: { clock: w.sim.clock, logger: silentLogger, delegate: { notifyMessage() {}, localState: () => encodeState([]), mergeRemoteState() {} }, keyring, clusterName: "weft" },
  });
  expect(await drive(w.sim, gossip.join(["192.0.2.11:7946"]))).toBe(1);
  return { gossip, send: (l) => gossip.broadcast(l.nodeName, encodeRecord(l)) };
}

/** A record of node "early" for `subnet`, claimed a millisecond before `than`: it wins the subnet. */
const earlier = (subnet: string, than: Lease, at: number, over: Partial<Lease> = {}): Lease => ({
  nodeName: "early",
  nodeId: "e".repeat(32),
  generation: 1,
  version: 0,
  subnet,
  publicIp: "192.0.2.98",
  backend: { type: "vxlan", vtepMac: "02:00:00:00:00:98" },
  claimedAt: than.claimedAt - 1,
  renewedAt: Math.floor(at),
  ...over,
});

const started = async (w: World) => {
  expect(await w.sim.runUntil(() => w.started.done, 20_000)).toBe(true);
  expect(w.started.error).toBeUndefined();
  w.host.take();
  w.host.nl.takeOps();
};

describe("agent readiness", () => {
  test("not ready while the lease is claimed; a renumber makes it not ready until the dataplane serves the new subnet, then subnet.env is rewritten", async () => {
    const w = await world(net16, { seed: 2 });
    expect(readiness(w)).toEqual({ ready: false, reason: "waiting for a subnet lease to be committed" });
    await started(w);
    const old = ownSubnet(w)!;
    const oldLease = w.host.store.lease!;
    const x = await keyHolder(w);
    x.send(earlier(old, oldLease, w.sim.clock.now()));
    expect(await w.sim.runUntil(() => readiness(w).ready === false, 5_000)).toBe(true);
    expect(readiness(w)).toEqual({ ready: false, reason: `renumbering: early holds an earlier claim on ${old}` });
    expect(await w.sim.runUntil(() => readiness(w).ready === true, 30_000)).toBe(true);
    const now = ownSubnet(w)!;
    expect(now).not.toBe(old);
    expect(w.systemd.slice(-3)).toEqual([`STATUS=not ready: renumbering: early holds an earlier claim on ${old}`, `STATUS=not ready: renumbering from ${old} to ${now}`, `STATUS=ready: ${now} via vxlan`]);
    expect(w.host.take()).toEqual(dataplaneFor(now));
    const gw = (s: string) => s.replace(/\.0\/24$/, ".1/24");
    const ops = w.host.nl.takeOps();
    expect(ops).toContain(`delete address ${gw(old)} dev cni0`);
    expect(ops).toContain(`add address ${gw(now)} dev cni0`);
    void x.gossip.shutdown();
  });

  test("a renumber that cannot find a free subnet backs off, not ready with the lease layer's reason; once the better claim is gone the node is ready on its old subnet, nothing reprogrammed", async () => {
    const w = await world(net2, { seed: 3 });
    await started(w);
    const own = ownSubnet(w)!;
    const lease = w.host.store.lease!;
    const x = await keyHolder(w);
    const early = earlier(own, lease, w.sim.clock.now());
    x.send(early);
    expect(await w.sim.runUntil(() => /^cannot renumber/.test(readiness(w).reason ?? ""), 20_000)).toBe(true);
    expect(readiness(w).reason).toMatch(
      new RegExp(`^cannot renumber ${own.replaceAll(".", "\\.")} \\(early holds an earlier claim\\): subnet exhausted: all 2 subnets of 10\\.244\\.0\\.0/16 between 10\\.244\\.1\\.0 and 10\\.244\\.2\\.0 are leased; next attempt in \\d+ s$`),
    );
    // The tombstone of the better claim: the back-off timer finds the subnet ours again.
    x.send({ ...early, version: 1, renewedAt: Math.floor(w.sim.clock.now()), deleted: true });
    expect(await w.sim.runUntil(() => readiness(w).ready === true, 30_000)).toBe(true);
    expect(ownSubnet(w)).toBe(own);
    expect(w.systemd.at(-1)).toBe(`STATUS=ready: ${own} via vxlan`);
    expect(w.host.take()).toEqual([]);
    expect(w.host.nl.takeOps()).toEqual([]);
    void x.gossip.shutdown();
  });
});

describe("agent displaced", () => {
  test("another machine starting with the same node name takes it over: the agent says why, stops programming, and leaves later leases alone", async () => {
    const w = await world(net16, { seed: 4 });
    await started(w);
    const own = ownSubnet(w)!;
    const twin = w.sim.add("me", "192.0.2.12:7946", ["192.0.2.11:7946"]);
    void w.sim.start("me");
    expect(await w.sim.runUntil(() => !!twin.lease, 20_000)).toBe(true);
    expect(await w.sim.runUntil(() => readiness(w).ready === false, 5_000)).toBe(true);
    expect(readiness(w)).toEqual({ ready: false, reason: "node name me was taken over by another machine; this agent no longer owns its subnet (fix the duplicate node name, then restart)" });
    expect(twin.lease!.subnet).toBe(own); // the newer start re-learned the name's lease
    expect(w.host.take()).toEqual([]);
    w.host.nl.takeOps();
    // A new peer's lease arrives: nothing is programmed for it any more.
    const p3 = w.sim.add("p3", "192.0.2.13:7946", ["192.0.2.11:7946"]);
    void w.sim.start("p3");
    expect(await w.sim.runUntil(() => !!p3.lease, 20_000)).toBe(true);
    await w.sim.run(15_000);
    expect(w.host.nl.takeOps()).toEqual([]);
    expect(w.host.take()).toEqual([]);
    expect(w.agent.healthy()).toBe(true);
    expect(w.systemd.at(-1)).toBe("STATUS=not ready: node name me was taken over by another machine; this agent no longer owns its subnet (fix the duplicate node name, then restart)");
  });
});

describe("agent with a full range", () => {
  test("stays up, not ready with the reason, programs nothing; commits and gets ready once a lease is released", async () => {
    const net1 = parseNetConf({ Network: "10.244.0.0/16", SubnetMin: "10.244.1.0", SubnetMax: "10.244.1.0", Backend: { Type: "vxlan" } });
    const w = await world(net1, { seed: 5 });
    expect(await w.sim.runUntil(() => readiness(w).reason?.startsWith("subnet exhausted") === true, 20_000)).toBe(true);
    expect(readiness(w).reason).toBe("subnet exhausted: all 1 subnets of 10.244.0.0/16 between 10.244.1.0 and 10.244.1.0 are leased");
    await w.sim.run(30_000);
    expect(w.started.done).toBe(false);
    expect(w.agent.healthy()).toBe(true);
    expect(w.host.log.filter((l) => /^(sysctl|backend|write)/.test(l))).toEqual([]);
    expect(w.host.nl.takeOps()).toEqual([]);
    // p1 decommissions: its tombstone frees the subnet; the next attempt (every 60 s) takes it.
    await drive(w.sim, w.peer.cluster.stop({ leave: true, release: true }));
    w.peer.up = false;
    expect(await w.sim.runUntil(() => w.started.done, 120_000)).toBe(true);
    expect(w.started.error).toBeUndefined();
    expect(readiness(w)).toEqual({ ready: true });
    expect(ownSubnet(w)).toBe("10.244.1.0/24");
    expect(w.host.log.at(-1)).toBe("write /run/flannel/subnet.env subnet 10.244.1.0/24 mtu 1450");
  });
});

describe("agent stop", () => {
  test("says STOPPING=1, leaves the cluster, closes the event watch, the API and netlink, and leaves the dataplane in place", async () => {
    const w = await world(net16, { seed: 6 });
    await started(w);
    const kernel = w.host.nl.dump();
    await drive(w.sim, w.agent.stop());
    expect(w.systemd.at(-1)).toBe("STOPPING=1");
    expect(w.host.take()).toEqual(["unwatch netlink events", "stop api"]);
    expect(w.host.nl.closed).toBe(true);
    expect(w.host.nl.takeOps()).toEqual([]);
    expect(w.host.nl.dump()).toEqual(kernel);
    expect(await w.sim.runUntil(() => w.peer.cluster.members().find((m) => m.name === "me")?.state === "left", 5_000)).toBe(true);
    expect(w.agent.healthy()).toBe(false);
  });
});

describe("agent restart with a persisted lease", () => {
  test("ready at once on the persisted subnet; the first full reconcile (which removes stale weft routes) waits for the join", async () => {
    const w = await world(net16, { seed: 7 });
    await started(w);
    const own = ownSubnet(w)!;
    await drive(w.sim, w.agent.stop());
    // A route the previous run left for a lease that no longer exists.
    w.host.nl.addRouteRaw({ dst: "10.244.250.0/24", gateway: "10.244.250.0", dev: "weft.1", onlink: true, protocol: 87 });
    w.host.take();
    const again = new Agent({ config: { agent: flags(), net: net16 }, keyring, logger: silentLogger, clock: w.sim.clock, host: w.host, random: seededRandom(8) });
    w.agent = again; // stopped by afterEach
    let ready = false;
    void again.start().then(() => void (ready = true));
    // No simulated time passes: the persisted lease needs no claim, the join runs in the background.
    for (let i = 0; i < 50 && !ready; i++) await new Promise((r) => setImmediate(r));
    expect(ready).toBe(true);
    expect(ownSubnet(w)).toBe(own);
    expect(readiness(w)).toEqual({ ready: true });
    expect(w.host.nl.dump()).toContain("route 10.244.250.0/24 via 10.244.250.0 dev weft.1 onlink proto 87");
    expect(await w.sim.runUntil(() => !w.host.nl.dump().join("\n").includes("10.244.250.0"), 10_000)).toBe(true);
  });
});

/** The peer's view of the agent "me": where its lease is routed (that address family) and where it gossips from. */
const peerSees = (w: World, field: "publicIp" | "publicIpv6" = "publicIp") => ({
  lease: w.peer.cluster.leases().find((l) => l.nodeName === "me")?.[field],
  member: w.peer.cluster.members().find((m) => m.name === "me")?.addr,
});

/** Replaces an underlay address as DHCP or an operator would (del, then add), and tells the agent's event watch. */
function readdressEth0(w: World, from: string, to: string | undefined, prefix = 24): void {
  w.host.nl.outside((nl) => {
    nl.deleteAddress({ dev: "eth0", cidr: `${from}/${prefix}` });
    if (to) nl.addAddress({ dev: "eth0", cidr: `${to}/${prefix}` });
  });
  w.host.kernelEvent({ kind: "addr", action: "del" });
}

describe("agent on a changing underlay", () => {
  test("a new underlay address: gossip re-binds there, the lease is re-announced with it, weft.1 is recreated with the new local address; the peer routes it there", async () => {
    const w = await world(net16, { seed: 11 });
    await started(w);
    const subnet = ownSubnet(w)!;
    readdressEth0(w, UNDERLAY_IP, "192.0.2.20");
    expect(await w.sim.runUntil(() => peerSees(w).lease === "192.0.2.20" && peerSees(w).member === "192.0.2.20:7946", 5_000)).toBe(true);
    expect(await w.sim.runUntil(() => readiness(w).ready, 5_000)).toBe(true);
    // weft.1 is recreated (new local address), so accept_ra is turned off on the new device.
    expect(w.host.take()).toEqual(["bind gossip 192.0.2.20:7946", `backend vxlan for ${subnet}`, "sysctl net.ipv6.conf.weft/1.accept_ra=0", `write /run/flannel/subnet.env subnet ${subnet} mtu 1450`]);
    const ops = w.host.nl.takeOps();
    expect(ops).toContain("delete link weft.1");
    expect(ops.find((o) => o.startsWith("add link weft.1"))).toContain("local 192.0.2.20 dstport 8472");
    expect(w.host.source!.status()).toMatchObject({ publicIp: "192.0.2.20", subnet });
    expect(w.host.store.lease).toMatchObject({ publicIp: "192.0.2.20", subnet });
    expect(w.systemd.slice(-2)).toEqual([`STATUS=not ready: underlay address moved from ${UNDERLAY_IP} to 192.0.2.20`, `STATUS=ready: ${subnet} via vxlan`]);
    // The peer's FDB entry for us (its dataplane) follows the lease: its peers() now name the new IP.
    expect(ownSubnet(w)).toBe(subnet);
  });

  test("the address gone with none in its place: not ready with the reason; the next address on the interface is taken", async () => {
    const w = await world(net16, { seed: 12 });
    await started(w);
    readdressEth0(w, UNDERLAY_IP, undefined);
    expect(await w.sim.runUntil(() => !readiness(w).ready, 2_000)).toBe(true);
    expect(readiness(w)).toEqual({ ready: false, reason: `underlay interface eth0 has no IPv4 address (${UNDERLAY_IP} was removed); waiting for one` });
    w.host.nl.outside((nl) => nl.addAddress({ dev: "eth0", cidr: "192.0.2.21/24" }));
    w.host.kernelEvent({ kind: "addr", action: "new" });
    expect(await w.sim.runUntil(() => readiness(w).ready && peerSees(w).lease === "192.0.2.21", 5_000)).toBe(true);
  });

  test("a change the event feed missed is found by the periodic pass", async () => {
    const w = await world(net16, { seed: 13 });
    await started(w);
    w.host.nl.outside((nl) => {
      nl.deleteAddress({ dev: "eth0", cidr: `${UNDERLAY_IP}/24` });
      nl.addAddress({ dev: "eth0", cidr: "192.0.2.22/24" });
    });
    await w.sim.run(2_000);
    expect(peerSees(w).lease).toBe(UNDERLAY_IP);
    expect(await w.sim.runUntil(() => peerSees(w).lease === "192.0.2.22", 12_000)).toBe(true);
  });

  test("--public-ip pinned and removed: not ready with the reason, nothing re-bound; ready again once it is back", async () => {
    const w = await world(net16, { seed: 14, flags: { publicIp: UNDERLAY_IP } });
    await started(w);
    readdressEth0(w, UNDERLAY_IP, "192.0.2.23");
    expect(await w.sim.runUntil(() => !readiness(w).ready, 2_000)).toBe(true);
    const reason = `--public-ip ${UNDERLAY_IP} is no longer on this node (underlay eth0); waiting for it to come back`;
    expect(readiness(w)).toEqual({ ready: false, reason });
    expect(w.systemd.at(-1)).toBe(`STATUS=not ready: ${reason}`);
    await w.sim.run(3_000);
    expect(w.host.take()).toEqual([]);
    expect(peerSees(w).lease).toBe(UNDERLAY_IP);
    w.host.nl.outside((nl) => nl.addAddress({ dev: "eth0", cidr: `${UNDERLAY_IP}/24` }));
    w.host.kernelEvent({ kind: "addr", action: "new" });
    expect(await w.sim.runUntil(() => readiness(w).ready, 2_000)).toBe(true);
    expect(w.host.take()).toEqual([]);
  });

  test("the interface down: not ready; up again: ready, and the reconciler runs", async () => {
    const w = await world(net16, { seed: 15 });
    await started(w);
    w.host.eth0.up = false;
    w.host.kernelEvent({ kind: "link", action: "new" });
    expect(await w.sim.runUntil(() => !readiness(w).ready, 2_000)).toBe(true);
    expect(readiness(w)).toEqual({ ready: false, reason: "underlay interface eth0 is down" });
    const runs = w.host.source!.metrics().reconcile.runs;
    w.host.eth0.up = true;
    w.host.kernelEvent({ kind: "link", action: "new" });
    expect(await w.sim.runUntil(() => readiness(w).ready, 2_000)).toBe(true);
    expect(await w.sim.runUntil(() => w.host.source!.metrics().reconcile.runs > runs, 2_000)).toBe(true);
  });

  test("the underlay MTU changes: weft.1 and subnet.env follow, status shows the new pod MTU", async () => {
    const w = await world(net16, { seed: 16 });
    await started(w);
    const subnet = ownSubnet(w)!;
    w.host.eth0.mtu = 9000;
    w.host.kernelEvent({ kind: "link", action: "new" });
    expect(await w.sim.runUntil(() => w.host.subnetEnv.get("/run/flannel/subnet.env")?.mtu === 8950, 2_000)).toBe(true);
    expect(await w.sim.runUntil(() => readiness(w).ready, 2_000)).toBe(true);
    expect(w.host.nl.dump()).toContain("link weft.1 vxlan mtu 8950 " + w.host.nl.getLink("weft.1")!.mac + " up");
    expect(w.host.source!.status().mtu).toBe(8950);
    expect(w.host.take()).toEqual([`backend vxlan for ${subnet}`, "sysctl net.ipv6.conf.weft/1.accept_ra=0", `write /run/flannel/subnet.env subnet ${subnet} mtu 8950`]);
  });

  test("with Backend.MTU set, an underlay MTU change changes nothing", async () => {
    const fixed = parseNetConf({ Network: "10.244.0.0/16", Backend: { Type: "vxlan", MTU: 1400 } });
    const w = await world(fixed, { seed: 17 });
    await started(w);
    w.host.eth0.mtu = 9000;
    w.host.kernelEvent({ kind: "link", action: "new" });
    await w.sim.run(2_000);
    expect(w.host.take()).toEqual([]);
    expect(w.host.source!.status().mtu).toBe(1400);
  });
});

describe("agent key reload", () => {
  const k2 = parseKeyFile(Buffer.alloc(32, 4).toString("base64"));
  const both = (first: typeof keyring, second: typeof keyring) => ({ primary: first.primary, keys: [first.primary, second.primary] });
  const stateOfMe = (w: World) => w.peer.cluster.members().find((m) => m.name === "me")?.state;

  test("a new keyring seals with its first key and opens with all: status and metrics show count and fingerprint; a peer holding only the old key stops hearing the agent until it seals with that key again", async () => {
    const w = await world(net16, { seed: 21 });
    await started(w);
    const { keyFingerprint } = await import("../src/gossip/keyring.ts");
    expect(w.host.source!.status().clusterKeys).toEqual({ count: 1, primary: keyFingerprint(keyring.primary) });
    // New key second: nothing changes on the wire.
    w.agent.setKeyring(both(keyring, k2));
    await w.sim.run(10_000);
    expect(stateOfMe(w)).toBe("alive");
    expect(w.host.source!.status().clusterKeys).toEqual({ count: 2, primary: keyFingerprint(keyring.primary) });
    // New key first: the peer (old key only) cannot open what the agent sends; the agent still opens the peer's.
    w.agent.setKeyring(both(k2, keyring));
    expect(w.host.source!.metrics().clusterKeys).toEqual({ count: 2, primary: keyFingerprint(k2.primary) });
    const failures = w.peer.cluster.gossipMetrics().decryptFailures;
    expect(await w.sim.runUntil(() => stateOfMe(w) === "dead", 30_000)).toBe(true);
    expect(w.peer.cluster.gossipMetrics().decryptFailures).toBeGreaterThan(failures);
    expect(w.agent.healthy()).toBe(true);
    // Back to the old key first: heard again.
    w.agent.setKeyring(both(keyring, k2));
    expect(await w.sim.runUntil(() => stateOfMe(w) === "alive", 30_000)).toBe(true);
  });

  test("--insecure cannot switch to a keyring by reload", async () => {
    const sim = new LeaseSim({ seed: 22, net: net16, keyring: null, settleMs: 1000 });
    const host = new FakeAgentHost(sim.network);
    const agent = new Agent({ config: { agent: flags({ join: [], insecure: true }), net: net16 }, keyring: null, logger: silentLogger, clock: sim.clock, host, random: seededRandom(22) });
    await drive(sim, agent.start());
    expect(() => agent.setKeyring(k2)).toThrow("set cluster key: the agent runs without encryption (--insecure); restart it with --key-file");
    expect(host.source!.status().clusterKeys).toBeNull();
    await drive(sim, agent.stop());
  });
});

describe("agent retiring nodes", () => {
  test("forget: refused for a live peer, for itself and an unknown name; once the peer is dead, its lease and its routes go", async () => {
    const w = await world(net16, { seed: 31 });
    await started(w);
    const peerSubnet = w.peer.lease!.subnet!;
    expect(w.agent.forget("p1")).toMatchObject({ ok: false, status: 409 });
    expect(w.agent.forget("me")).toMatchObject({ ok: false, status: 409 });
    expect(w.agent.forget("nobody")).toEqual({ ok: false, status: 404, error: "no lease for node nobody" });
    await w.sim.kill("p1");
    expect(await w.sim.runUntil(() => w.host.source!.nodes().find((n) => n.name === "p1")?.state === "dead", 30_000)).toBe(true);
    expect(w.host.nl.dump().some((l) => l.startsWith(`route ${peerSubnet}`))).toBe(true); // dead, but routed for the TTL
    expect(w.agent.forget("p1")).toEqual({ ok: true, node: "p1", subnet: peerSubnet });
    expect(await w.sim.runUntil(() => !w.host.nl.dump().some((l) => l.startsWith(`route ${peerSubnet}`)), 5_000)).toBe(true);
    expect(w.host.source!.nodes().map((n) => n.name)).toEqual(["me"]);
  });

  test("--release-on-stop: stop gives the lease back (the peer drops it at once) and removes subnet.env", async () => {
    const w = await world(net16, { seed: 32, flags: { releaseOnStop: true } });
    await started(w);
    const subnet = ownSubnet(w)!;
    expect(w.peer.cluster.leases().some((l) => l.nodeName === "me")).toBe(true);
    await drive(w.sim, w.agent.stop());
    expect(w.host.take()).toEqual(["unwatch netlink events", "remove /run/flannel/subnet.env", "stop api"]);
    expect(w.host.store.lease).toMatchObject({ subnet, deleted: true });
    expect(await w.sim.runUntil(() => !w.peer.cluster.leases().some((l) => l.nodeName === "me"), 2_000)).toBe(true);
  });

  test("without --release-on-stop the lease is kept on stop (the peer still routes it)", async () => {
    const w = await world(net16, { seed: 33 });
    await started(w);
    await drive(w.sim, w.agent.stop());
    expect(w.host.store.lease?.deleted).toBeUndefined();
    await w.sim.run(5_000);
    expect(w.peer.cluster.leases().some((l) => l.nodeName === "me")).toBe(true);
  });
});

describe("agent dataplane rebuilds", () => {
  test("traffic counters of a replaced backend are carried over, never going back", async () => {
    const w = await world(net16, { seed: 41 });
    // Each backend instance reports 5 forwarded packets and 7 bytes each way, as a new packet loop would count afresh.
    const make = w.host.createBackend;
    w.host.createBackend = (conf, deps) => Object.assign(make(conf, deps), {
      counters: () => ({ txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0, droppedNoRoute: 0, droppedInvalid: 0, droppedIo: 0, droppedUnknownSender: 0, droppedSpoofedSource: 1, droppedBadOffloadHeader: 0, packetsForwarded: 5, packetsDropped: 1, loops: 0, txSuperPackets: 0, rxSuperPackets: 0 }),
      stats: () => ({ impl: undefined, peers: [], rxBytesTotal: 7, txBytesTotal: 7 }),
    });
    await started(w);
    expect(w.host.source!.metrics().udp).toEqual({ packetsForwarded: 5, packetsDropped: 1, droppedSpoofedSource: 1, droppedBadOffloadHeader: 0 });
    w.host.eth0.mtu = 9000;
    w.host.kernelEvent({ kind: "link", action: "new" });
    expect(await w.sim.runUntil(() => w.host.subnetEnv.get("/run/flannel/subnet.env")?.mtu === 8950, 2_000)).toBe(true);
    expect(w.host.source!.metrics().udp).toEqual({ packetsForwarded: 10, packetsDropped: 2, droppedSpoofedSource: 2, droppedBadOffloadHeader: 0 });
    expect(w.host.source!.metrics().wireguard).toEqual({ peers: 0, rxBytes: 14, txBytes: 14 });
  });
});

describe("agent with IPv6 pod networks", () => {
  const dual = parseNetConf({ Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "fd00:10:244::/56", Backend: { Type: "vxlan" } });
  const v6only = parseNetConf({ EnableIPv4: false, EnableIPv6: true, IPv6Network: "fd00:10:244::/56", Backend: { Type: "vxlan" } });

  /** world() on an underlay with the given families, the peer at `peerAddr`; returns once the agent started. */
  async function world6(net: NetConf, underlay: { ipv4?: boolean; ipv6?: boolean }, peerAddr: string, over: Partial<AgentFlags> = {}) {
    const w = await world(net, { seed: 7, flags: { join: [], ...over }, underlay, peerAddr });
    expect(await w.sim.runUntil(() => w.started.done, 20_000)).toBe(true);
    expect(w.started.error).toBeUndefined();
    return w;
  }

  test("dual-stack on a dual-stack underlay: both forwarding sysctls, both families on cni0, in subnet.env, in ip-masq and in /v1/status; weft.1 and weft-v6.1", async () => {
    const w = await world6(dual, { ipv6: true }, "192.0.2.11:7946", { join: [{ host: "192.0.2.11", port: 7946 }] });
    const st = w.host.source!.status();
    const lease = { subnet: st.subnet!, ipv6Subnet: st.ipv6Subnet! };
    expect(st).toMatchObject({ publicIp: UNDERLAY_IP, publicIpv6: UNDERLAY_IPV6, network: "10.244.0.0/16", ipv6Network: "fd00:10:244::/56", mtu: 1430 });
    expect(lease.ipv6Subnet).toMatch(/^fd00:10:244:[0-9a-f]+::\/64$/);
    const log = w.host.take();
    expect(log).toContain(`underlay eth0 ${UNDERLAY_IP} ${UNDERLAY_IPV6} mtu 1500`);
    expect(log).toContain("sysctl net.ipv4.ip_forward=1");
    expect(log).toContain("sysctl net.ipv6.conf.all.forwarding=1");
    expect(log).toContain(`bridge cni0 for ${lease.subnet} + ${lease.ipv6Subnet}`);
    expect(log).toContain(`ip-masq 10.244.0.0/16 from ${lease.subnet}`);
    expect(log).toContain(`ip-masq fd00:10:244::/56 from ${lease.ipv6Subnet}`);
    expect(w.host.subnetEnv.get("/run/flannel/subnet.env")).toEqual({ network: "10.244.0.0/16", subnet: lease.subnet, ipv6Network: "fd00:10:244::/56", ipv6Subnet: lease.ipv6Subnet, mtu: 1430, ipMasq: true });
    expect(w.systemd.at(-1)).toBe(`STATUS=ready: ${lease.subnet} + ${lease.ipv6Subnet} via vxlan`);
    const addrs = w.host.nl.listAddresses("cni0").map((a) => a.cidr);
    expect(addrs).toEqual([lease.subnet.replace(".0/24", ".1/24"), lease.ipv6Subnet.replace("::/64", "::1/64")]);
    const ops = w.host.nl.takeOps().join("\n");
    expect(ops).toContain(`add link weft-v6.1 type vxlan id 1 local ${UNDERLAY_IPV6} dstport 8472`);
    // The peer (a dual-stack lease node with an IPv6 underlay address) is routed in both families.
    const peer = w.peer.lease!;
    expect(ops).toContain(`replace route ${peer.subnet} via ${peer.subnet!.replace("/24", "")} dev weft.1 onlink proto 87`);
    expect(ops).toContain(`replace route ${peer.ipv6Subnet} via ${peer.ipv6Subnet!.replace("/64", "")} dev weft-v6.1 onlink proto 87`);
    const nodes = w.host.source!.nodes();
    expect(nodes.find((n) => n.name === "me")).toMatchObject({ subnet: lease.subnet, ipv6Subnet: lease.ipv6Subnet, publicIp: UNDERLAY_IP, publicIpv6: UNDERLAY_IPV6 });
  });

  test("IPv6-only pods on an IPv6-only underlay: gossip over IPv6, no IPv4 sysctl, table or subnet.env lines", async () => {
    const w = await world6(v6only, { ipv4: false, ipv6: true }, "[2001:db8::11]:7946", { join: [{ host: "2001:db8::11", port: 7946 }] });
    const log = w.host.take();
    expect(log).toContain(`bind gossip ${UNDERLAY_IPV6}:7946`);
    expect(log).not.toContain("sysctl net.ipv4.ip_forward=1");
    expect(log).toContain("sysctl net.ipv6.conf.all.forwarding=1");
    expect(log.filter((l) => l.startsWith("ip-masq"))).toEqual([`ip-masq fd00:10:244::/56 from ${w.host.source!.status().ipv6Subnet}`]);
    const st = w.host.source!.status();
    expect(st).toMatchObject({ publicIp: null, network: null, subnet: null, publicIpv6: UNDERLAY_IPV6 });
    expect(w.host.subnetEnv.get("/run/flannel/subnet.env")).toEqual({ ipv6Network: "fd00:10:244::/56", ipv6Subnet: st.ipv6Subnet!, mtu: 1430, ipMasq: true });
    const peer = w.peer.lease!;
    expect(w.host.nl.takeOps()).toContain(`replace route ${peer.ipv6Subnet} via ${peer.ipv6Subnet!.replace("/64", "")} dev weft-v6.1 onlink proto 87`);
    expect(w.host.nl.getLink("weft.1")).toBeUndefined();
  });

  test("dual-stack pods on an IPv4-only underlay: IPv6 pods ride weft.1; pods keep the IPv4 MTU", async () => {
    const w = await world6(dual, {}, "192.0.2.11:7946", { join: [{ host: "192.0.2.11", port: 7946 }] });
    const st = w.host.source!.status();
    expect(st).toMatchObject({ publicIp: UNDERLAY_IP, publicIpv6: null, mtu: 1450 });
    expect(w.host.nl.getLink("weft-v6.1")).toBeUndefined();
    const peer = w.peer.lease!;
    // The peer has an IPv6 underlay address, this node none: over IPv4.
    expect(w.host.nl.takeOps()).toContain(`replace route ${peer.ipv6Subnet} via ${peer.ipv6Subnet!.replace("/64", "")} dev weft.1 onlink proto 87`);
  });

  test("dual-stack: a new IPv6 underlay address is re-announced in the lease and weft-v6.1 follows; gossip stays on the IPv4 address", async () => {
    const w = await world6(dual, { ipv6: true }, "192.0.2.11:7946", { join: [{ host: "192.0.2.11", port: 7946 }] });
    expect(await w.sim.runUntil(() => readiness(w).ready, 5_000)).toBe(true);
    w.host.take();
    w.host.nl.takeOps();
    readdressEth0(w, UNDERLAY_IPV6, "2001:db8::20", 64);
    expect(await w.sim.runUntil(() => peerSees(w, "publicIpv6").lease === "2001:db8::20", 5_000)).toBe(true);
    expect(await w.sim.runUntil(() => readiness(w).ready, 5_000)).toBe(true);
    expect(peerSees(w, "publicIpv6").member).toBe(`${UNDERLAY_IP}:7946`);
    expect(w.host.take().filter((l) => l.startsWith("bind gossip"))).toEqual([]);
    expect(w.host.nl.takeOps().find((o) => o.startsWith("add link weft-v6.1"))).toContain("local 2001:db8::20 dstport 8472");
    expect(w.host.source!.status()).toMatchObject({ publicIp: UNDERLAY_IP, publicIpv6: "2001:db8::20" });
    expect(w.host.store.lease).toMatchObject({ publicIp: UNDERLAY_IP, publicIpv6: "2001:db8::20" });
  });

  test("IPv6-only: a new IPv6 underlay address re-binds gossip there and is re-announced in the lease", async () => {
    const w = await world6(v6only, { ipv4: false, ipv6: true }, "[2001:db8::11]:7946", { join: [{ host: "2001:db8::11", port: 7946 }] });
    expect(await w.sim.runUntil(() => readiness(w).ready, 5_000)).toBe(true);
    w.host.take();
    readdressEth0(w, UNDERLAY_IPV6, "2001:db8::20", 64);
    expect(await w.sim.runUntil(() => peerSees(w, "publicIpv6").lease === "2001:db8::20" && peerSees(w, "publicIpv6").member === "[2001:db8::20]:7946", 5_000)).toBe(true);
    expect(await w.sim.runUntil(() => readiness(w).ready, 5_000)).toBe(true);
    expect(w.host.take()).toContain("bind gossip 2001:db8::20:7946");
    expect(w.host.source!.status()).toMatchObject({ publicIp: null, publicIpv6: "2001:db8::20" });
  });
});
