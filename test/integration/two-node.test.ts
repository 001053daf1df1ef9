/**
 * End to end over the kernel's VXLAN with weft's wrappers only: two node namespaces on
 * a shared underlay each get (through openNetlink/writeSysctl/resolveUnderlay, run as a
 * Bun child inside the node) a bridge cni0, VXLAN weft.1, addresses, and the peer's
 * route, ARP and FDB entries; a pod namespace hangs off each bridge (made with `ip`,
 * as a CNI plugin would) and pods ping each other with real ICMP. Root only.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTopology, ipJson, listNamespaces, ping, REPO, requireRoot, runTs, type Pod, type Topology } from "../../sim/netns.ts";

const skip = requireRoot();
if (skip) console.warn(`skipping two-node tests: ${skip}`);

const vtepMac = (i: number) => `02:77:00:00:00:0${i + 1}`;
const subnet = (i: number) => `10.244.${i + 1}`;

const NODE_SETUP = `
import { openNetlink } from ${JSON.stringify(REPO + "/src/sys/libnl.ts")};
import { writeSysctl, readSysctl } from ${JSON.stringify(REPO + "/src/sys/sysctl.ts")};
import { resolveUnderlay } from ${JSON.stringify(REPO + "/src/sys/iface.ts")};
const { subnet, mac } = await Bun.stdin.json();
const nl = openNetlink();
try {
  const ul = resolveUnderlay(nl);
  writeSysctl("net.ipv4.ip_forward", 1);
  const eth = nl.getLink(ul.iface);
  nl.createBridge("cni0");
  nl.addAddress({ dev: "cni0", cidr: subnet + ".1/24" });
  const vx = nl.createVxlan({ name: "weft.1", vni: 1, local: ul.ip, port: 8472, mtu: ul.mtu - 50, mac, underlayIndex: eth.index });
  nl.addAddress({ dev: "weft.1", cidr: subnet + ".0/32" });
  writeSysctl(["net", "ipv6", "conf", "weft.1", "accept_ra"], 0);
  console.log(JSON.stringify({ underlay: ul, vxlan: vx, forward: readSysctl("net.ipv4.ip_forward") }));
} finally {
  nl.close();
}
`;

const PEER_SETUP = `
import { openNetlink } from ${JSON.stringify(REPO + "/src/sys/libnl.ts")};
const { peerSubnet, peerMac, peerIp } = await Bun.stdin.json();
const nl = openNetlink();
try {
  nl.replaceRoute({ dst: peerSubnet + ".0/24", gateway: peerSubnet + ".0", dev: "weft.1", onlink: true });
  nl.replaceNeighbor({ dev: "weft.1", ip: peerSubnet + ".0", mac: peerMac });
  nl.replaceFdb({ dev: "weft.1", mac: peerMac, dst: peerIp });
  console.log(JSON.stringify({ routes: nl.listRoutes({ dev: "weft.1" }), fdb: nl.listFdb("weft.1") }));
} finally {
  nl.close();
}
`;

describe.skipIf(!!skip)("two nodes over VXLAN", () => {
  let topo: Topology;
  let pods: Pod[];
  beforeAll(() => {
    topo = createTopology({ prefix: "wtf-", nodes: 2 });
  });
  afterAll(async () => {
    await topo?.cleanup();
    if (topo) expect(listNamespaces(topo.id)).toEqual([]);
  });

  test("node setup through weft's wrappers discovers the underlay and builds bridge + VXLAN", async () => {
    for (const [i, node] of topo.nodes.entries()) {
      const r = await runTs<any>(node.ns, NODE_SETUP, { subnet: subnet(i), mac: vtepMac(i) });
      expect(r.underlay).toEqual({ iface: "eth0", ip: node.ip, mtu: 1500 });
      expect(r.vxlan).toMatchObject({ name: "weft.1", kind: "vxlan", mtu: 1450, mac: vtepMac(i), up: true });
      expect(r.forward).toBe("1");
      const info = ipJson(node.ns, "-d", "link", "show", "weft.1")[0].linkinfo.info_data;
      expect(info).toMatchObject({ id: 1, local: node.ip, port: 8472, learning: false, link: "eth0" });
    }
    pods = topo.nodes.map((_, i) => topo.addPod(i, { cidr: `${subnet(i)}.2/24`, gateway: `${subnet(i)}.1`, bridge: "cni0" }));
    // Control: without the peer's route/ARP/FDB the pods cannot reach each other.
    expect(ping(pods[0]!.ns, pods[1]!.ip, { deadlineMs: 1000 })).toBe(false);
  });

  test("with the peer's route, ARP and FDB installed, pods ping across nodes through weft.1", async () => {
    expect(pods).toBeDefined();
    for (const [i, node] of topo.nodes.entries()) {
      const j = 1 - i;
      const r = await runTs<any>(node.ns, PEER_SETUP, { peerSubnet: subnet(j), peerMac: vtepMac(j), peerIp: topo.nodes[j]!.ip });
      expect(r.routes).toEqual([{ dst: `${subnet(j)}.0/24`, gateway: `${subnet(j)}.0`, dev: "weft.1", onlink: true, protocol: 87, table: 254 }]);
      expect(r.fdb).toEqual([{ dev: "weft.1", mac: vtepMac(j), dst: topo.nodes[j]!.ip }]);
    }
    const txBefore = ipJson(topo.nodes[0]!.ns, "-s", "link", "show", "weft.1")[0].stats64.tx.packets as number;
    expect(ping(pods[0]!.ns, pods[1]!.ip, { deadlineMs: 5000 })).toBe(true);
    expect(ping(pods[1]!.ns, pods[0]!.ip, { deadlineMs: 5000 })).toBe(true);
    const txAfter = ipJson(topo.nodes[0]!.ns, "-s", "link", "show", "weft.1")[0].stats64.tx.packets as number;
    expect(txAfter).toBeGreaterThan(txBefore);
  });
});

describe.skipIf(!!skip)("harness topology (as used by 3-node agent tests)", () => {
  let topo: Topology;
  beforeAll(() => {
    topo = createTopology({ prefix: "wtf-", nodes: 3 });
  });
  afterAll(async () => {
    await topo?.cleanup();
  });

  test("three nodes on 192.0.2.0/24 reach each other and their gateway; each has a default route via eth0", () => {
    expect(topo.nodes.map((n) => n.ip)).toEqual(["192.0.2.11", "192.0.2.12", "192.0.2.13"]);
    expect(ping(topo.nodes[0]!.ns, topo.nodes[2]!.ip)).toBe(true);
    expect(ping(topo.nodes[2]!.ns, topo.underlay.gateway)).toBe(true);
    for (const n of topo.nodes) {
      expect(ipJson(n.ns, "route", "show", "default")).toEqual([{ dst: "default", gateway: "192.0.2.1", dev: "eth0", flags: [] }]);
    }
  });

  test("addPod names the missing bridge; exec reports exit codes", () => {
    expect(() => topo.addPod(0, { cidr: "10.244.1.2/24", bridge: "nobr0" })).toThrow(/master nobr0/);
    expect(topo.exec(topo.nodes[0]!.ns, ["sh", "-c", "exit 3"], { check: false }).code).toBe(3);
    expect(() => topo.exec(topo.nodes[0]!.ns, ["sh", "-c", "exit 3"])).toThrow("exited 3");
  });

  test("cleanup kills spawned processes and removes every namespace, including extra ones", async () => {
    const extra = topo.addNamespace("x");
    const p = topo.spawn(topo.nodes[1]!.ns, ["sleep", "60"]);
    expect(listNamespaces(topo.id)).toContain(extra);
    await topo.cleanup();
    expect(p.exitCode !== null || p.signalCode !== null).toBe(true);
    expect(listNamespaces(topo.id)).toEqual([]);
  });
});
