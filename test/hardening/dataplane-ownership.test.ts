/**
 * What weft must never take over in the kernel (root, namespaces), read back with
 * `ip -j` / `bridge -j`: a second destination for a VTEP MAC (the kernel would keep
 * sending to the first one), a route it did not make for a peer's subnet (a replace
 * would silently adopt it), and a device of another kind under the name weft.<VNI>.
 * Two vxlan nodes run the real backend (node-agent over libnl).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { bridgeFdb, ip, ipJson, listNamespaces, ping, requireRoot, type Topology } from "../../sim/netns.ts";
import { startAgent, startCluster, type Cluster } from "../integration/backend-cluster.ts";
import { stableMac } from "../../src/backend/mac.ts";
import type { BackendConf } from "../../src/net-conf.ts";

const skip = requireRoot();
const VXLAN: BackendConf = { type: "vxlan", vni: 1, port: 8472, directRouting: false };

describe.skipIf(!!skip)("dataplane ownership: FDB destinations, foreign routes, foreign devices (root)", () => {
  const open: Topology[] = [];
  let c: Cluster;
  let n0: string;

  beforeAll(async () => {
    c = await startCluster(VXLAN, { prefix: "wdo-", onTopology: (t) => open.push(t) });
    n0 = c.topo.nodes[0]!.ns;
  }, 60_000);

  afterAll(async () => {
    for (const t of open) await t.cleanup();
    expect(listNamespaces("wdo-").filter((n) => open.some((t) => n.startsWith(t.id)))).toEqual([]);
  });

  const fdb = () => bridgeFdb(n0, "weft.1").filter((x) => x.dst).map((x) => `${x.mac} ${x.dst}`).sort();
  const apply = async (peers: unknown[]) => (await c.agents[0]!.call({ peers })).result;
  const mac1 = stableMac("node1");

  test("two leases with one VTEP MAC: neither gets an FDB entry (the kernel would keep the first), both are reported", async () => {
    expect(fdb()).toEqual([`${mac1} 192.0.2.12`]);
    // A lease copying node1's MAC under a name that sorts first.
    const thief = { nodeName: "a-thief", subnet: "10.244.9.0/24", publicIp: "192.0.2.66", vtepMac: mac1 };
    const r = await apply([...c.peers, thief]);
    expect(r.errors).toEqual([]);
    expect(r.problems).toEqual([`VTEP MAC ${mac1} is claimed by a-thief (192.0.2.66), node1 (192.0.2.12): skipped, a MAC must belong to one node or the kernel would send one node's traffic to the other (a cloned node or a forged lease)`]);
    expect(fdb()).toEqual([]);
    expect(ipJson<any[]>(n0, "route", "show", "proto", "87").map((x) => x.dst)).toEqual([]);
    // The duplicate gone, node1 is programmed again and reachable.
    expect((await apply(c.peers)).problems).toEqual([]);
    expect(fdb()).toEqual([`${mac1} 192.0.2.12`]);
    expect(ping(c.pods[0]!.ns, c.pods[1]!.ip)).toBe(true);
  }, 30_000);

  test("a peer's new public IP replaces its FDB destination in one step; an extra destination for the MAC is removed", async () => {
    const moved = c.peers.map((p) => (p.nodeName === "node1" ? { ...p, publicIp: "192.0.2.99" } : p));
    const r = await apply(moved);
    expect(r).toEqual({ changes: 1, errors: [], problems: [] });
    expect(fdb()).toEqual([`${mac1} 192.0.2.99`]);
    // Flood (all-zeros) entries are the only ones the kernel lets have several destinations.
    for (const dst of ["192.0.2.70", "192.0.2.71"]) Bun.spawnSync(["ip", "netns", "exec", n0, "bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "weft.1", "dst", dst, "self", "permanent"]);
    expect(fdb()).toContain("00:00:00:00:00:00 192.0.2.71");
    expect((await apply(c.peers)).errors).toEqual([]);
    expect(fdb()).toEqual([`${mac1} 192.0.2.12`]);
    expect(ping(c.pods[0]!.ns, c.pods[1]!.ip)).toBe(true);
  }, 30_000);

  test("a route weft did not make for a peer's subnet is left as it is and reported; one with another metric does not stand in the way", async () => {
    ip(n0, "route", "add", "10.244.3.0/24", "via", "192.0.2.1", "dev", "eth0", "proto", "static");
    ip(n0, "route", "add", "blackhole", "10.244.5.0/24", "proto", "boot");
    ip(n0, "route", "add", "10.244.4.0/24", "via", "192.0.2.1", "dev", "eth0", "proto", "static", "metric", "100");
    const extra = [3, 4, 5].map((i) => ({ nodeName: `node${i}`, subnet: `10.244.${i}.0/24`, publicIp: `192.0.2.${20 + i}`, vtepMac: stableMac(`node${i}`) }));
    const r = await apply([...c.peers, ...extra]);
    expect(r.errors).toEqual([]);
    expect(r.problems).toEqual([
      "route 10.244.3.0/24 not installed: the kernel has a route weft did not make for it (10.244.3.0/24 via 192.0.2.1 dev eth0 proto 4); weft never replaces foreign routes, delete it to let weft route 10.244.3.0/24",
      "route 10.244.5.0/24 not installed: the kernel has a route weft did not make for it (blackhole 10.244.5.0/24 proto 3); weft never replaces foreign routes, delete it to let weft route 10.244.5.0/24",
    ]);
    const show = (dst: string) => ipJson<any[]>(n0, "route", "show", dst).map((x) => `${x.type === "blackhole" ? "blackhole " : ""}${x.dst} via ${x.gateway} dev ${x.dev} proto ${x.protocol ?? "boot"} metric ${x.metric ?? 0}`).sort();
    expect(show("10.244.3.0/24")).toEqual(["10.244.3.0/24 via 192.0.2.1 dev eth0 proto static metric 0"]);
    expect(show("10.244.5.0/24")).toEqual(["blackhole 10.244.5.0/24 via undefined dev undefined proto boot metric 0"]);
    expect(show("10.244.4.0/24")).toEqual(["10.244.4.0/24 via 10.244.4.0 dev weft.1 proto 87 metric 0", "10.244.4.0/24 via 192.0.2.1 dev eth0 proto static metric 100"]);
    // The next run changes nothing and reports the same; once the owner deletes its route, weft routes the subnet.
    expect((await apply([...c.peers, ...extra])).changes).toBe(0);
    ip(n0, "route", "del", "10.244.3.0/24", "proto", "static");
    expect((await apply([...c.peers, ...extra])).problems).toHaveLength(1);
    expect(show("10.244.3.0/24")).toEqual(["10.244.3.0/24 via 10.244.3.0 dev weft.1 proto 87 metric 0"]);
    ip(n0, "route", "del", "blackhole", "10.244.5.0/24");
    ip(n0, "route", "del", "10.244.4.0/24", "metric", "100");
    expect(await apply(c.peers)).toMatchObject({ errors: [], problems: [] });
  }, 30_000);

  test("a device of another kind named weft.1 is never deleted: the backend refuses to start and names it", async () => {
    expect(await c.agents[0]!.call({ close: 1 })).toEqual({ closed: true });
    ip(n0, "link", "del", "weft.1");
    ip(n0, "link", "add", "weft.1", "type", "bridge");
    const restarted = startAgent(c, 0, VXLAN);
    const r = await restarted.next();
    expect(r).toEqual({ ready: false, error: "start vxlan backend: weft.1 exists but is a bridge device, not weft's VXLAN device; weft does not delete or program devices it did not make: delete or rename it (ip link del weft.1), or set another Backend.VNI" });
    const link = ipJson<any[]>(n0, "-d", "link", "show", "weft.1");
    expect(link.map((l) => l.linkinfo?.info_kind)).toEqual(["bridge"]);
  }, 30_000);
});
