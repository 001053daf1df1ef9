/**
 * Kernel tests (root): each backend programmed by weft on two node namespaces over a
 * shared underlay (sim/netns.ts), with a pod namespace per node on a
 * cni0 bridge; pods ping across, and the kernel state is read back with `ip -j` and
 * `bridge -j`, independently of weft's own Netlink code. For udp the ping proves the
 * TUN ↔ UDP worker end to end.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO, runTs, bridgeFdb, exec, ip, ipJson, listNamespaces, ping, requireRoot, type Topology } from "../../sim/netns.ts";
import { tcpTransfer } from "../../sim/transfer.ts";
import { NODE_AGENT } from "../backend/node-agent-client.ts";
import { startAgent, startCluster, type AgentOpts, type Cluster } from "./backend-cluster.ts";
import { stableMac } from "../../src/backend/mac.ts";
import type { BackendConf } from "../../src/net-conf.ts";
import type { PeerLease } from "../../src/backend/backend.ts";
import { COMPILE_OPTIONS } from "../../build.ts";

const skip = requireRoot();
const PREFIX = "wbk-";

const open: Topology[] = [];
const cluster = (backend: BackendConf, o: { nodes?: number; ipv6?: boolean } & AgentOpts = {}): Promise<Cluster> => startCluster(backend, { prefix: PREFIX, onTopology: (t) => open.push(t), ...o });

/** Sends 4 MiB of random bytes pod0 → pod1 over TCP and compares SHA-256 on both ends. */
async function tcpTransferIntact(c: Cluster): Promise<void> {
  expect(await tcpTransfer(c.pods[0]!.ns, c.pods[1]!.ns, c.pods[1]!.ip)).toEqual({ sent: true, received: true, intact: true });
}

const routesProto87 = (ns: string) => ipJson<any[]>(ns, "route", "show", "proto", "87").map((r) => `${r.dst} via ${r.gateway} dev ${r.dev}${r.flags?.includes("onlink") ? " onlink" : ""}`);
// (udp's Network route has no gateway: it shows as "via undefined")

describe.skipIf(!!skip)("backends on two namespace nodes", () => {
  afterAll(async () => {
    for (const t of open) await t.cleanup();
    expect(listNamespaces(PREFIX).filter((n) => open.some((t) => n.startsWith(t.id)))).toEqual([]);
  });

  test("vxlan: kernel state as flannel programs it, pods ping across, idempotent re-apply", async () => {
    const c = await cluster({ type: "vxlan", vni: 1, port: 8472, directRouting: false });
    const n0 = c.topo.nodes[0]!.ns;
    const link = ipJson<any[]>(n0, "-d", "link", "show", "weft.1")[0];
    expect(link.mtu).toBe(1450);
    expect(link.address).toBe(stableMac("node0"));
    expect(link.linkinfo.info_kind).toBe("vxlan");
    expect(link.linkinfo.info_data).toMatchObject({ id: 1, local: "192.0.2.11", port: 8472, learning: false });
    expect(ipJson<any[]>(n0, "-4", "addr", "show", "dev", "weft.1")[0].addr_info.map((a: any) => `${a.local}/${a.prefixlen}`)).toEqual(["10.244.1.0/32"]);
    expect(routesProto87(n0)).toEqual(["10.244.2.0/24 via 10.244.2.0 dev weft.1 onlink"]);
    const neigh = ipJson<any[]>(n0, "neigh", "show", "dev", "weft.1");
    expect(neigh.map((x) => `${x.dst} ${x.lladdr} ${x.state.join(",")}`)).toEqual([`10.244.2.0 ${stableMac("node1")} PERMANENT`]);
    const fdb = bridgeFdb(n0, "weft.1").filter((x) => x.dst);
    expect(fdb.map((x) => `${x.mac} ${x.dst}`)).toEqual([`${stableMac("node1")} 192.0.2.12`]);

    expect(ping(c.pods[0]!.ns, c.pods[1]!.ip)).toBe(true);
    expect(ping(c.pods[1]!.ns, c.pods[0]!.ip)).toBe(true);

    const again = await c.agents[0]!.call({ peers: c.peers });
    expect(again.result).toEqual({ changes: 0, errors: [], problems: [] });
  }, 60_000);

  test("vxlan: outsider damage is repaired by the next apply, peer removal cleans up, close keeps the dataplane", async () => {
    const c = await cluster({ type: "vxlan", vni: 1, port: 8472, directRouting: false });
    const n0 = c.topo.nodes[0]!.ns;
    ip(n0, "route", "del", "10.244.2.0/24");
    ip(n0, "neigh", "del", "10.244.2.0", "dev", "weft.1");
    expect(ping(c.pods[0]!.ns, c.pods[1]!.ip, { deadlineMs: 1000 })).toBe(false);
    const fixed = await c.agents[0]!.call({ peers: c.peers });
    expect(fixed.result).toEqual({ changes: 2, errors: [], problems: [] });
    expect(ping(c.pods[0]!.ns, c.pods[1]!.ip)).toBe(true);
    // the device itself deleted: recreated with the same MAC and entries
    ip(n0, "link", "del", "weft.1");
    const rebuilt = await c.agents[0]!.call({ peers: c.peers });
    expect(rebuilt.result.errors).toEqual([]);
    expect(ipJson<any[]>(n0, "link", "show", "weft.1")[0].address).toBe(stableMac("node0"));
    expect(ping(c.pods[0]!.ns, c.pods[1]!.ip)).toBe(true);
    // peer gone: route, ARP, FDB all removed
    await c.agents[0]!.call({ peers: [c.peers[0]] });
    expect(routesProto87(n0)).toEqual([]);
    expect(ipJson<any[]>(n0, "neigh", "show", "dev", "weft.1").filter((x) => x.state?.includes("PERMANENT"))).toEqual([]);
    expect(bridgeFdb(n0, "weft.1").filter((x) => x.dst)).toEqual([]);
    await c.agents[1]!.call({ close: 1 });
    expect(ipJson<any[]>(c.topo.nodes[1]!.ns, "link", "show", "weft.1")).toHaveLength(1);
    // a restart adopts the device and finds nothing to change
    const restarted = startAgent(c, 1, { type: "vxlan", vni: 1, port: 8472, directRouting: false });
    expect(await restarted.next()).toEqual({ ready: true, data: { type: "vxlan", vtepMac: stableMac("node1") }, result: { changes: 0, errors: [], problems: [] } });
  }, 60_000);

  test("reconciler with kernel events: an outsider's deletions are repaired without being asked; lease changes applied", async () => {
    const c = await cluster({ type: "vxlan", vni: 1, port: 8472, directRouting: false }, { reconcile: { periodMs: 60_000 } });
    const n0 = c.topo.nodes[0]!.ns;
    const waitFor = async (cond: () => boolean, ms = 5_000) => {
      const end = Date.now() + ms;
      while (!cond() && Date.now() < end) await Bun.sleep(25);
      return cond();
    };
    ip(n0, "route", "del", "10.244.2.0/24");
    // the periodic pass is a minute away: only the netlink event can bring it back this fast
    expect(await waitFor(() => routesProto87(n0).length === 1)).toBe(true);
    ip(n0, "link", "del", "weft.1");
    expect(await waitFor(() => routesProto87(n0).length === 1 && ipJson<any[]>(n0, "neigh", "show", "dev", "weft.1").length === 1)).toBe(true);
    expect(ping(c.pods[0]!.ns, c.pods[1]!.ip)).toBe(true);
    // a lease expiring (peer list shrinks) removes the peer's entries
    expect(await c.agents[0]!.call({ peers: [c.peers[0]] })).toEqual({ ok: true });
    expect(await waitFor(() => routesProto87(n0).length === 0)).toBe(true);
    const m = (await c.agents[0]!.call({ metrics: 1 })).metrics;
    expect(m.runs).toBeGreaterThanOrEqual(4);
    expect(m.errors).toBe(0);
    expect(m.changes).toBeGreaterThanOrEqual(1 + 5 + 3);
  }, 60_000);

  test("vxlan DirectRouting: same-segment peer gets a plain underlay route", async () => {
    const c = await cluster({ type: "vxlan", vni: 1, port: 8472, directRouting: true });
    expect(routesProto87(c.topo.nodes[0]!.ns)).toEqual(["10.244.2.0/24 via 192.0.2.12 dev eth0"]);
    expect(ping(c.pods[0]!.ns, c.pods[1]!.ip)).toBe(true);
  }, 60_000);

  test("host-gw: routes via peer public IPs, pods ping across, foreign routes untouched", async () => {
    const c = await cluster({ type: "host-gw" });
    const n0 = c.topo.nodes[0]!.ns;
    expect(routesProto87(n0)).toEqual(["10.244.2.0/24 via 192.0.2.12 dev eth0"]);
    expect(ipJson<any[]>(n0, "route", "show", "default")[0]).toMatchObject({ gateway: "192.0.2.1", dev: "eth0" });
    expect(ping(c.pods[0]!.ns, c.pods[1]!.ip)).toBe(true);
    expect(ping(c.pods[1]!.ns, c.pods[0]!.ip)).toBe(true);
    const far = await c.agents[0]!.call({ peers: [...c.peers, { nodeName: "far", subnet: "10.244.9.0/24", publicIp: "198.51.100.9" }] });
    expect(far.result.changes).toBe(0);
    expect(far.result.problems[0]).toContain("peer far: no route to 10.244.9.0/24");
    expect(await c.agents[1]!.call({ close: 1 })).toEqual({ closed: true });
    const restarted = startAgent(c, 1, { type: "host-gw" });
    expect(await restarted.next()).toEqual({ ready: true, data: { type: "host-gw" }, result: { changes: 0, errors: [], problems: [] } });
  }, 60_000);

  test("udp: TUN weft0 + worker encapsulation carry pod traffic both ways; counters move", async () => {
    const c = await cluster({ type: "udp", port: 8285 });
    const n0 = c.topo.nodes[0]!.ns;
    const link = ipJson<any[]>(n0, "-d", "link", "show", "weft0")[0];
    expect(link.mtu).toBe(1472);
    expect(link.linkinfo?.info_kind).toBe("tun");
    expect(ipJson<any[]>(n0, "-4", "addr", "show", "dev", "weft0")[0].addr_info.map((a: any) => `${a.local}/${a.prefixlen}`)).toEqual(["10.244.1.0/16"]);
    expect(routesProto87(n0)).toEqual(["10.244.0.0/16 via undefined dev weft0"]);
    expect(ping(c.pods[0]!.ns, c.pods[1]!.ip)).toBe(true);
    expect(ping(c.pods[1]!.ns, c.pods[0]!.ip)).toBe(true);
    // the Network route deleted by hand comes back with the next apply
    ip(n0, "route", "del", "10.244.0.0/16");
    expect((await c.agents[0]!.call({ peers: c.peers })).result).toEqual({ changes: 1, errors: [], problems: [] });
    expect(ping(c.pods[0]!.ns, c.pods[1]!.ip)).toBe(true);
    // a large packet (fits the TUN MTU, not the pod's 1500) still goes through
    expect(exec(c.pods[0]!.ns, ["ping", "-n", "-q", "-c", "3", "-i", "0.2", "-s", "1400", c.pods[1]!.ip], { check: false }).code).toBe(0);
    // unknown destination inside Network: dropped and counted, not sent
    exec(c.pods[0]!.ns, ["ping", "-n", "-q", "-c", "2", "-i", "0.2", "-W", "1", "10.244.77.5"], { check: false });
    const deadline = Date.now() + 3000;
    let counters: any;
    do {
      counters = (await c.agents[0]!.call({ counters: 1 })).counters;
    } while ((counters.droppedNoRoute < 2 || counters.txPackets < 4) && Date.now() < deadline && (await Bun.sleep(50), true));
    expect(counters.txPackets).toBeGreaterThanOrEqual(4);
    expect(counters.rxPackets).toBeGreaterThanOrEqual(4);
    expect(counters.droppedNoRoute).toBeGreaterThanOrEqual(2);
    // injected datagrams: from a non-peer (the underlay router) → dropped as unknown sender;
    // from a peer but for a subnet not ours → dropped as invalid; neither reaches the TUN
    const inject = (ns: string, dst: string, prefix: number[] = []) =>
      runTs(ns, `
        const p = new Uint8Array(28); p[0] = 0x45; p[3] = 28; p[8] = 64; p[9] = 17;
        p.set([10, 244, 2, 99], 12); p.set(${JSON.stringify(dst.split(".").map(Number))}, 16);
        const d = new Uint8Array([...${JSON.stringify(prefix)}, ...p]);
        const s = await Bun.udpSocket({});
        for (let i = 0; i < 3; i++) s.send(d, 8285, "192.0.2.11");
        s.close(); console.log("{}");`);
    const before = (await c.agents[0]!.call({ counters: 1 })).counters;
    // IPv6 is off on weft0, so the kernel's link-local chatter never reaches the loop
    expect(exec(n0, ["sysctl", "-n", "net.ipv6.conf.weft0.disable_ipv6"]).stdout.trim()).toBe("1");
    expect(before.droppedInvalid).toBe(0);
    await inject(c.topo.underlay.ns, "10.244.1.2");
    await inject(c.topo.nodes[1]!.ns, "10.244.9.9");
    // a marked (offload) datagram whose virtio_net_hdr claims UDP GSO: refused before the TUN
    // (test/hardening/udp-tunnel.test.ts covers the other header shapes and forged sources)
    await inject(c.topo.nodes[1]!.ns, "10.244.1.2", [0x57, 0, 3, 0, 0, 0x50, 0x05, 0, 0, 0, 0]);
    let injected: any;
    const end = Date.now() + 3000;
    do injected = (await c.agents[0]!.call({ counters: 1 })).counters;
    while ((injected.droppedUnknownSender < before.droppedUnknownSender + 3 || injected.droppedInvalid < before.droppedInvalid + 3 || injected.droppedBadOffloadHeader < before.droppedBadOffloadHeader + 3) && Date.now() < end && (await Bun.sleep(50), true));
    expect(injected.droppedUnknownSender - before.droppedUnknownSender).toBe(3);
    expect(injected.droppedInvalid - before.droppedInvalid).toBe(3);
    expect(injected.droppedBadOffloadHeader - before.droppedBadOffloadHeader).toBe(3);
    expect(injected.rxPackets).toBe(before.rxPackets);
    // TCP crosses intact as offloaded super-packets (kernel TSO on weft0, marked framing)
    await tcpTransferIntact(c);
    const after = (await c.agents[0]!.call({ counters: 1 })).counters;
    expect(after.txSuperPackets).toBeGreaterThan(0);
    // every header the kernel produced passed the checks on both ends
    expect(after.droppedBadOffloadHeader).toBe(injected.droppedBadOffloadHeader);
    const receiver = (await c.agents[1]!.call({ counters: 1 })).counters;
    expect(receiver.rxSuperPackets).toBeGreaterThan(0);
    expect([receiver.droppedBadOffloadHeader, receiver.droppedSpoofedSource, receiver.droppedInvalid]).toEqual([0, 0, 0]);
    // weft0 deleted under the running loop: the next apply opens a new one and hands it over
    ip(n0, "link", "del", "weft0");
    const rebuilt = await c.agents[0]!.call({ peers: c.peers });
    expect(rebuilt.result.errors).toEqual([]);
    expect(ipJson<any[]>(n0, "-4", "addr", "show", "dev", "weft0")[0].addr_info.map((a: any) => `${a.local}/${a.prefixlen}`)).toEqual(["10.244.1.0/16"]);
    expect(ping(c.pods[0]!.ns, c.pods[1]!.ip)).toBe(true);
    // close stops the worker but keeps weft0; a restart re-attaches and traffic flows again
    expect(await c.agents[0]!.call({ close: 1 })).toEqual({ closed: true });
    expect(ipJson<any[]>(n0, "link", "show", "weft0")).toHaveLength(1);
    const restarted = startAgent(c, 0, { type: "udp", port: 8285 });
    expect(await restarted.next()).toMatchObject({ ready: true, result: { errors: [] } });
    expect(ping(c.pods[0]!.ns, c.pods[1]!.ip)).toBe(true);
  }, 60_000);

  test("udp with IPv6 pods over the IPv4 underlay: TCPv6 crosses as offloaded super-packets (TSO6 on weft0), every header passing the checks", async () => {
    const c = await cluster({ type: "udp", port: 8285 }, { ipv6: true });
    const n0 = c.topo.nodes[0]!.ns;
    expect(ipJson<any[]>(n0, "-6", "route", "show", "proto", "87").map((r) => `${r.dst} dev ${r.dev}`)).toEqual(["fd00:10:244::/56 dev weft0"]);
    expect(ping(c.pods[0]!.ns, c.pods[1]!.ip6!)).toBe(true);
    const before = (await c.agents[0]!.call({ counters: 1 })).counters;
    expect(await tcpTransfer(c.pods[0]!.ns, c.pods[1]!.ns, c.pods[1]!.ip6!)).toEqual({ sent: true, received: true, intact: true });
    const after = (await c.agents[0]!.call({ counters: 1 })).counters;
    // 4 MiB in far fewer datagrams than 1452-byte packets would need: the kernel handed the loop TCPv6 super-packets
    expect(after.txSuperPackets - before.txSuperPackets).toBeGreaterThan(0);
    expect(after.txPackets - before.txPackets).toBeLessThan((4 << 20) / 1452);
    const receiver = (await c.agents[1]!.call({ counters: 1 })).counters;
    expect(receiver.rxSuperPackets).toBeGreaterThan(0);
    expect([after.droppedBadOffloadHeader, receiver.droppedBadOffloadHeader, receiver.droppedSpoofedSource, receiver.droppedInvalid]).toEqual([0, 0, 0, 0]);
  }, 60_000);

  test("udp without offload: plain IP-in-UDP datagrams (flannel's framing) carry ping and TCP intact", async () => {
    const c = await cluster({ type: "udp", port: 8285 }, { udpOffload: false });
    expect(ping(c.pods[0]!.ns, c.pods[1]!.ip)).toBe(true);
    await tcpTransferIntact(c);
    const counters = (await c.agents[0]!.call({ counters: 1 })).counters;
    expect(counters.txPackets).toBeGreaterThan(2000); // 4 MiB in ≤1472-byte packets
    expect(counters.txSuperPackets).toBe(0);
  }, 60_000);

  test("udp from a compiled binary: the packet Worker loads from the executable", async () => {
    const dir = mkdtempSync(join(tmpdir(), "wbk-bin-"));
    try {
      const bin = join(dir, "node-agent");
      // The same mechanism build.ts uses for dist/weft: workers as extra entrypoints.
      const r = await Bun.build({ entrypoints: [NODE_AGENT, join(REPO, "src/backend/udp-pump.worker.ts")], compile: { outfile: bin }, ...COMPILE_OPTIONS, external: [...COMPILE_OPTIONS.external] });
      expect(r.success).toBe(true);
      const c = await cluster({ type: "udp", port: 8285 }, { agentBin: bin });
      expect(ping(c.pods[0]!.ns, c.pods[1]!.ip)).toBe(true);
      const counters = (await c.agents[0]!.call({ counters: 1 })).counters;
      expect(counters.txPackets).toBeGreaterThan(0);
      expect(counters.rxPackets).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
