/**
 * Forged and malicious leases from a key-holder (docs/hardening-findings.md). Three honest
 * lease nodes (createCluster on the real gossip layer over MemNetwork, FakeClock) and one
 * hand-driven malicious gossip node (createGossip with the cluster key) that broadcasts
 * and push-pulls crafted lease payloads. Each forgery must be rejected, or resolved by the
 * deterministic rule (earliest claimedAt, then node name) identically on every honest
 * node; no honest node may ever hold a view with two owners of one subnet, a subnet
 * outside the range, or two peers with one VTEP MAC (what the agent hands the backend as
 * PeerLease comes from leases()).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { pack } from "msgpackr";
import { parseNetConf } from "../../src/net-conf.ts";
import { encode } from "../../src/gossip/codec.ts";
import { createGossip, lanConfig, type GossipNode } from "../../src/gossip/index.ts";
import { parseKeyFile } from "../../src/gossip/keyring.ts";
import { REQUEST, Sealer } from "../../src/gossip/security.ts";
import type { GossipDelegate } from "../../src/gossip/types.ts";
import { checkPeers } from "../../src/backend/peers.ts";
import { MAX_GENERATION, WIRE_VERSION, encodeRecord, encodeState } from "../../src/lease/record-codec.ts";
import { rangeOf, subnetProblem } from "../../src/lease/record-validate.ts";
import type { ClusterCoreOptions } from "../../src/lease/cluster-options.ts";
import type { Lease } from "../../src/lease/types.ts";
import { silentLogger } from "../../src/log.ts";
import { LeaseSim, type LeaseSimNode } from "../../sim/lease-sim.ts";

const keyring = parseKeyFile(Buffer.alloc(32, 42).toString("base64"));
const net = parseNetConf({ Network: "10.244.0.0/16", SubnetLen: 24, SubnetMin: "10.244.1.0", SubnetMax: "10.244.30.0", Backend: { Type: "vxlan" } });
const range = rangeOf(net);
const EVIL_ADDR = "10.66.0.1:7946";

let idSeq = 0;
const nodeId = () => (++idSeq).toString(16).padStart(32, "e");
/** A VTEP MAC of its own for each fictitious node (the lease layer routes one node per MAC). */
const macOf = (id: string) => `0e:${id.slice(-10).replace(/(..)(?!$)/g, "$1:")}`;

/** A well-formed record of a fictitious node; override what the case forges. */
function forged(over: Partial<Lease> & { nodeName: string }, now: number): Lease {
  const id = nodeId();
  return {
    nodeId: id,
    generation: 1,
    version: 0,
    subnet: "10.244.29.0/24",
    publicIp: "192.0.2.66",
    backend: { type: "vxlan", vtepMac: macOf(id) },
    claimedAt: now,
    renewedAt: now,
    ...over,
  };
}

/** The malicious key-holder: a plain gossip node whose state and broadcasts we script. */
class Evil {
  state: Uint8Array = encodeState([]);
  readonly gossip: GossipNode;
  constructor(sim: LeaseSim) {
    const delegate: GossipDelegate = {
      notifyMessage() {},
      localState: () => this.state,
      mergeRemoteState() {},
    };
    this.gossip = createGossip({
      name: "evil",
      advertiseAddr: EVIL_ADDR,
      transport: sim.network.transport(EVIL_ADDR),
      config: lanConfig(),
      seed: 666,
      deps: { clock: sim.clock, logger: silentLogger, delegate, keyring, clusterName: "weft" },
    });
  }
  /** Broadcasts raw lease payload bytes under a gossip key (a new seq each time). */
  send(key: string, payload: Uint8Array): void {
    this.gossip.broadcast(key, payload);
  }
}

interface World {
  sim: LeaseSim;
  honest: LeaseSimNode[];
  evil: Evil;
  violations: string[];
  shadowed: string[];
}

/**
 * Every time an honest node's leases change, its view must have one owner per subnet,
 * that owner must win the subnet by the rule among all records claiming it, only subnets
 * inside the range, and the peer routes a backend would program from it
 * (agent peers() then checkPeers) never include the node's own committed subnet.
 * `shadowed` records when the agent-level list still holds it (the backend drops it).
 */
function watchInvariants(nodes: LeaseSimNode[], violations: string[], shadowed: string[]): void {
  for (const n of nodes) {
    n.cluster.onChange(() => {
      const view = n.cluster.leases();
      const owners = new Map<string, string>();
      for (const l of view) {
        const subnet = l.subnet!;
        if (owners.has(subnet)) violations.push(`${n.name}: ${subnet} owned by ${owners.get(subnet)} and ${l.nodeName}`);
        owners.set(subnet, l.nodeName);
        const p = subnetProblem(subnet, range);
        if (p) violations.push(`${n.name}: out-of-range lease of ${l.nodeName}: ${p}`);
        // The rule, recomputed here: earliest claimedAt, then smaller name, among every
        // record claiming the subnet (all records in these tests are within their TTL).
        const rivals = n.cluster.table().claimants(subnet);
        const best = rivals.reduce((a, b) => (b.claimedAt < a.claimedAt || (b.claimedAt === a.claimedAt && b.nodeName < a.nodeName) ? b : a));
        if (best.nodeName !== l.nodeName) violations.push(`${n.name}: ${subnet} shown as ${l.nodeName}'s but ${best.nodeName} wins it`);
      }
      const own = n.cluster.ownLease();
      if (!own) return;
      // The agent's peers() (src/agent.ts), then the backends' own filter (src/backend/peers.ts).
      const peers = view.filter((l) => l.nodeName !== n.name).map((l) => ({ nodeName: l.nodeName, subnet: l.subnet!, publicIp: l.publicIp!, ...(l.backend.vtepMac ? { vtepMac: l.backend.vtepMac } : {}) }));
      if (peers.some((p) => p.subnet === own.subnet)) shadowed.push(`${n.name}: agent peer list holds own committed ${own.subnet}`);
      const macs = peers.map((p) => p.vtepMac);
      const twice = macs.filter((m, i) => macs.indexOf(m) !== i);
      if (twice.length > 0) violations.push(`${n.name}: peers handed to the backend share VTEP MACs ${twice.join(", ")}`);
      const checked = checkPeers(peers, { network: net.network!, ownSubnet: own.subnet!, needMac: true });
      const routed = checked.peers.find((p) => p.subnet === own.subnet);
      if (routed) violations.push(`${n.name}: backend would route own committed ${own.subnet} to ${routed.nodeName}`);
    });
  }
}

async function world(seed: number, extra?: Partial<ClusterCoreOptions>): Promise<World> {
  const sim = new LeaseSim({ seed, net, keyring, settleMs: 1000, ...(extra ? { extra } : {}) });
  const honest = [1, 2, 3].map((i) => sim.add(`n${i}`, LeaseSim.addr(i), i === 1 ? [] : [LeaseSim.addr(1)]));
  const violations: string[] = [];
  const shadowed: string[] = [];
  watchInvariants(honest, violations, shadowed);
  for (const n of honest) void sim.start(n.name);
  const ok = await sim.runUntil(() => honest.every((n) => n.lease) && sim.views() === 1, 60_000);
  expect(ok).toBe(true);
  const evil = new Evil(sim);
  const joined = evil.gossip.join([LeaseSim.addr(1)]);
  await sim.runUntil(() => honest.every((n) => n.cluster.members().some((m) => m.name === "evil" && m.state === "alive")), 30_000);
  expect(await joined).toBe(1);
  return { sim, honest, evil, violations, shadowed };
}

/** name=subnet of every lease in a node's view, sorted (what the backend would program). */
const viewOf = (n: LeaseSimNode) => n.cluster.leases().map((l) => `${l.nodeName}=${l.subnet}`).sort();

/** All honest views are equal, and no subnet has two owners anywhere. */
function expectAgreement(w: World): string[] {
  const views = w.honest.map(viewOf);
  for (const v of views) expect(v).toEqual(views[0]!);
  const subnets = views[0]!.map((e) => e.split("=")[1]);
  expect(new Set(subnets).size).toBe(subnets.length);
  expect(w.violations).toEqual([]);
  return views[0]!;
}

/** Drives the fake clock until `p` settles; rethrows its error. */
async function settle<T>(sim: LeaseSim, p: Promise<T>, maxMs: number): Promise<T> {
  let done = false;
  const q = p.finally(() => void (done = true));
  q.catch(() => {});
  if (!(await sim.runUntil(() => done, maxMs))) throw new Error(`not settled within ${maxMs} fake ms`);
  return q;
}

let current: World | undefined;
afterEach(async () => {
  if (!current) return;
  await current.evil.gossip.shutdown();
  await current.sim.stopAll();
  current = undefined;
});

describe("forged leases from a key-holder", () => {
  test("records with invalid subnets or counters are rejected by every honest node", async () => {
    const w = (current = await world(11));
    const now = Math.floor(w.sim.clock.now());
    const bad: [string, Partial<Lease>][] = [
      ["outside Network", { subnet: "10.245.3.0/24" }],
      ["wrong size /25", { subnet: "10.244.3.0/25" }],
      ["wrong size /16", { subnet: "10.244.0.0/16" }],
      ["above SubnetMax", { subnet: "10.244.200.0/24" }],
      ["below SubnetMin", { subnet: "10.244.0.0/24" }],
      ["host bits set", { subnet: "10.244.3.1/24" }],
      ["not canonical", { subnet: "010.244.3.0/24" }],
      ["not a CIDR", { subnet: "garbage" }],
      ["IPv6", { subnet: "fd00::/24" }],
      ["generation 0", { generation: 0 }],
      ["generation above 2^53", { generation: 2 ** 53 + 2 }],
      ["negative version", { version: -1 }],
      ["fractional version", { version: 1.5 }],
      ["negative claimedAt", { claimedAt: -5 }],
      ["bad publicIp", { publicIp: "999.1.1.1" }],
      ["bad nodeId", { nodeId: "NOT-HEX" }],
    ];
    const before = w.honest.map((n) => n.cluster.metrics().rejectedRecords);
    const views0 = w.honest.map(viewOf);
    bad.forEach(([, over], i) => w.evil.send(`bad${i}`, encodeRecord(forged({ nodeName: `bad${i}`, ...over }, now))));
    // Malformed payloads as a whole: wrong wire version, unknown kind, not msgpack, not a triple.
    w.evil.send("p1", pack([WIRE_VERSION + 1, 1, []]));
    w.evil.send("p2", pack([WIRE_VERSION, 9, []]));
    w.evil.send("p3", Uint8Array.of(0xc1, 1, 2));
    w.evil.send("p4", pack({ a: 1 }));
    await w.sim.run(10_000);
    for (const [i, n] of w.honest.entries()) {
      for (let k = 0; k < bad.length; k++) expect({ node: n.name, name: `bad${k}`, held: n.cluster.table().get(`bad${k}`) }).toEqual({ node: n.name, name: `bad${k}`, held: undefined });
      expect(n.cluster.metrics().rejectedRecords - before[i]!).toBeGreaterThanOrEqual(bad.length + 4);
      expect(viewOf(n)).toEqual(views0[i]!);
    }
    expectAgreement(w);
  }, 60_000);

  test("a later claim on a committed subnet loses everywhere; the honest lease stays", async () => {
    const w = (current = await world(12));
    const [n1] = w.honest;
    const lease1 = n1!.cluster.ownLease()!;
    // Later claimedAt; and equal claimedAt with a name that sorts after "n1".
    w.evil.send("late", encodeRecord(forged({ nodeName: "late", subnet: lease1.subnet, claimedAt: lease1.claimedAt + 1000 }, lease1.claimedAt + 1000)));
    w.evil.send("zz", encodeRecord(forged({ nodeName: "zz-tie", subnet: lease1.subnet, claimedAt: lease1.claimedAt }, lease1.claimedAt)));
    await w.sim.run(10_000);
    for (const n of w.honest) {
      expect(n.cluster.table().get("late")?.subnet).toBe(lease1.subnet); // known, but not the owner
      expect(n.cluster.leases().find((l) => l.subnet === lease1.subnet)?.nodeName).toBe("n1");
      expect(n.cluster.metrics().renumbers).toBe(0);
    }
    expect(n1!.cluster.ownLease()).toEqual(lease1);
    expect(expectAgreement(w)).toContain(`n1=${lease1.subnet}`);
  }, 60_000);

  /** Forges earlier / tie-winning claims on n2's and n3's subnets and waits for the renumbers. */
  async function backdated(seed: number): Promise<World> {
    const w = (current = await world(seed));
    const n2 = w.honest[1]!;
    const lease2 = n2.cluster.ownLease()!;
    w.evil.send("early", encodeRecord(forged({ nodeName: "early", subnet: lease2.subnet, claimedAt: lease2.claimedAt - 1 }, Math.floor(w.sim.clock.now()))));
    // Equal claimedAt, smaller name: wins the tie the same way.
    const n3 = w.honest[2]!;
    const lease3 = n3.cluster.ownLease()!;
    w.evil.send("a", encodeRecord(forged({ nodeName: "a-tie", subnet: lease3.subnet, claimedAt: lease3.claimedAt }, Math.floor(w.sim.clock.now()))));
    const settled = await w.sim.runUntil(
      () => [n2, n3].every((n) => n.cluster.ownLease() && n.cluster.ownLease()!.subnet !== (n === n2 ? lease2 : lease3).subnet) && w.sim.views() === 1,
      60_000,
    );
    expect(settled).toBe(true);
    const view = expectAgreement(w);
    expect(view).toContain(`early=${lease2.subnet}`);
    expect(view).toContain(`a-tie=${lease3.subnet}`);
    for (const n of [n2, n3]) {
      expect(n.cluster.metrics().renumbers).toBe(1);
      expect(view).toContain(`${n.name}=${n.cluster.ownLease()!.subnet}`);
    }
    expect(w.sim.duplicates()).toEqual([]);
    return w;
  }

  test("an earlier (backdated) claim wins by the rule everywhere; the victim renumbers to a unique subnet", async () => {
    await backdated(13);
  }, 90_000);

  // While the victim renumbers (a settle window) the winner's lease on its still committed
  // subnet reaches the agent's peer list; the backend filter drops it (asserted in
  // watchInvariants). This pins down that the window exists, so the backend filter stays.
  test("during that renumber the own subnet reaches the agent's peer list but never a backend route", async () => {
    const w = await backdated(13);
    expect(w.shadowed.length).toBeGreaterThan(0);
    expect(w.violations).toEqual([]);
  }, 90_000);

  test("a record claiming an honest node's name with another nodeId: the victim steps aside (documented), views agree, the forger's address gets no route", async () => {
    const w = (current = await world(14));
    const n3 = w.honest[2]!;
    const lease3 = n3.cluster.ownLease()!;
    const now = Math.floor(w.sim.clock.now());
    w.evil.send("n3", encodeRecord(forged({ nodeName: "n3", generation: lease3.generation + 1, subnet: "10.244.28.0/24", claimedAt: now }, now)));
    await w.sim.run(10_000);
    // docs/leases.md "Who may write a name": the newest start owns the name; the running
    // node logs an error, counts nameConflicts and stops announcing (no ping-pong).
    expect(n3.cluster.metrics().nameConflicts).toBe(1);
    expect(n3.cluster.ownLease()).toBeUndefined();
    // Every node holds the takeover record, but member n3 still gossips from 10.0.0.3 while
    // the record names 192.0.2.66: nobody routes n3's name to the forger's address.
    const view = expectAgreement(w);
    expect(view.filter((e) => e.startsWith("n3="))).toEqual([]);
    for (const n of w.honest) {
      expect(n.cluster.table().get("n3")?.subnet).toBe("10.244.28.0/24");
      expect(n.cluster.problems()).toContain("lease of n3 (10.244.28.0/24) names public IP 192.0.2.66 but member n3 gossips from 10.0.0.3: not routed");
    }
  }, 60_000);

  test("a newer record of a live node (its own node id) naming another address: peers go on routing it where it gossips from, never at the forged address nor out of the dataplane", async () => {
    const w = (current = await world(15));
    const n3 = w.honest[2]!;
    const lease3 = n3.cluster.ownLease()!;
    const now = Math.floor(w.sim.clock.now());
    w.evil.send("n3", encodeRecord({ ...lease3, version: lease3.version + 1, publicIp: "192.0.2.66", renewedAt: now }));
    const seen = new Set<string>();
    const peers = w.honest.slice(0, 2);
    const heldSeen = await w.sim.runUntil(() => {
      for (const n of peers) seen.add(String(n.cluster.leases().find((l) => l.nodeName === "n3")?.publicIp));
      return peers.some((n) => n.cluster.table().get("n3")?.publicIp === "192.0.2.66");
    }, 10_000, 10);
    expect(heldSeen).toBe(true);
    await w.sim.runUntil(() => {
      for (const n of peers) seen.add(String(n.cluster.leases().find((l) => l.nodeName === "n3")?.publicIp));
      return false;
    }, 5_000, 10);
    expect([...seen]).toEqual([LeaseSim.addr(3).replace(/:\d+$/, "")]);
    expectAgreement(w);
  }, 60_000);

  test("a takeover record naming the member's own address (a reinstall at the same IP) is routed by the peers", async () => {
    const w = (current = await world(14));
    const n3 = w.honest[2]!;
    const lease3 = n3.cluster.ownLease()!;
    const now = Math.floor(w.sim.clock.now());
    w.evil.send("n3", encodeRecord(forged({ nodeName: "n3", generation: lease3.generation + 1, subnet: "10.244.28.0/24", publicIp: "10.0.0.3", claimedAt: now }, now)));
    await w.sim.run(10_000);
    expect(n3.cluster.ownLease()).toBeUndefined();
    for (const n of w.honest.slice(0, 2)) {
      expect(viewOf(n)).toContain("n3=10.244.28.0/24");
      expect(n.cluster.problems()).toEqual([]);
    }
    // n3 itself does not route to its own address.
    expect(viewOf(n3)).not.toContain("n3=10.244.28.0/24");
    expect(w.violations).toEqual([]);
  }, 60_000);

  test("a maximal generation/version for a fictitious name is accepted and harmless; beyond the generation limit it is rejected", async () => {
    const w = (current = await world(15));
    const before = w.honest.map((n) => n.cluster.ownLease());
    const rejected = w.honest.map((n) => n.cluster.metrics().rejectedRecords);
    const now = Math.floor(w.sim.clock.now());
    w.evil.send("max", encodeRecord(forged({ nodeName: "maxgen", generation: MAX_GENERATION, version: Number.MAX_SAFE_INTEGER, subnet: "10.244.27.0/24" }, now)));
    w.evil.send("over", encodeRecord(forged({ nodeName: "overgen", generation: MAX_GENERATION + 1, subnet: "10.244.28.0/24" }, now)));
    await w.sim.run(5_000);
    const view = expectAgreement(w);
    expect(view).toContain("maxgen=10.244.27.0/24");
    expect(view).not.toContain("overgen");
    for (const [i, n] of w.honest.entries()) expect(n.cluster.metrics().rejectedRecords).toBeGreaterThan(rejected[i]!);
    expect(w.honest.map((n) => n.cluster.ownLease())).toEqual(before);
  }, 60_000);

  // docs/hardening-findings.md F1: a record that copies an honest node's nodeId (every key-holder
  // sees it) with an enormous generation must not make that node out-rank it past the
  // valid range, which would freeze the forged record on peers. Generations are bounded
  // at MAX_GENERATION (2^40), so such a record is rejected on arrival.
  test("a maximal generation copying an honest node's nodeId does not freeze that node's record", async () => {
    const w = (current = await world(15));
    const [n1, n2] = w.honest;
    const lease1 = n1!.cluster.ownLease()!;
    const now = Math.floor(w.sim.clock.now());
    w.evil.send("n1", encodeRecord({ ...lease1, generation: Number.MAX_SAFE_INTEGER, version: 0, publicIp: "192.0.2.66", renewedAt: now }));
    await w.sim.run(10_000);
    // Within two refresh periods n2 must again hold n1's own record (its publicIp, its counters).
    const recovered = await w.sim.runUntil(() => {
      const seen = n2!.cluster.table().get("n1");
      return !!seen && seen.publicIp === lease1.publicIp && seen.generation <= Number.MAX_SAFE_INTEGER && n1!.store.identity!.generation <= Number.MAX_SAFE_INTEGER;
    }, 2 * 3_600_000 + 60_000, 60_000);
    expect(recovered).toBe(true);
  }, 120_000);

  test("a record copying an honest node's nodeId at exactly the generation limit: the node cannot out-rank it, so it steps aside loudly instead of overflowing", async () => {
    const w = (current = await world(17));
    const [n1] = w.honest;
    const lease1 = n1!.cluster.ownLease()!;
    const now = Math.floor(w.sim.clock.now());
    w.evil.send("n1", encodeRecord({ ...lease1, generation: MAX_GENERATION, version: 0, publicIp: "192.0.2.66", renewedAt: now }));
    await w.sim.run(10_000);
    expect(n1!.cluster.ownLease()).toBeUndefined();
    expect(n1!.store.identity!.generation).toBeLessThanOrEqual(MAX_GENERATION);
    expect((n1!.cluster.metrics() as { nameConflicts?: number }).nameConflicts).toBe(1);
  }, 60_000);

  test("a state push with a huge record count: honest leases kept, bounded handling, views agree", async () => {
    const w = (current = await world(16));
    const leases = w.honest.map((n) => n.cluster.ownLease()!);
    const now = Math.floor(w.sim.clock.now());
    // 40 000 well-formed ghost records (~4.5 MB): every in-range subnet claimed, honest
    // subnets with later claims, plus 200 000 malformed entries in a second push.
    const ghosts: Lease[] = [];
    for (let i = 0; i < 40_000; i++) {
      const subnet = i < 3 ? leases[i]!.subnet : `10.244.${1 + (i % 30)}.0/24`;
      ghosts.push(forged({ nodeName: `ghost-${i}`, subnet, claimedAt: now + 1 + i }, now));
    }
    w.evil.state = encodeState(ghosts);
    expect(w.evil.state.length).toBeLessThan(lanConfig().maxStreamBytes);
    const t0 = performance.now();
    await settle(w.sim, w.evil.gossip.pushPull("n1"), 30_000);
    await w.sim.run(5_000);
    const mergeMs = performance.now() - t0;
    const n1 = w.honest[0]!;
    expect(n1.cluster.table().size).toBeGreaterThanOrEqual(40_003);
    for (const [i, n] of w.honest.entries()) expect(n.cluster.ownLease()).toEqual(leases[i]!);
    const view = n1.cluster.leases();
    for (const l of leases) expect(view.find((v) => v.subnet === l.subnet)?.nodeName).toBe(l.nodeName);
    // Malformed bulk: 200 000 entries that are not record tuples.
    const before = n1.cluster.metrics().rejectedRecords;
    w.evil.state = pack([WIRE_VERSION, 2, new Array(200_000).fill(0)]);
    await settle(w.sim, w.evil.gossip.pushPull("n1"), 30_000);
    expect(n1.cluster.metrics().rejectedRecords - before).toBe(200_000);
    // Beyond the stream limit: refused by the transport before anything is parsed.
    const big = new Sealer({ keyring, clusterName: "weft", addr: "10.66.0.2:7946", clock: w.sim.clock }).seal(encode({ join: false, from: "evil", members: [], user: new Uint8Array(lanConfig().maxStreamBytes + 1) }), REQUEST);
    const evilSide = w.sim.network.transport("10.66.0.2:7946");
    const refused = evilSide.stream(LeaseSim.addr(1), big, { signal: new AbortController().signal, maxBytes: 1 << 20 });
    refused.catch(() => {});
    await w.sim.run(100);
    expect(await refused.then(() => "answered", (e: Error) => e.message)).toContain("too large");
    await w.sim.runUntil(() => w.sim.views() === 1, 120_000, 200);
    expectAgreement(w);
    console.log(`huge state push: 40 000 ghost records merged and spread in ${mergeMs.toFixed(0)} ms wall; table size ${n1.cluster.table().size}`);
  }, 120_000);
});

const HOUR = 3_600_000;

/** The agent's peer list of node `n` (src/agent.ts peers()): what the backend is handed. */
const peersOf = (n: LeaseSimNode) => n.cluster.leases().filter((l) => l.nodeName !== n.name && !l.deleted);

describe("forged timestamps, addresses and MACs from a key-holder", () => {
  test("a claimedAt of 2^53-1 (and one just beyond the skew) is rejected everywhere; a node joining later commits a lease every node sees", async () => {
    const w = (current = await world(31));
    const now = Math.floor(w.sim.clock.now());
    const rejected = w.honest.map((n) => n.cluster.metrics().rejectedRecords);
    w.evil.send("f1", encodeRecord(forged({ nodeName: "far-claim", claimedAt: Number.MAX_SAFE_INTEGER, subnet: "10.244.27.0/24" }, now)));
    w.evil.send("f2", encodeRecord(forged({ nodeName: "beyond-skew", claimedAt: now + 61_000, subnet: "10.244.26.0/24" }, now)));
    await w.sim.run(5_000);
    // Had far-claim been kept, n4's claim would be dated 2^53 and refused by every peer:
    // n4 would commit a lease nobody else sees.
    const n4 = w.sim.add("n4", LeaseSim.addr(4), [LeaseSim.addr(1)]);
    watchInvariants([n4], w.violations, w.shadowed);
    void w.sim.start("n4");
    const all = [...w.honest, n4];
    const seen = await w.sim.runUntil(() => !!n4.lease && all.every((n) => n.cluster.table().get("n4")?.subnet === n4.lease!.subnet) && w.sim.views() === 1, 60_000);
    expect(seen).toBe(true);
    expect(n4.lease!.claimedAt).toBeLessThanOrEqual(w.sim.clock.now());
    for (const n of all) expect(viewOf(n)).toContain(`n4=${n4.lease!.subnet}`);
    expect(w.sim.duplicates()).toEqual([]);
    expect(w.violations).toEqual([]);
    for (const [i, n] of w.honest.entries()) {
      expect({ node: n.name, held: ["far-claim", "beyond-skew"].map((x) => n.cluster.table().get(x)) }).toEqual({ node: n.name, held: [undefined, undefined] });
      expect(n.cluster.metrics().rejectedRecords - rejected[i]!).toBeGreaterThanOrEqual(2);
    }
  }, 60_000);

  test("a far-future renewedAt is rejected; a record dated just inside the skew still expires after the TTL", async () => {
    const w = (current = await world(32, { leaseTtlMs: HOUR }));
    const now = Math.floor(w.sim.clock.now());
    w.evil.send("imm", encodeRecord(forged({ nodeName: "immortal", renewedAt: now + 365 * 24 * HOUR, subnet: "10.244.27.0/24" }, now)));
    w.evil.send("near", encodeRecord(forged({ nodeName: "near-future", renewedAt: now + 50_000, subnet: "10.244.26.0/24" }, now)));
    await w.sim.run(5_000);
    for (const n of w.honest) {
      expect(n.cluster.table().get("immortal")).toBeUndefined();
      expect(viewOf(n)).toContain("near-future=10.244.26.0/24");
    }
    // Expiry counts from renewedAt (the owner is no member): TTL + 50 s after `now`.
    const gone = await w.sim.runUntil(() => w.honest.every((n) => !viewOf(n).some((e) => e.startsWith("near-future=") || e.startsWith("immortal="))), 2 * HOUR, 60_000);
    expect(gone).toBe(true);
    expect(w.sim.clock.now()).toBeGreaterThanOrEqual(now + HOUR + 50_000);
    expect(w.sim.clock.now()).toBeLessThanOrEqual(now + HOUR + 50_000 + 2 * 60_000);
    expectAgreement(w);
  }, 60_000);

  test("public IPs that are no other machine's unicast address are rejected on arrival everywhere", async () => {
    const w = (current = await world(33));
    const now = Math.floor(w.sim.clock.now());
    const bad = ["127.0.0.1", "127.1.2.3", "224.0.0.251", "239.1.1.1", "255.255.255.255", "0.0.0.0", "0.12.0.1", "169.254.169.254", "10.244.3.9"];
    const rejected = w.honest.map((n) => n.cluster.metrics().rejectedRecords);
    bad.forEach((ip, i) => w.evil.send(`ip${i}`, encodeRecord(forged({ nodeName: `ip-${i}`, publicIp: ip, subnet: `10.244.${20 + i}.0/24` }, now))));
    await w.sim.run(10_000);
    for (const [i, n] of w.honest.entries()) {
      const held = bad.map((_, k) => n.cluster.table().get(`ip-${k}`)?.publicIp).filter((x) => x !== undefined);
      expect({ node: n.name, held }).toEqual({ node: n.name, held: [] });
      expect(n.cluster.metrics().rejectedRecords - rejected[i]!).toBeGreaterThanOrEqual(bad.length);
    }
    expectAgreement(w);
  }, 60_000);

  test("a record naming this node's public IP is not routed by this node, and says so", async () => {
    const w = (current = await world(34));
    const [n1, n2, n3] = w.honest;
    const now = Math.floor(w.sim.clock.now());
    w.evil.send("copy", encodeRecord(forged({ nodeName: "copycat", publicIp: "10.0.0.1", subnet: "10.244.27.0/24" }, now)));
    await w.sim.run(5_000);
    expect(viewOf(n1!)).not.toContain("copycat=10.244.27.0/24");
    expect(n1!.cluster.problems()).toEqual(["lease of copycat (10.244.27.0/24) names this node's public IP 10.0.0.1: not routed"]);
    expect(n1!.cluster.metrics().unrouted).toBe(1);
    // Kept in the table, so the subnet stays taken for allocation on every node.
    expect(n1!.cluster.table().get("copycat")?.subnet).toBe("10.244.27.0/24");
    // Elsewhere 10.0.0.1 is n1's address: routing copycat's subnet there reaches no third machine.
    for (const n of [n2!, n3!]) expect(viewOf(n)).toContain("copycat=10.244.27.0/24");
    expect(w.violations).toEqual([]);
  }, 60_000);

  test("a member's record naming a public IP other than its gossip address is routed by nobody until they agree", async () => {
    const w = (current = await world(35));
    const now = Math.floor(w.sim.clock.now());
    // "evil" is a live gossip member at 10.66.0.1.
    const rec = forged({ nodeName: "evil", publicIp: "192.0.2.66", subnet: "10.244.27.0/24" }, now);
    w.evil.send("evil", encodeRecord(rec));
    await w.sim.run(5_000);
    for (const n of w.honest) {
      expect(n.cluster.table().get("evil")?.publicIp).toBe("192.0.2.66");
      expect(viewOf(n)).not.toContain("evil=10.244.27.0/24");
      expect(n.cluster.problems()).toEqual(["lease of evil (10.244.27.0/24) names public IP 192.0.2.66 but member evil gossips from 10.66.0.1: not routed"]);
    }
    w.evil.send("evil", encodeRecord({ ...rec, version: 1, publicIp: "10.66.0.1", renewedAt: now + 1 }));
    await w.sim.run(5_000);
    for (const n of w.honest) {
      expect(viewOf(n)).toContain("evil=10.244.27.0/24");
      expect(n.cluster.problems()).toEqual([]);
    }
    expectAgreement(w);
  }, 60_000);

  test("a duplicate of an honest node's VTEP MAC: both claimants reported, the backend gets one of them, never both", async () => {
    const w = (current = await world(36));
    const [n1, n2, n3] = w.honest;
    const l2 = n2!.cluster.ownLease()!;
    const l3 = n3!.cluster.ownLease()!;
    const now = Math.floor(w.sim.clock.now());
    // No member owns "mac-thief": the up owner n2 keeps its routes though the thief's claim is older.
    w.evil.send("t1", encodeRecord(forged({ nodeName: "mac-thief", backend: { type: "vxlan", vtepMac: l2.backend.vtepMac! }, claimedAt: l2.claimedAt - 1000, subnet: "10.244.27.0/24" }, now)));
    // The live member "evil", consistent address, with n3's MAC and an older claim: the claim order decides.
    w.evil.send("t2", encodeRecord(forged({ nodeName: "evil", publicIp: "10.66.0.1", backend: { type: "vxlan", vtepMac: l3.backend.vtepMac! }, claimedAt: l3.claimedAt - 1000, subnet: "10.244.26.0/24" }, now)));
    await w.sim.run(5_000);
    for (const n of w.honest) {
      const macs = peersOf(n).map((l) => l.backend.vtepMac);
      expect({ node: n.name, twice: macs.filter((m, i) => macs.indexOf(m) !== i) }).toEqual({ node: n.name, twice: [] });
    }
    expect(n1!.cluster.problems().sort()).toEqual([
      `VTEP MAC ${l2.backend.vtepMac} is claimed by ${["mac-thief (10.244.27.0/24 at 192.0.2.66)", `n2 (${l2.subnet} at 10.0.0.2)`].sort().join(", ")}: only n2 is routed`,
      `VTEP MAC ${l3.backend.vtepMac} is claimed by ${["evil (10.244.26.0/24 at 10.66.0.1)", `n3 (${l3.subnet} at 10.0.0.3)`].sort().join(", ")}: only evil is routed`,
    ].sort());
    expect(viewOf(n1!)).toEqual([`evil=10.244.26.0/24`, `n1=${n1!.cluster.ownLease()!.subnet}`, `n2=${l2.subnet}`].sort());
    // The victims never route their own MAC to another address.
    expect(n2!.cluster.problems()).toContain(`lease of mac-thief (10.244.27.0/24) carries this node's VTEP MAC ${l2.backend.vtepMac}: not routed`);
    expect(n3!.cluster.problems()).toContain(`lease of evil (10.244.26.0/24) carries this node's VTEP MAC ${l3.backend.vtepMac}: not routed`);
    expect(w.violations).toEqual([]);
  }, 60_000);
});
