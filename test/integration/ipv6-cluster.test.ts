/**
 * IPv6 and dual-stack pod networks end to end (root): three `dist/weft agent` processes in
 * node namespaces on an underlay of the given families, joined by gossip (over IPv6 on an
 * IPv6-only underlay), one pod per node attached by weft's own CNI plugin. Every pod
 * reaches every other pod over every pod family (ping and a TCP transfer); the routes,
 * NDP and FDB entries weft programs are read back with `ip -j` / `bridge -j`; an IPv6
 * route deleted by hand is back within a second; a restarted agent adopts the IPv6 state
 * with zero changes; subnet.env is checked line by line against flannel's format.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { agentNode, api, logOf, nodesOf, readiness, startAgent, stopAgent, until, type AgentNode } from "../../sim/agents.ts";
import { bridgeFdb, createTopology, exec, ipJson, listNamespaces, ping, requireRoot, type Topology, type UnderlayFamilies } from "../../sim/netns.ts";
import { tcpTransfer } from "../../sim/transfer.ts";
import { addPod, BIN } from "./cni-invoke.ts";
import { killNamespaceProcesses, parseWgDump, WireguardMountNs } from "./wireguard-mountns.ts";

const PREFIX = "w6c-";
const skip = requireRoot() ?? (!existsSync(BIN) ? "dist/weft is not built (npm test builds it)" : undefined) ?? (!Bun.which("curl") ? "curl is needed to read the agents' readiness" : undefined) ?? (!Bun.which("socat") ? "socat is needed for the TCP transfers" : undefined);
/** The wireguard scenarios drive wireguard-go (this kernel has no WireGuard module), each node in its own mount namespace. */
const skipWireguard = skip ?? (!Bun.which("wireguard-go") || !Bun.which("wg") ? "wireguard-go and wg are needed (apt install wireguard-go wireguard-tools)" : !Bun.which("nsenter") ? "nsenter missing (util-linux)" : undefined);

/** Polls every 50 ms: the route-repair case measures sub-second latencies. */
const fast = <T>(what: string, ms: number, probe: () => T | undefined | false) => until(what, ms, probe, 50);

interface Scenario {
  name: string;
  backend: "vxlan" | "host-gw" | "udp" | "wireguard";
  /** wireguard's Mode. */
  mode?: "separate" | "auto";
  underlay: UnderlayFamilies;
  pods: "dual" | "ipv6";
  /** The devices weft must have made (and only those of kind vxlan/tun it may own). */
  devices: string[];
  /** The device carrying IPv6 pods to peers (routes, NDP, FDB), or the underlay for host-gw. */
  v6dev: string;
  mtu: number;
}

const scenarios: Scenario[] = [
  { name: "vxlan, IPv4 underlay carrying dual-stack pods", backend: "vxlan", underlay: "ipv4", pods: "dual", devices: ["weft.1"], v6dev: "weft.1", mtu: 1450 },
  { name: "vxlan, IPv6-only underlay, IPv6-only pods", backend: "vxlan", underlay: "ipv6", pods: "ipv6", devices: ["weft-v6.1"], v6dev: "weft-v6.1", mtu: 1430 },
  { name: "vxlan, dual-stack underlay and pods", backend: "vxlan", underlay: "dual", pods: "dual", devices: ["weft.1", "weft-v6.1"], v6dev: "weft-v6.1", mtu: 1430 },
  { name: "host-gw, dual-stack underlay and pods", backend: "host-gw", underlay: "dual", pods: "dual", devices: [], v6dev: "eth0", mtu: 1500 },
  { name: "udp, IPv4 underlay carrying dual-stack pods", backend: "udp", underlay: "ipv4", pods: "dual", devices: ["weft0"], v6dev: "weft0", mtu: 1472 },
  { name: "udp, IPv6-only underlay, IPv6-only pods", backend: "udp", underlay: "ipv6", pods: "ipv6", devices: ["weft0"], v6dev: "weft0", mtu: 1452 },
  { name: "wireguard Mode separate, dual-stack underlay and pods", backend: "wireguard", mode: "separate", underlay: "dual", pods: "dual", devices: ["weft-wg", "weft-wg-v6"], v6dev: "weft-wg-v6", mtu: 1420 },
  { name: "wireguard Mode auto, IPv6-only underlay carrying dual-stack pods", backend: "wireguard", mode: "auto", underlay: "ipv6", pods: "dual", devices: ["weft-wg"], v6dev: "weft-wg", mtu: 1420 },
];
/** Backends whose device carries the whole pod network and picks the peer itself (one route per family). */
const oneRoute = (b: Scenario["backend"]) => b === "udp" || b === "wireguard";

interface Node extends AgentNode {
  ipv6?: string;
  pod?: { ns: string; ip4?: string; ip6: string };
  /** wireguard: the node's own mount namespace for wireguard-go's socket. */
  mnt?: WireguardMountNs;
}

for (const sc of scenarios) {
  describe.skipIf(!!(sc.backend === "wireguard" ? skipWireguard : skip))(`3 agents, ${sc.name}`, () => {
    let topo: Topology;
    let dir: string;
    let netConf: string;
    let keyFile: string;
    const nodes: Node[] = [];
    const v4pods = sc.pods === "dual";
    const seeds = () => nodes.map((n) => (n.ip.includes(":") ? `[${n.ip}]:7946` : `${n.ip}:7946`));
    const start = (n: Node) => startAgent(n, { netConf, keyFile, join: seeds(), ...(n.mnt ? { inNode: (argv: string[]) => n.mnt!.argv(n.ns, argv) } : {}) });
    const wgDump = (n: Node, dev: string) => parseWgDump(n.mnt!.exec(n.ns, ["wg", "show", dev, "dump"]).stdout);
    const env = (n: Node) => readFileSync(n.subnetFile, "utf8");
    const v6SubnetOf = (n: Node) => /FLANNEL_IPV6_SUBNET=(\S+)::1\/64/.exec(env(n))![1] + "::/64";
    const v4SubnetOf = (n: Node) => /FLANNEL_SUBNET=(\S+)\.1\/24/.exec(env(n))![1] + ".0/24";
    /** Every pod pings every other one over each pod family; the pairs that got no answer within `deadlineMs`. */
    const unreachable = (deadlineMs: number) => {
      const failed: string[] = [];
      for (const a of nodes) {
        for (const b of nodes) {
          if (a === b) continue;
          for (const ip of v4pods ? [b.pod!.ip6, b.pod!.ip4!] : [b.pod!.ip6]) if (!ping(a.pod!.ns, ip, { deadlineMs })) failed.push(`${a.name} -> ${b.name} ${ip}`);
        }
      }
      return failed;
    };
    const routes6 = (n: Node) => ipJson<{ dst: string; gateway?: string; dev: string; flags?: string[]; protocol: string }[]>(n.ns, "-6", "route", "show", "proto", "87");
    /** What weft programs on a node: routes of both families, permanent neighbours, the VXLAN FDBs. */
    const kernelState = (n: Node) =>
      JSON.stringify([
        ipJson(n.ns, "route", "show"),
        ipJson(n.ns, "-6", "route", "show"),
        ipJson(n.ns, "neigh", "show", "nud", "permanent"),
        ipJson(n.ns, "-6", "neigh", "show", "nud", "permanent"),
        ...sc.devices.filter((d) => d.startsWith("weft.") || d.startsWith("weft-v6.")).map((d) => bridgeFdb(n.ns, d)),
      ]);

    beforeAll(async () => {
      topo = createTopology({ prefix: PREFIX, nodes: 3, underlay: sc.underlay });
      dir = mkdtempSync(join(tmpdir(), "weft-v6-cluster-"));
      keyFile = join(dir, "key");
      netConf = join(dir, "net-conf.json");
      writeFileSync(keyFile, exec(topo.nodes[0]!.ns, [BIN, "keygen"]).stdout, { mode: 0o600 });
      const families = sc.pods === "dual" ? { Network: "10.244.0.0/16" } : { EnableIPv4: false };
      writeFileSync(netConf, JSON.stringify({ ...families, EnableIPv6: true, IPv6Network: "fd00:10:244::/56", Backend: { Type: sc.backend, ...(sc.mode ? { Mode: sc.mode } : {}) } }));
      for (const [i, t] of topo.nodes.entries()) {
        nodes.push({ ...agentNode(`node${i + 1}`, t.ns, t.ip, dir), ...(t.ipv6 ? { ipv6: t.ipv6 } : {}), ...(sc.backend === "wireguard" ? { mnt: await WireguardMountNs.create() } : {}) });
      }
      for (const n of nodes) start(n);
      for (const n of nodes) {
        await until(`${n.name} ready`, 30_000, () => n.proc!.exitCode === null && readiness(n)?.ready === true).catch((e) => Promise.reject(new Error(`${(e as Error).message}\n${logOf(n)}`)));
      }
      for (const [i, n] of nodes.entries()) {
        const podNs = topo.addNamespace(`p${i}`);
        const { result } = addPod(n.ns, { containerId: `pod${i}`, netns: `/run/netns/${podNs}`, ifname: "eth0", conf: { cniVersion: "1.0.0", name: "weft", type: "weft", subnetFile: n.subnetFile, dataDir: join(n.dir, "cni") } });
        const ips = (result.ips as { address: string }[]).map((x) => x.address.split("/")[0]!);
        n.pod = { ns: podNs, ip6: ips.find((x) => x.includes(":"))!, ...(v4pods ? { ip4: ips.find((x) => !x.includes(":"))! } : {}) };
      }
    }, 120_000);

    afterAll(async () => {
      await Promise.all(nodes.map((n) => stopAgent(n)));
      for (const n of nodes) {
        if (!n.mnt) continue;
        killNamespaceProcesses(n.ns); // wireguard-go daemons outlive agents by design
        n.mnt.close();
      }
      await topo?.cleanup();
      if (dir) rmSync(dir, { recursive: true, force: true });
      expect(listNamespaces(PREFIX)).toEqual([]);
    }, 30_000);

    test("subnet.env holds flannel's lines in flannel's order; distinct subnets of each family", () => {
      for (const n of nodes) {
        const lines = env(n).split("\n");
        const want = [
          ...(v4pods ? [/^FLANNEL_NETWORK=10\.244\.0\.0\/16$/, /^FLANNEL_SUBNET=10\.244\.\d+\.1\/24$/] : []),
          /^FLANNEL_IPV6_NETWORK=fd00:10:244::\/56$/,
          /^FLANNEL_IPV6_SUBNET=fd00:10:244:[0-9a-f]{1,2}::1\/64$/,
          new RegExp(`^FLANNEL_MTU=${sc.mtu}$`),
          /^FLANNEL_IPMASQ=false$/,
          /^$/,
        ];
        expect(lines.length).toBe(want.length);
        lines.forEach((l, i) => expect(l).toMatch(want[i]!));
      }
      expect(new Set(nodes.map(v6SubnetOf)).size).toBe(3);
      if (v4pods) expect(new Set(nodes.map(v4SubnetOf)).size).toBe(3);
    });

    test("weft's devices, and per peer the IPv6 route (and for vxlan the NDP and FDB entries), read back with ip -j and bridge -j", () => {
      for (const n of nodes) {
        const links = ipJson<{ ifname: string }[]>(n.ns, "link", "show").map((l) => l.ifname);
        for (const d of ["weft.1", "weft-v6.1", "weft0", "weft-wg", "weft-wg-v6"]) expect([d, links.includes(d)]).toEqual([d, sc.devices.includes(d)]);
        const peers = nodes.filter((p) => p !== n);
        const r6 = routes6(n);
        if (oneRoute(sc.backend)) {
          // One route of the whole IPv6 pod network into the device; the packet loop (udp) or
          // WireGuard's cryptokey routing picks the peer.
          expect(r6.map((r) => [r.dst, r.dev, r.gateway])).toEqual([["fd00:10:244::/56", sc.v6dev, undefined]]);
        }
        if (sc.backend === "wireguard") {
          // Read back with WireGuard's own tool: per device its port, per peer the endpoint
          // the Mode picks and the subnets of the families the device carries.
          const expectDevice = (dev: string, port: number, endpoint: (p: Node) => string, allowed: (p: Node) => string[]) => {
            const dump = wgDump(n, dev);
            expect(dump.listenPort).toBe(port);
            const got = dump.peers.map((x) => [x.endpoint, x.allowedIps.split(",").sort()]).sort();
            expect(got).toEqual(peers.map((p) => [endpoint(p), allowed(p).sort()]).sort());
          };
          if (sc.mode === "separate") {
            expectDevice("weft-wg", 51820, (p) => `${p.ip}:51820`, (p) => [v4SubnetOf(p)]);
            expectDevice("weft-wg-v6", 51821, (p) => `[${p.ipv6}]:51821`, (p) => [v6SubnetOf(p)]);
          } else {
            // auto with only IPv6 underlay addresses: IPv6 endpoints, both families' subnets.
            expectDevice("weft-wg", 51820, (p) => `[${p.ip}]:51820`, (p) => [v4SubnetOf(p), v6SubnetOf(p)]);
          }
          continue;
        }
        if (sc.backend === "udp") continue;
        for (const p of peers) {
          const subnet = v6SubnetOf(p);
          const r = r6.find((x) => x.dst === subnet)!;
          if (sc.backend === "host-gw") expect([r.gateway, r.dev]).toEqual([p.ipv6, "eth0"]);
          else {
            expect([r.gateway, r.dev, r.flags]).toEqual([subnet.replace("/64", ""), sc.v6dev, ["onlink"]]);
            const ndp = ipJson<{ dst: string; lladdr: string; state: string[] }[]>(n.ns, "-6", "neigh", "show", "dev", sc.v6dev).find((x) => x.dst === subnet.replace("/64", ""))!;
            expect(ndp.state).toEqual(["PERMANENT"]);
            const fdb = bridgeFdb(n.ns, sc.v6dev).find((x) => x.mac === ndp.lladdr && x.dst);
            expect(fdb.dst).toBe(sc.v6dev === "weft-v6.1" ? p.ipv6 : p.ip);
          }
        }
        expect(r6.length).toBe(peers.length);
      }
    });

    test("every pod reaches every other pod over each pod family (ping)", () => {
      expect(unreachable(10_000)).toEqual([]);
    }, 120_000);

    test("a TCP transfer between every pair of pods over each pod family arrives intact", async () => {
      const bad: string[] = [];
      for (const a of nodes) {
        for (const b of nodes) {
          if (a === b) continue;
          for (const ip of v4pods ? [b.pod!.ip6, b.pod!.ip4!] : [b.pod!.ip6]) {
            const r = await tcpTransfer(a.pod!.ns, b.pod!.ns, ip, { bytes: 1 << 20 });
            if (!r.intact) bad.push(`${a.name} -> ${b.name} ${ip}: ${JSON.stringify(r)}`);
          }
        }
      }
      expect(bad).toEqual([]);
      if (sc.backend === "udp") {
        // The packet loop refused nothing it carried: no inner source outside a peer's
        // subnet, no offload header (TCPv6 segmentation included) that did not fit.
        for (const n of nodes) {
          const metrics = api(n, "/metrics")!.body;
          expect(metrics).toContain('weft_udp_packets_refused_total{reason="spoofed_source"} 0');
          expect(metrics).toContain('weft_udp_packets_refused_total{reason="bad_offload_header"} 0');
        }
      }
    }, 180_000);

    test("an IPv6 route deleted by hand is back within a second", async () => {
      const n = nodes[0]!;
      const dst = oneRoute(sc.backend) ? "fd00:10:244::/56" : v6SubnetOf(nodes[2]!);
      expect(routes6(n).some((r) => r.dst === dst)).toBe(true);
      exec(n.ns, ["ip", "-6", "route", "del", dst]);
      const t0 = Date.now();
      await fast(`route ${dst} repaired`, 1000, () => routes6(n).some((r) => r.dst === dst));
      expect(Date.now() - t0).toBeLessThanOrEqual(1000);
      expect(ping(n.pod!.ns, nodes[2]!.pod!.ip6)).toBe(true);
    }, 20_000);

    test("kill -9 and restart: same subnets, the kernel state adopted with zero changes, pods reachable over IPv6", async () => {
      const victim = nodes[1]!;
      const before = env(victim);
      const state = kernelState(victim);
      await stopAgent(victim);
      if (sc.backend !== "udp") expect(ping(nodes[0]!.pod!.ns, victim.pod!.ip6)).toBe(true); // the kernel keeps forwarding
      writeFileSync(victim.logFile, "");
      start(victim);
      await until(`${victim.name} ready again`, 30_000, () => readiness(victim)?.ready === true);
      expect(env(victim)).toBe(before);
      await until("the restarted agent's first reconcile", 10_000, () => logOf(victim).includes("reconcile (start)"));
      expect(kernelState(victim)).toBe(state);
      if (sc.backend !== "udp") expect(logOf(victim)).toContain("reconcile (start): no changes");
      expect(ping(nodes[0]!.pod!.ns, victim.pod!.ip6)).toBe(true);
      expect(ping(victim.pod!.ns, nodes[2]!.pod!.ip6)).toBe(true);
    }, 60_000);

    // The new address goes through duplicate address detection (tentative for about a
    // second), as one that SLAAC or DHCPv6 brings does; the kernel's link-local address
    // stays on the interface throughout and must not be taken.
    if (sc.underlay === "ipv4") return; // no IPv6 underlay address to replace
    test("node2's IPv6 underlay address is replaced: every node routes its pods to the new one, IPv6 pods reach its pod again, no agent restarts", async () => {
      const [n1, n2, n3] = nodes as [Node, Node, Node];
      const pids = nodes.map((n) => n.proc!.pid);
      const from = n2.ipv6!;
      const to = "2001:db8::112";
      const t0 = Date.now();
      exec(n2.ns, ["ip", "addr", "del", `${from}/64`, "dev", "eth0"]);
      exec(n2.ns, ["ip", "addr", "add", `${to}/64`, "dev", "eth0"]);
      n2.ipv6 = to;
      if (sc.underlay === "ipv6") n2.ip = to;
      const wgShow = () => (sc.backend === "wireguard" ? nodes.map((n) => `${n.name}:\n${n.mnt!.exec(n.ns, ["wg", "show", "all", "dump"]).stdout}${exec(n.ns, ["ip", "-6", "addr"]).stdout}${exec(n.ns, ["ip", "-6", "route"]).stdout}`).join("\n") : "");
      const withLogs = (e: unknown) => Promise.reject(new Error(`${(e as Error).message}\n${wgShow()}\n${nodes.map(logOf).join("\n")}`));
      await until("every node shows node2 at the new IPv6 address", 15_000, () => nodes.every((n) => nodesOf(n)?.find((r) => r.name === "node2")?.publicIpv6 === to)).catch(withLogs);
      await until("IPv6 pods reach node2's pod, and it theirs", 15_000, () => ping(n1.pod!.ns, n2.pod!.ip6, { deadlineMs: 0 }) && ping(n2.pod!.ns, n3.pod!.ip6, { deadlineMs: 0 })).catch(withLogs);
      console.log(`${sc.name}: IPv6 pods reach node2 again ${Date.now() - t0} ms after its address change`);
      expect(nodes.map((n) => n.proc!.pid)).toEqual(pids);
      for (const n of nodes) expect(n.proc!.exitCode).toBeNull();
      expect(JSON.parse(api(n2, "/v1/status")!.body)).toMatchObject({ publicIpv6: to });
      // The kernel, read back independently; a peer's dataplane follows its next reconcile.
      const settled = <T>(what: string, read: () => T, want: T) => until(what, 5_000, () => JSON.stringify(read()) === JSON.stringify(want)).catch(() => expect(read()).toEqual(want));
      if (sc.devices.includes("weft-v6.1")) {
        const dev = ipJson<{ address: string; linkinfo: { info_data: { local6: string } } }[]>(n2.ns, "-d", "link", "show", "weft-v6.1")[0]!;
        expect(dev.linkinfo.info_data.local6).toBe(to);
        for (const n of [n1, n3]) await settled(`${n.name}: FDB of node2 on weft-v6.1`, () => bridgeFdb(n.ns, "weft-v6.1").filter((f: { mac: string; dst?: string }) => f.mac === dev.address && f.dst).map((f: { dst?: string }) => f.dst), [to]);
      }
      if (sc.backend === "host-gw") {
        for (const n of [n1, n3]) await settled(`${n.name}: IPv6 route to node2's subnet`, () => routes6(n).filter((r) => r.dst === v6SubnetOf(n2)).map((r) => r.gateway), [to]);
      }
      if (sc.backend === "wireguard") {
        const dev = sc.mode === "separate" ? "weft-wg-v6" : "weft-wg";
        const port = sc.mode === "separate" ? 51821 : 51820;
        const key = wgDump(n2, dev).publicKey;
        for (const n of [n1, n3]) await settled(`${n.name}: node2's ${dev} endpoint`, () => wgDump(n, dev).peers.filter((x) => x.publicKey === key).map((x) => x.endpoint), [`[${to}]:${port}`]);
      }
      expect(unreachable(5_000)).toEqual([]);
    }, 60_000);
  });
}
