/**
 * Faults against the shipped binary, root only: real `dist/weft
 * agent` processes (vxlan) in harness namespaces on one underlay bridge. The underlay
 * namespace's bridge is where faults are injected, with nftables (bridge family): a
 * partition drops everything to/from one node's port, packet loss drops 20% of all
 * bridged frames at random (sch_netem is not available on every kernel; nftables'
 * numgen does the same job and is part of the project's dependencies).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTopology, exec, listNamespaces, ping, requireRoot, type Pod, type Topology } from "../../sim/netns.ts";
import { BIN, agentNode, api, logOf, networkOfGateway, nodesOf, readiness, startAgent, stopAgent, subnetOf, until, type AgentNode } from "../../sim/agents.ts";

const PREFIX = "whd-";
const skip =
  requireRoot() ??
  (!existsSync(BIN) ? "dist/weft is not built (npm test builds it)" : undefined) ??
  (!Bun.which("nft") && !Bun.which("nft", { PATH: "/usr/sbin:/sbin" }) ? "fault injection needs nftables (`nft`)" : undefined) ??
  (!Bun.which("curl") ? "the tests read the agents' API with curl" : undefined);

const key = Buffer.alloc(32, 23).toString("base64") + "\n";

/** Installs (or replaces) the fault table in the underlay namespace. */
function faults(topo: Topology, rules: string[]): void {
  exec(topo.underlay.ns, ["nft", "delete", "table", "bridge", "whdfault"], { check: false });
  if (rules.length === 0) return;
  exec(topo.underlay.ns, ["nft", "-f", "-"], {
    stdin: `table bridge whdfault {\n chain cut {\n  type filter hook forward priority 0; policy accept;\n${rules.map((r) => `  ${r}\n`).join("")} }\n}\n`,
  });
}

/** Every agent's /v1/nodes: one subnet per node, all views equal; returns name → subnet. */
function agreedView(nodes: AgentNode[], want: string[]): Map<string, string> | undefined {
  const views = nodes.map((n) => nodesOf(n));
  if (views.some((v) => !v)) return undefined;
  const keyOf = (v: { name: string; subnet: string; state: string }[]) =>
    v.map((r) => `${r.name}=${r.subnet}:${r.state}`).sort().join(",");
  const first = keyOf(views[0]!);
  if (!views.every((v) => keyOf(v!) === first)) return undefined;
  const rows = views[0]!;
  if (rows.map((r) => r.name).sort().join() !== [...want].sort().join()) return undefined;
  if (!rows.every((r) => r.state === "alive")) return undefined;
  return new Map(rows.map((r) => [r.name, r.subnet]));
}

/** Waits for {@link agreedView}; on timeout the error shows what each agent listed. */
async function agree(nodes: AgentNode[], want: string[], timeoutMs: number): Promise<Map<string, string>> {
  try {
    return await until(`${want.length} agents to agree with everyone alive`, timeoutMs, () => agreedView(nodes, want), 500);
  } catch (e) {
    const seen = nodes.map((n) => `${n.name}: ${(nodesOf(n) ?? []).map((r) => `${r.name}=${r.subnet}:${r.state}`).join(" ")}`);
    throw new Error(`${(e as Error).message}\n${seen.join("\n")}`);
  }
}

function expectNoTwoOwners(nodes: AgentNode[]): void {
  for (const n of nodes) {
    const rows = nodesOf(n) ?? [];
    const subnets = rows.map((r) => r.subnet);
    expect({ node: n.name, dup: subnets.filter((s, i) => subnets.indexOf(s) !== i) }).toEqual({ node: n.name, dup: [] });
  }
  const files = nodes.map(subnetOf).filter((s): s is string => !!s);
  expect(new Set(files).size).toBe(files.length);
}

describe.skipIf(!!skip)("faults: 3 real agents (vxlan) in namespaces", () => {
  let topo: Topology;
  let dir: string;
  const nodes: AgentNode[] = [];
  const pods = new Map<string, Pod>();
  let opts: { netConf: string; keyFile: string; join: string[] };

  const addPodFor = (i: number) => {
    const n = nodes[i]!;
    const gw = subnetOf(n)!;
    pods.set(n.name, topo.addPod(i, { cidr: gw.replace(/\.1\//, ".2/"), gateway: gw.split("/")[0]!, bridge: "cni0" }));
  };
  const allPing = (names: string[]) => {
    for (const a of names) for (const b of names) if (a !== b) expect({ from: a, to: b, ok: ping(pods.get(a)!.ns, pods.get(b)!.ip) }).toEqual({ from: a, to: b, ok: true });
  };
  const withLog = async <T>(n: AgentNode, p: Promise<T>): Promise<T> => p.catch((e: Error) => { throw new Error(`${e.message}\n--- ${n.name} log (tail) ---\n${logOf(n).slice(-4000)}`); });

  beforeAll(async () => {
    topo = createTopology({ prefix: `${PREFIX}f`, nodes: 5 });
    dir = mkdtempSync(join(tmpdir(), "weft-faults-"));
    writeFileSync(join(dir, "key"), key, { mode: 0o600 });
    writeFileSync(join(dir, "wrong-key"), Buffer.alloc(32, 24).toString("base64") + "\n", { mode: 0o600 });
    writeFileSync(join(dir, "net-conf.json"), JSON.stringify({ Network: "10.244.0.0/16", Backend: { Type: "vxlan" } }));
    opts = { netConf: join(dir, "net-conf.json"), keyFile: join(dir, "key"), join: topo.nodes.slice(0, 3).map((t) => `${t.ip}:7946`) };
    topo.nodes.forEach((t, i) => nodes.push(agentNode(`node${i + 1}`, t.ns, t.ip, dir)));
    for (const n of nodes.slice(0, 3)) startAgent(n, opts);
    for (const n of nodes.slice(0, 3)) await withLog(n, until(`${n.name} ready`, 40_000, () => readiness(n)?.ready === true));
    for (let i = 0; i < 3; i++) addPodFor(i);
  }, 90_000);

  afterAll(async () => {
    for (const n of nodes) await stopAgent(n);
    await topo?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
    // Only our own topology: another run of this suite may be live at the same time.
    if (topo) expect(listNamespaces(topo.id)).toEqual([]);
  }, 30_000);

  const metric = (n: AgentNode, name: string): number => {
    const m = new RegExp(`^${name} (\\d+)`, "m").exec(api(n, "/metrics")?.body ?? "");
    if (!m) throw new Error(`${n.name}: no metric ${name}`);
    return Number(m[1]);
  };

  /** The node namespace's UDP receive-buffer overflows (/proc/net/snmp is per namespace). */
  const rcvbufErrors = (n: AgentNode): number => {
    const lines = exec(n.ns, ["cat", "/proc/net/snmp"]).stdout.split("\n").filter((l) => l.startsWith("Udp:"));
    const [head, vals] = lines.map((l) => l.split(/\s+/));
    return Number(vals![head!.indexOf("RcvbufErrors")]);
  };

  test("garbage datagrams to a real agent's gossip port are counted as decrypt failures; nothing else changes", async () => {
    const target = nodes[0]!;
    const before = metric(target, "weft_gossip_decrypt_failures_total");
    const overflowBefore = rcvbufErrors(target);
    const view = agreedView(nodes.slice(0, 3), ["node1", "node2", "node3"]);
    expect(view).toBeDefined();
    const sent = await topo.runTs<number>(topo.underlay.ns, `
      const s = await Bun.udpSocket({ hostname: "192.0.2.1", port: 0 });
      let x = 12345, n = 0;
      for (let i = 0; i < 500; i++) {
        const b = new Uint8Array(1 + (i * 7) % 1300);
        for (let j = 0; j < b.length; j++) { x = (x * 1103515245 + 12345) >>> 0; b[j] = x >>> 24; }
        while (!s.send(b, 7946, "192.0.2.11")) await Bun.sleep(1);
        n++;
        if (i % 20 === 19) await Bun.sleep(5);
      }
      s.close();
      console.log(JSON.stringify(n));
    `);
    expect(sent).toBe(500);
    // Every datagram is either counted by the agent or was dropped by the kernel before it
    // (receive buffer full on a loaded machine); nothing is lost in between.
    const delta = await until("500 garbage datagrams accounted for", 10_000, () => {
      const d = metric(target, "weft_gossip_decrypt_failures_total") - before;
      const dropped = rcvbufErrors(target) - overflowBefore;
      return d + dropped >= 500 ? { d, dropped } : undefined;
    });
    expect(delta.d + delta.dropped).toBe(500);
    expect(delta.d).toBeGreaterThan(0);
    expect(api(target, "/healthz")?.status).toBe(200);
    expect(agreedView(nodes.slice(0, 3), ["node1", "node2", "node3"])).toEqual(view);
  }, 60_000);

  test("an agent with the wrong cluster key never joins, never claims, and its packets are counted as decrypt failures", async () => {
    const stranger = nodes[4]!;
    const before = metric(nodes[0]!, "weft_gossip_decrypt_failures_total");
    startAgent(stranger, { ...opts, keyFile: join(dir, "wrong-key") });
    try {
      await until("the stranger to log failed join attempts", 20_000, () => /WARN.*join: no seed answered/.test(logOf(stranger)), 250);
      const r = readiness(stranger);
      expect(r?.ready).toBe(false);
      expect(r?.reason ?? "").toMatch(/lease/);
      expect(stranger.proc!.exitCode).toBeNull();
      expect(existsSync(stranger.subnetFile)).toBe(false);
      expect(metric(nodes[0]!, "weft_gossip_decrypt_failures_total")).toBeGreaterThan(before);
      for (const n of nodes.slice(0, 3)) expect((nodesOf(n) ?? []).map((x) => x.name)).not.toContain("node5");
    } finally {
      await stopAgent(stranger);
    }
  }, 60_000);

  test("a node partitioned longer than the suspicion timeout is declared dead, keeps its lease, and after healing the cluster converges", async () => {
    const victim = nodes[2]!;
    const before = agreedView(nodes.slice(0, 3), ["node1", "node2", "node3"]);
    expect(before).toBeDefined();
    const t0 = Date.now();
    faults(topo, [`iifname "n2" drop`, `oifname "n2" drop`]);
    try {
      // memberlist-style suspicion: at least suspicionMult·probeInterval (4 s), more without confirmations.
      await until("node1 and node2 to declare node3 dead", 60_000, () =>
        nodes.slice(0, 2).every((n) => nodesOf(n)?.find((r) => r.name === "node3")?.state === "dead"), 250);
      const declaredMs = Date.now() - t0;
      // The cut-off node keeps serving its own lease and stays healthy.
      expect(api(victim, "/healthz")?.status).toBe(200);
      expect(subnetOf(victim)).toBe(before!.get("node3")!.replace(/\.0\//, ".1/"));
      // Peers keep node3's lease (and routes) while it is only dead, not expired.
      expect(nodesOf(nodes[0]!)!.find((r) => r.name === "node3")?.subnet).toBe(before!.get("node3"));
      console.log(`partition: node3 declared dead after ${declaredMs} ms`);
    } finally {
      faults(topo, []);
    }
    const t1 = Date.now();
    const after = await agree(nodes.slice(0, 3), ["node1", "node2", "node3"], 90_000);
    console.log(`partition healed: converged ${Date.now() - t1} ms after the heal`);
    expect([...after.entries()].sort()).toEqual([...before!.entries()].sort());
    expectNoTwoOwners(nodes.slice(0, 3));
    allPing(["node1", "node2", "node3"]);
  }, 200_000);

  test("with 20% packet loss on the underlay a fresh node still joins and gets a unique lease", async () => {
    const fresh = nodes[3]!;
    faults(topo, ["numgen random mod 100 < 20 drop"]);
    try {
      startAgent(fresh, opts);
      await withLog(fresh, until("node4 ready under 20% loss", 90_000, () => readiness(fresh)?.ready === true, 250));
      const others = nodes.slice(0, 3).map((n) => networkOfGateway(subnetOf(n)!));
      const mine = networkOfGateway(subnetOf(fresh)!);
      expect(others).not.toContain(mine);
      await until("every agent to list node4 under loss", 60_000, () => nodes.slice(0, 3).every((n) => nodesOf(n)?.some((r) => r.name === "node4" && r.subnet === mine)), 500);
    } finally {
      faults(topo, []);
    }
    await agree(nodes.slice(0, 4), ["node1", "node2", "node3", "node4"], 60_000);
    expectNoTwoOwners(nodes.slice(0, 4));
    addPodFor(3);
    allPing(["node1", "node4"]);
    allPing(["node3", "node4"]);
  }, 200_000);

  test("corrupted identity.json and truncated lease.json: a clear error, then the lease is recovered from peers, never two owners", async () => {
    const victim = nodes[1]!;
    const subnet = subnetOf(victim)!;
    await stopAgent(victim);
    const leasePath = join(victim.stateDir, "lease.json");
    const idPath = join(victim.stateDir, "identity.json");
    const leaseText = readFileSync(leasePath, "utf8");
    writeFileSync(leasePath, leaseText.slice(0, Math.floor(leaseText.length / 2)));
    writeFileSync(idPath, "\u0000\u0001 not json at all");
    const logBefore = logOf(victim).length;
    startAgent(victim, opts);
    await withLog(victim, until("node2 ready after corruption", 60_000, () => readiness(victim)?.ready === true, 250));
    const log = logOf(victim).slice(logBefore);
    expect(log).toMatch(/ERROR.*Cannot load node identity .*identity\.json/);
    expect(log).toMatch(/ERROR.*Cannot load own lease .*lease\.json/);
    // Both bad files were moved aside for the operator, fresh ones written.
    const aside = readdirSync(victim.stateDir).filter((f) => f.includes(".corrupt-"));
    expect(aside.some((f) => f.startsWith("identity.json.corrupt-"))).toBe(true);
    expect(aside.some((f) => f.startsWith("lease.json.corrupt-"))).toBe(true);
    expect(JSON.parse(readFileSync(leasePath, "utf8")).nodeName).toBe("node2");
    // Peers still held node2's record: it re-learns the same subnet (docs/leases.md).
    expect(subnetOf(victim)).toBe(subnet);
    await agree(nodes.slice(0, 4), ["node1", "node2", "node3", "node4"], 60_000);
    expectNoTwoOwners(nodes.slice(0, 4));
    allPing(["node2", "node1", "node4"]);
  }, 120_000);

  test("an agent killed (SIGKILL) and down past the suspicion timeout: peers keep its lease and routes, its pod stays reachable, a restart reuses the lease", async () => {
    const victim = nodes[2]!;
    const subnet = subnetOf(victim)!;
    await stopAgent(victim, "SIGKILL");
    await until("node1 and node2 to declare node3 dead", 60_000, () =>
      [nodes[0]!, nodes[1]!].every((n) => nodesOf(n)?.find((r) => r.name === "node3")?.state === "dead"), 250);
    // Dead is not expired: the lease (and so the route) stays for the TTL (24 h).
    expect(nodesOf(nodes[0]!)!.find((r) => r.name === "node3")?.subnet).toBe(networkOfGateway(subnet));
    // The kernel keeps forwarding without the agent.
    allPing(["node1", "node3"]);
    startAgent(victim, opts);
    await withLog(victim, until("node3 ready again", 60_000, () => readiness(victim)?.ready === true, 250));
    expect(subnetOf(victim)).toBe(subnet);
    await agree(nodes.slice(0, 4), ["node1", "node2", "node3", "node4"], 60_000);
    expectNoTwoOwners(nodes.slice(0, 4));
    allPing(["node3", "node2", "node4"]);
  }, 150_000);

  test("SIGTERM while still trying to join unreachable seeds: a clean exit 0 within seconds, nothing claimed", async () => {
    const lonely = agentNode("lonely", nodes[4]!.ns, nodes[4]!.ip, join(dir, "lonely"));
    startAgent(lonely, { ...opts, join: ["192.0.2.200:7946", "192.0.2.201:7946"] });
    await until("join attempts to be logged", 30_000, () => /join: no seed answered/.test(logOf(lonely)), 250);
    expect(readiness(lonely)?.ready).toBe(false);
    lonely.proc!.kill("SIGTERM");
    // "Within seconds" is the race: an exit code only if it came within 10 s.
    const code = await Promise.race([lonely.proc!.exited, Bun.sleep(10_000).then(() => "still running after 10 s")]);
    if (typeof code === "string") await stopAgent(lonely);
    expect({ code, log: code === 0 ? "" : logOf(lonely).slice(-2000) }).toEqual({ code: 0, log: "" });
    expect(existsSync(lonely.subnetFile)).toBe(false);
  }, 60_000);

  // Operator error, e.g. a cloned VM: a second machine starts with an existing node's name.
  // By design the newest start owns the name (docs/leases.md) and re-learns the live lease;
  // the running owner stops announcing. Both must not go on serving one subnet as ready.
  test("a second machine started with a running node's name takes the name; the original logs the takeover, says so in /readyz, and the two never both serve one subnet as ready", async () => {
    const original = nodes[0]!;
    const dup = agentNode("node1", nodes[4]!.ns, nodes[4]!.ip, join(dir, "dup"));
    startAgent(dup, opts);
    try {
      await withLog(dup, until("the duplicate to be ready", 60_000, () => readiness(dup)?.ready === true, 250));
      await until("the original to log the takeover", 20_000, () => /ERROR.*Node name taken over/.test(logOf(original)), 250);
      // Peers hold the newcomer's record for node1 but route nobody to it while member node1
      // still gossips from the original's address (docs/leases.md, "Which leases get routes").
      const notRouted = `names public IP ${dup.ip} but member node1 gossips from ${original.ip}: not routed`;
      const problemsOf = (n: AgentNode): string[] => JSON.parse(api(n, "/v1/status")?.body ?? "{}").problems ?? [];
      await until("peers to report node1's record at the newcomer's address as not routed", 20_000, () => problemsOf(nodes[1]!).some((p) => p.includes(notRouted)), 250);
      expect(nodesOf(nodes[1]!)?.find((r) => r.name === "node1")).toBeUndefined();
      const r = readiness(original);
      expect(r?.reason ?? "").toMatch(/taken over/i);
      expect({ sameSubnet: subnetOf(dup) === subnetOf(original), originalReady: r?.ready }).not.toEqual({ sameSubnet: true, originalReady: true });
    } finally {
      await stopAgent(dup);
    }
  }, 120_000);
});

describe.skipIf(!!skip)("subnet exhaustion: room for exactly 2 subnets, 3 agents", () => {
  let topo: Topology;
  let dir: string;
  const nodes: AgentNode[] = [];

  afterAll(async () => {
    for (const n of nodes) await stopAgent(n);
    await topo?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (topo) expect(listNamespaces(topo.id)).toEqual([]);
  }, 30_000);

  test("the third agent stays up, /readyz 503 naming exhaustion; the other two are unaffected", async () => {
    topo = createTopology({ prefix: `${PREFIX}x`, nodes: 3 });
    dir = mkdtempSync(join(tmpdir(), "weft-exhaust-"));
    writeFileSync(join(dir, "key"), key, { mode: 0o600 });
    writeFileSync(join(dir, "net-conf.json"), JSON.stringify({ Network: "10.244.0.0/16", SubnetMin: "10.244.1.0", SubnetMax: "10.244.2.0", Backend: { Type: "vxlan" } }));
    const opts = { netConf: join(dir, "net-conf.json"), keyFile: join(dir, "key"), join: topo.nodes.map((t) => `${t.ip}:7946`) };
    topo.nodes.forEach((t, i) => nodes.push(agentNode(`node${i + 1}`, t.ns, t.ip, dir)));
    for (const n of nodes.slice(0, 2)) startAgent(n, opts);
    for (const n of nodes.slice(0, 2)) await until(`${n.name} ready`, 40_000, () => readiness(n)?.ready === true);
    const third = nodes[2]!;
    startAgent(third, opts);
    const r = await until("node3 to report exhaustion", 60_000, () => {
      const x = readiness(third);
      return x && !x.ready && /exhaust/i.test(x.reason ?? "") ? x : undefined;
    }, 250);
    expect(r.reason).toMatch(/subnet exhausted: all 2 subnets of 10\.244\.0\.0\/16/);
    const res = api(third, "/readyz");
    expect(res?.status).toBe(503);
    // Still running and answering after a while; healthz stays ok (a cluster condition, not a crash).
    await Bun.sleep(2000);
    expect(third.proc!.exitCode).toBeNull();
    expect(api(third, "/healthz")?.status).toBe(200);
    expect(existsSync(third.subnetFile)).toBe(false);
    expect(logOf(third)).toMatch(/ERROR.*No free subnet; trying again later.*exhausted.*retryInMs=60000/);
    // The two leased nodes are unaffected: ready, distinct subnets, pods reach each other.
    for (const n of nodes.slice(0, 2)) expect(readiness(n)?.ready).toBe(true);
    const s = nodes.slice(0, 2).map((n) => networkOfGateway(subnetOf(n)!)).sort();
    expect(s).toEqual(["10.244.1.0/24", "10.244.2.0/24"]);
    const pods = nodes.slice(0, 2).map((n, i) => topo.addPod(i, { cidr: subnetOf(n)!.replace(/\.1\//, ".2/"), gateway: subnetOf(n)!.split("/")[0]!, bridge: "cni0" }));
    expect(ping(pods[0]!.ns, pods[1]!.ip)).toBe(true);
    expect(ping(pods[1]!.ns, pods[0]!.ip)).toBe(true);
    // Neither leased node lists the third as an owner of anything.
    for (const n of nodes.slice(0, 2)) expect((nodesOf(n) ?? []).map((x) => x.name).sort()).toEqual(["node1", "node2"]);
  }, 120_000);
});
