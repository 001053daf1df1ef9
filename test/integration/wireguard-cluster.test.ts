/**
 * The wireguard backend end to end with the shipped binary (root only): three
 * `dist/weft agent` processes in node namespaces on a shared underlay, a fourth joining
 * later, one pod per node (CNI bridge + host-local from subnet.env). On a kernel without
 * the WireGuard module (this suite says which it used) the agents start wireguard-go,
 * each node in its own mount namespace (see wireguard-mountns.ts). Checked with
 * WireGuard's own reader (`wg show`), `ip -j`, real traffic and a packet capture on the
 * underlay bridge: pod traffic crosses only as UDP to the WireGuard port, never in clear.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cniConfig } from "./flannel-delegate.ts";
import { parseSubnetEnv } from "../../src/subnet-env.ts";
import { until as waitUntil } from "../../sim/wait.ts";
import { REPO, createTopology, exec, ipJson, Lines, listNamespaces, ping, requireRoot, type Topology } from "../../sim/netns.ts";
import { agentNode, api as apiCall, BIN, logOf, readiness, startAgent as startAgentIn, subnetOf, type AgentNode } from "../../sim/agents.ts";
import { killNamespaceProcesses, parseWgDump, WireguardMountNs } from "./wireguard-mountns.ts";

const CNI_DIR = "/usr/lib/cni";
const PREFIX = "wwg-";
const skip =
  requireRoot() ??
  (!existsSync(BIN) ? "dist/weft is not built (npm test builds it)" : undefined) ??
  (!existsSync(join(CNI_DIR, "bridge")) ? "CNI plugins missing (apt install containernetworking-plugins)" : undefined) ??
  (!Bun.which("wg") ? "wg missing (apt install wireguard-tools)" : undefined) ??
  (!Bun.which("wireguard-go") ? "wireguard-go missing (apt install wireguard-go); this kernel test drives the userspace WireGuard" : undefined) ??
  (!Bun.which("tcpdump") ? "tcpdump missing (apt install tcpdump)" : undefined) ??
  (!Bun.which("nsenter") ? "nsenter missing (util-linux)" : undefined);

const until = <T>(what: string, timeoutMs: number, probe: () => T | undefined | false | Promise<T | undefined | false>) => waitUntil(what, timeoutMs, probe, 50);
const PSK = Buffer.alloc(32, 0x5a).toString("base64");
/** Recognisable payload for the capture: "weft-wg-secret!!" as ping -p hex (16 bytes). */
const MARKER = "weft-wg-secret!!";
const MARKER_HEX = Buffer.from(MARKER).toString("hex");

interface Node extends AgentNode {
  mnt: WireguardMountNs;
  pod?: { ns: string; ip: string };
}

describe.skipIf(!!skip)("wireguard: dist/weft agents over wireguard-go", () => {
  let topo: Topology;
  let dir: string;
  const nodes: Node[] = [];

  const startAgent = (n: Node, extra: string[] = []) =>
    startAgentIn(n, { netConf: join(dir, "net-conf.json"), keyFile: join(dir, "key"), join: ["192.0.2.11:7946", "192.0.2.12:7946", "192.0.2.13:7946"], inNode: (argv) => n.mnt.argv(n.ns, argv), extra });
  const inNode = (n: Node, cmd: string[], check = true) => n.mnt.exec(n.ns, cmd, { check });
  const api = (n: Node, path: string): any => {
    const body = apiCall(n, path)?.body ?? "";
    try {
      return JSON.parse(body);
    } catch {
      return body;
    }
  };
  const ready = (n: Node) => n.proc!.exitCode === null && readiness(n)?.ready === true;
  const wgDump = (n: Node) => parseWgDump(inNode(n, ["wg", "show", "weft-wg", "dump"]).stdout);
  /** The public key `wg` derives from the node's key file (independent of weft's derivation). */
  const pubKeyOf = (n: Node) => exec(n.ns, ["sh", "-c", `wg pubkey < ${join(n.stateDir, "wireguard.key")}`]).stdout.trim();
  const startNode = async (n: Node, extra: string[] = []) => {
    startAgent(n, extra);
    await until(`${n.name} ready`, 30_000, () => ready(n)).catch((e) => {
      throw new Error(`${(e as Error).message}\n${logOf(n)}`);
    });
  };
  const addPod = (n: Node, i: number) => {
    const podNs = topo.addNamespace(`p${i}`);
    const conf = cniConfig(parseSubnetEnv(readFileSync(n.subnetFile, "utf8")), join(n.dir, "cni"));
    const r = exec(n.ns, ["env", "CNI_COMMAND=ADD", `CNI_CONTAINERID=pod${i}`, `CNI_NETNS=/run/netns/${podNs}`, "CNI_IFNAME=eth0", `CNI_PATH=${CNI_DIR}`, join(CNI_DIR, "bridge")], { stdin: JSON.stringify(conf) });
    n.pod = { ns: podNs, ip: String(JSON.parse(r.stdout).ips[0].address).split("/")[0]! };
  };
  beforeAll(async () => {
    topo = createTopology({ prefix: PREFIX, nodes: 4 });
    dir = mkdtempSync(join(tmpdir(), "weft-wg-agents-"));
    writeFileSync(join(dir, "key"), exec(topo.nodes[0]!.ns, [BIN, "keygen"]).stdout, { mode: 0o600 });
    writeFileSync(join(dir, "net-conf.json"), JSON.stringify({ Network: "10.244.0.0/16", Backend: { Type: "wireguard", PSK, PersistentKeepaliveInterval: 25 } }));
    for (const [i, t] of topo.nodes.entries()) nodes.push({ ...agentNode(`node${i + 1}`, t.ns, t.ip, dir), mnt: await WireguardMountNs.create() });
    for (const n of nodes.slice(0, 3)) startAgent(n);
    for (const n of nodes.slice(0, 3)) await until(`${n.name} ready`, 30_000, () => ready(n)).catch((e) => Promise.reject(new Error(`${(e as Error).message}\n${logOf(n)}`)));
    nodes.slice(0, 3).forEach(addPod);
  }, 120_000);

  afterAll(async () => {
    for (const n of nodes) n.proc?.kill(9);
    await Promise.all(nodes.map((n) => n.proc?.exited));
    for (const n of nodes) killNamespaceProcesses(n.ns); // wireguard-go daemons outlive agents by design
    for (const n of nodes) n.mnt.close();
    await topo?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
    expect(listNamespaces(PREFIX)).toEqual([]);
  }, 30_000);

  const three = () => nodes.slice(0, 3);

  test("each node runs weft-wg on wireguard-go: key file 0600, public key in its lease, MTU underlay - 80", () => {
    for (const n of three()) {
      expect(logOf(n)).toContain("the kernel has no WireGuard module; starting userspace WireGuard");
      const keyFile = join(n.stateDir, "wireguard.key");
      expect(statSync(keyFile).mode & 0o777).toBe(0o600);
      const privateKey = readFileSync(keyFile, "utf8").trim();
      expect(logOf(n)).not.toContain(privateKey);
      expect(JSON.stringify(api(n, "/v1/nodes")) + JSON.stringify(api(n, "/v1/status")) + String(api(n, "/metrics"))).not.toContain(privateKey);
      const link = ipJson<{ mtu: number; link_type: string; flags: string[] }[]>(n.ns, "link", "show", "weft-wg")[0]!;
      expect(link.mtu).toBe(1420);
      expect(link.flags).toContain("UP");
      expect(parseSubnetEnv(readFileSync(n.subnetFile, "utf8")).FLANNEL_MTU).toBe("1420");
      expect(wgDump(n).publicKey).toBe(pubKeyOf(n));
    }
  });

  test("`wg show` on each node: the two others as peers, endpoint = public IP:51820, allowed IPs = their subnet, PSK and keepalive", () => {
    for (const n of three()) {
      const d = wgDump(n);
      expect(d.listenPort).toBe(51820);
      const want = three()
        .filter((o) => o !== n)
        .map((o) => ({ publicKey: pubKeyOf(o), endpoint: `${o.ip}:51820`, allowedIps: subnetOf(o)!.replace(/\.1\/24$/, ".0/24"), keepalive: "25" }))
        .sort((a, b) => a.publicKey.localeCompare(b.publicKey));
      expect(d.peers.map(({ publicKey, endpoint, allowedIps, keepalive }) => ({ publicKey, endpoint, allowedIps, keepalive })).sort((a, b) => a.publicKey.localeCompare(b.publicKey))).toEqual(want);
      const psk = inNode(n, ["wg", "show", "weft-wg", "preshared-keys"]).stdout.trim().split("\n").map((l) => l.split("\t")[1]);
      expect(psk).toEqual([PSK, PSK]);
      const routes = ipJson<{ dst: string; dev: string; protocol: string | number }[]>(n.ns, "route", "show", "dev", "weft-wg");
      expect(routes.map((r) => [r.dst, String(r.protocol)])).toEqual([["10.244.0.0/16", "87"]]);
    }
  });

  test("every pod pings every other pod", () => {
    for (const a of three()) for (const b of three()) if (a !== b) expect({ from: a.name, to: b.name, ok: ping(a.pod!.ns, b.pod!.ip) }).toEqual({ from: a.name, to: b.name, ok: true });
  });

  test("the underlay carries pod traffic only as UDP to and from port 51820, never in clear", async () => {
    const [a, b] = three() as [Node, Node];
    const capture = (ns: string, iface: string, file: string) => {
      // --immediate-mode -U: each packet reaches the file as it is seen, not a ring block later.
      const p = Bun.spawn(["ip", "netns", "exec", ns, "tcpdump", "-i", iface, "--immediate-mode", "-U", "-n", "-w", file], { stdout: "ignore", stderr: "pipe" });
      return { p, started: new Lines(p.stderr).waitFor((l) => l.includes("listening on"), 10_000) };
    };
    const ul = join(dir, "underlay.pcap");
    const veth = join(dir, "pod.pcap");
    const c1 = capture(topo.underlay.ns, "br0", ul);
    const c2 = capture(a.pod!.ns, "eth0", veth); // control: the same traffic before WireGuard
    await Promise.all([c1.started, c2.started]);
    const r = exec(a.pod!.ns, ["ping", "-n", "-c", "5", "-i", "0.2", "-p", MARKER_HEX, "-s", "64", b.pod!.ip], { check: false });
    expect(r.code).toBe(0);
    // Besides the tunnel, the underlay carries ARP, gossip and the kernel's own IPv6
    // link-local control traffic (MLD reports, neighbour discovery, sent at random times
    // after a link comes up): none of those can carry a pod's packet.
    const notTunnel = "not arp and not port 7946 and not (ip6 and (src net fe80::/10 or src host ::))";
    const tunnelled = () => exec(topo.underlay.ns, ["tcpdump", "-r", ul, "-n", "-q", notTunnel], { check: false }).stdout.trim().split("\n").filter(Boolean);
    await until("the 10 ICMP packets in both captures", 5000, () => readFileSync(veth).includes(Buffer.from(MARKER)) && tunnelled().length >= 10);
    for (const c of [c1, c2]) c.p.kill("SIGINT");
    await Promise.all([c1.p.exited, c2.p.exited]);
    // The control sees the marker, so the check below can fail.
    expect(readFileSync(veth).includes(Buffer.from(MARKER))).toBe(true);
    expect(readFileSync(ul).includes(Buffer.from(MARKER))).toBe(false);
    const lines = tunnelled();
    expect(lines.length).toBeGreaterThanOrEqual(10); // 5 echo requests and 5 replies at least
    for (const l of lines) expect(l).toMatch(/^\S+ IP 192\.0\.2\.1[1-3]\.51820 > 192\.0\.2\.1[1-3]\.51820: UDP, length \d+$/);
  }, 30_000);

  test("/v1/nodes shows public keys and handshake ages; metrics count the peers and their bytes", () => {
    const n = nodes[0]!;
    const list = api(n, "/v1/nodes") as { name: string; publicKey?: string; latestHandshakeAgeSeconds?: number | null }[];
    for (const o of three()) expect(list.find((x) => x.name === o.name)?.publicKey).toBe(pubKeyOf(o));
    expect(list.find((x) => x.name === "node1")?.latestHandshakeAgeSeconds).toBeUndefined();
    for (const name of ["node2", "node3"]) {
      const age = list.find((x) => x.name === name)?.latestHandshakeAgeSeconds;
      expect(typeof age).toBe("number");
      expect(age!).toBeLessThan(300);
    }
    const metrics = String(api(n, "/metrics"));
    expect(metrics).toMatch(/^weft_wireguard_peers 2$/m);
    const bytes = (d: string) => Number(new RegExp(`^weft_wireguard_bytes_total\\{direction="${d}"\\} (\\d+)$`, "m").exec(metrics)?.[1]);
    expect(bytes("in")).toBeGreaterThan(0);
    expect(bytes("out")).toBeGreaterThan(0);
  });

  test("kill -9 and restart: the running device is adopted with zero changes", async () => {
    const n = nodes[1]!;
    const before = { link: ipJson<{ ifindex: number }[]>(n.ns, "link", "show", "weft-wg")[0]!.ifindex, peers: wgDump(n).peers.map((p) => [p.publicKey, p.endpoint, p.allowedIps]).sort() };
    n.proc!.kill(9);
    await n.proc!.exited;
    // The dataplane does not need the agent: the daemon keeps forwarding.
    expect(ping(nodes[0]!.pod!.ns, n.pod!.ip)).toBe(true);
    writeFileSync(n.logFile, "");
    await startNode(n);
    await until("the restarted agent's first reconcile", 15_000, () => logOf(n).includes("reconcile (start)"));
    expect(logOf(n)).toContain("reconcile (start): no changes");
    expect(logOf(n)).not.toContain("created weft-wg");
    expect(ipJson<{ ifindex: number }[]>(n.ns, "link", "show", "weft-wg")[0]!.ifindex).toBe(before.link);
    expect(wgDump(n).peers.map((p) => [p.publicKey, p.endpoint, p.allowedIps]).sort()).toEqual(before.peers);
    expect(ping(n.pod!.ns, nodes[2]!.pod!.ip)).toBe(true);
  }, 60_000);

  test("weft-wg deleted by hand is back with its peers within a second", async () => {
    const n = nodes[0]!;
    inNode(n, ["ip", "link", "del", "weft-wg"]);
    const t0 = Date.now();
    await until("weft-wg recreated with both peers and its route", 1000, () => {
      const r = inNode(n, ["wg", "show", "weft-wg", "dump"], false);
      return r.code === 0 && parseWgDump(r.stdout).peers.length === 2 && ipJson(n.ns, "route", "show", "dev", "weft-wg").length === 1;
    });
    expect(Date.now() - t0).toBeLessThanOrEqual(1000);
    expect(ping(n.pod!.ns, nodes[1]!.pod!.ip)).toBe(true);
  }, 20_000);

  test("a peer removed by hand is put back by the periodic reconcile", async () => {
    const n = nodes[2]!;
    const victim = pubKeyOf(nodes[0]!);
    inNode(n, ["wg", "set", "weft-wg", "peer", victim, "remove"]);
    expect(wgDump(n).peers.map((p) => p.publicKey)).not.toContain(victim);
    // WireGuard announces no peer changes, so the 10 s safety-net pass finds it.
    await until("the removed peer back", 12_000, () => wgDump(n).peers.some((p) => p.publicKey === victim));
    expect(ping(n.pod!.ns, nodes[0]!.pod!.ip)).toBe(true);
  }, 30_000);

  test("a node that joins later is a peer on the others within a second of its lease arriving", async () => {
    const newcomer = nodes[3]!;
    // Its key is made at its first start; watch for whatever key its lease brings.
    const watchers = await Promise.all(three().map((n) => watchAny(n, newcomer.name)));
    await startNode(newcomer);
    addPod(newcomer, 3);
    const key = pubKeyOf(newcomer);
    for (const [i, w] of watchers.entries()) {
      const r = await w.done;
      expect({ node: three()[i]!.name, key: r.key }).toEqual({ node: three()[i]!.name, key });
      expect(r.apiAt).not.toBeNull();
      expect(r.wgAt! - r.apiAt!).toBeLessThanOrEqual(1000);
    }
    for (const n of three()) expect(ping(n.pod!.ns, newcomer.pod!.ip)).toBe(true);
  }, 60_000);

  test("a node re-keyed (state lost) is re-keyed on every peer within a second of its new lease", async () => {
    const n = nodes[2]!;
    const oldKey = pubKeyOf(n);
    n.proc!.kill(9);
    await n.proc!.exited;
    unlinkSync(join(n.stateDir, "wireguard.key"));
    const others = nodes.filter((o) => o !== n);
    const watchers = await Promise.all(others.map((o) => watchAny(o, n.name, oldKey)));
    writeFileSync(n.logFile, "");
    await startNode(n);
    const newKey = pubKeyOf(n);
    expect(newKey).not.toBe(oldKey);
    expect(wgDump(n).publicKey).toBe(newKey);
    for (const [i, w] of watchers.entries()) {
      const r = await w.done;
      expect({ node: others[i]!.name, key: r.key }).toEqual({ node: others[i]!.name, key: newKey });
      expect(r.wgAt! - r.apiAt!).toBeLessThanOrEqual(1000);
      expect(wgDump(others[i]!).peers.map((p) => p.publicKey)).not.toContain(oldKey);
    }
    for (const o of others) expect(ping(o.pod!.ns, n.pod!.ip)).toBe(true);
  }, 90_000);

  test("a node's underlay address replaced: its pod is reached again within 5 s, no restart, every peer's endpoint for it and /v1/nodes follow", async () => {
    const n = nodes[1]!;
    const pid = n.proc!.pid;
    const key = pubKeyOf(n);
    const from = nodes[0]!;
    expect(ping(from.pod!.ns, n.pod!.ip)).toBe(true);
    const t0 = Date.now();
    exec(n.ns, ["ip", "addr", "del", "192.0.2.12/24", "dev", "eth0"]);
    exec(n.ns, ["ip", "addr", "add", "192.0.2.112/24", "dev", "eth0"]);
    await until("node2's pod reached again", 15_000, () => exec(from.pod!.ns, ["ping", "-n", "-c", "1", "-W", "1", n.pod!.ip], { check: false }).code === 0).catch((e) => Promise.reject(new Error(`${(e as Error).message}\n${logOf(n)}`)));
    expect(Date.now() - t0).toBeLessThan(5_000);
    // The other way, to a peer that has sent it nothing since: node2 must not go on sending
    // from its old address (WireGuard caches a source address per peer), and that peer kept
    // its keys with node2 throughout (its endpoint updated, the peer never removed).
    expect(ping(n.pod!.ns, nodes[2]!.pod!.ip, { deadlineMs: 5_000 })).toBe(true);
    for (const o of nodes.filter((x) => x !== n)) {
      await until(`${o.name}: endpoint of node2 at its new address`, 5_000, () => wgDump(o).peers.find((p) => p.publicKey === key)?.endpoint === "192.0.2.112:51820");
      await until(`${o.name}: /v1/nodes shows node2 at its new address`, 5_000, () => (api(o, "/v1/nodes") as { name: string; publicIp: string }[]).find((x) => x.name === "node2")?.publicIp === "192.0.2.112");
      expect(ping(o.pod!.ns, n.pod!.ip)).toBe(true);
    }
    expect(n.proc!.pid).toBe(pid);
    expect(n.proc!.exitCode).toBeNull();
  }, 60_000);

  test("a node that gives its lease back (--release-on-stop) is removed as a peer on every node within a second of the lease change", async () => {
    const n = nodes[3]!;
    n.proc!.kill(9);
    await n.proc!.exited;
    await startNode(n, ["--release-on-stop"]);
    const key = pubKeyOf(n);
    const others = three();
    for (const o of others) await until(`${o.name}: ${n.name} a peer`, 5_000, () => wgDump(o).peers.some((p) => p.publicKey === key));
    const watchers = await Promise.all(others.map((o) => watchAny(o, n.name, undefined, key)));
    n.proc!.kill("SIGTERM");
    expect(await n.proc!.exited).toBe(0);
    for (const [i, w] of watchers.entries()) {
      const r = await w.done;
      expect({ node: others[i]!.name, apiAt: r.apiAt === null ? null : "seen", wgAt: r.wgAt === null ? null : "seen" }).toEqual({ node: others[i]!.name, apiAt: "seen", wgAt: "seen" });
      expect(r.wgAt! - r.apiAt!).toBeLessThanOrEqual(1000);
      expect(wgDump(others[i]!).peers.map((p) => p.publicKey)).not.toContain(key);
    }
    // The others still reach each other.
    expect(ping(others[0]!.pod!.ns, others[1]!.pod!.ip)).toBe(true);
  }, 90_000);

  /**
   * Watches `n` until its API shows a key for `node` other than `old` and its device has
   * that key as a peer (and not `old`): {key, apiAt, wgAt}. With `removed`: until its API
   * no longer lists `node` and its device no longer has `removed` as a peer.
   */
  async function watchAny(n: Node, node: string, old?: string, removed?: string) {
    const p = Bun.spawn(n.mnt.argv(n.ns, [process.execPath, join(REPO, "test/integration/wireguard-watch.ts"), JSON.stringify({ node, ...(old ? { gone: old } : {}), ...(removed ? { removed } : {}) })]), { stdout: "pipe", stderr: "inherit" });
    const lines = new Lines(p.stdout);
    await lines.waitFor((l) => l === "watching", 10_000);
    return { done: lines.waitFor((l) => l.startsWith("{"), 60_000).then((l) => JSON.parse(l) as { key: string | null; apiAt: number | null; wgAt: number | null }) };
  }
});
