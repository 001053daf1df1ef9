import { describe, expect, test } from "bun:test";
import { RecordingNetlink } from "../fakes/netlink.ts";
import { createVxlanBackend } from "../../src/backend/vxlan.ts";
import type { PeerLease } from "../../src/backend/backend.ts";
import { silentLogger, createLogger } from "../../src/log.ts";
import { stableMac } from "../../src/backend/mac.ts";

const MAC_A = "0a:00:00:00:00:01";
const MAC_B = "0a:00:00:00:00:02";
const MAC_C = "0a:00:00:00:00:03";
const own = "be:ef:00:00:00:01";

function node(opts: { directRouting?: boolean; mtu?: number } = {}) {
  const nl = new RecordingNetlink();
  nl.outside((n) => {
    n.addLinkRaw({ name: "eth0", mtu: 1500 });
    n.addAddress({ dev: "eth0", cidr: "192.0.2.11/24" });
  });
  const backend = createVxlanBackend(
    { type: "vxlan", vni: 1, port: 8472, directRouting: opts.directRouting ?? false, ...(opts.mtu ? { mtu: opts.mtu } : {}) },
    { nl, publicIp: "192.0.2.11", underlayIface: "eth0", underlayMtu: 1500, ownSubnet: "10.244.1.0/24", network: "10.244.0.0/16", vtepMac: own, logger: silentLogger },
  );
  return { nl, backend };
}

const peerB: PeerLease = { nodeName: "b", subnet: "10.244.2.0/24", publicIp: "192.0.2.12", vtepMac: MAC_B };
const peerC: PeerLease = { nodeName: "c", subnet: "10.244.3.0/24", publicIp: "198.51.100.13", vtepMac: MAC_C };

describe("vxlan backend", () => {
  test("up creates weft.1 with MTU underlay-50, the stable MAC and the /32 lease address", async () => {
    const { nl, backend } = node();
    expect(await backend.up()).toEqual({ type: "vxlan", vtepMac: own });
    expect(backend.mtu()).toBe(1450);
    expect(nl.takeOps()).toEqual([
      `add link weft.1 type vxlan id 1 local 192.0.2.11 dstport 8472 nolearning mtu 1450 address ${own} dev-index 2`,
      "add address 10.244.1.0/32 dev weft.1",
    ]);
  });

  test("accept_ra is turned off on weft.1 (as flannel does) once per device: at up, and again only after the device was recreated", async () => {
    const sysctls: string[] = [];
    const nl = new RecordingNetlink();
    nl.outside((n) => n.addLinkRaw({ name: "eth0", mtu: 1500 }));
    const backend = createVxlanBackend(
      { type: "vxlan", vni: 1, port: 8472, directRouting: false },
      { nl, publicIp: "192.0.2.11", underlayIface: "eth0", underlayMtu: 1500, ownSubnet: "10.244.1.0/24", network: "10.244.0.0/16", vtepMac: own, sysctl: (k, v) => void sysctls.push(`${k}=${v}`), logger: silentLogger },
    );
    await backend.up();
    backend.apply([peerB]);
    backend.apply([peerB]);
    expect(sysctls).toEqual(["net.ipv6.conf.weft/1.accept_ra=0"]);
    nl.outside((n) => n.deleteLink("weft.1"));
    backend.apply([peerB]);
    expect(sysctls).toEqual(["net.ipv6.conf.weft/1.accept_ra=0", "net.ipv6.conf.weft/1.accept_ra=0"]);
  });

  test("Backend.MTU overrides the derived MTU", async () => {
    const { backend } = node({ mtu: 1400 });
    expect(backend.mtu()).toBe(1400);
  });

  test("programs ARP, FDB, then the onlink route per peer; a second apply changes nothing", async () => {
    const { nl, backend } = node();
    await backend.up();
    nl.takeOps();
    const r = backend.apply([peerB, peerC]);
    expect(r).toEqual({ changes: 6, errors: [], problems: [] });
    expect(nl.takeOps()).toEqual([
      `replace neigh 10.244.2.0 lladdr ${MAC_B} dev weft.1 nud permanent`,
      `replace neigh 10.244.3.0 lladdr ${MAC_C} dev weft.1 nud permanent`,
      `replace fdb ${MAC_B} dst 192.0.2.12 dev weft.1`,
      `replace fdb ${MAC_C} dst 198.51.100.13 dev weft.1`,
      "replace route 10.244.2.0/24 via 10.244.2.0 dev weft.1 onlink proto 87",
      "replace route 10.244.3.0/24 via 10.244.3.0 dev weft.1 onlink proto 87",
    ]);
    expect(backend.apply([peerC, peerB])).toEqual({ changes: 0, errors: [], problems: [] });
    expect(nl.takeOps()).toEqual([]);
  });

  test("own lease in the peer list is skipped", async () => {
    const { nl, backend } = node();
    await backend.up();
    nl.takeOps();
    backend.apply([{ nodeName: "a", subnet: "10.244.1.0/24", publicIp: "192.0.2.11", vtepMac: own }]);
    expect(nl.takeOps()).toEqual([]);
  });

  test("peer removal deletes the route first, then ARP and FDB; additions come before deletions", async () => {
    const { nl, backend } = node();
    await backend.up();
    backend.apply([peerB]);
    nl.takeOps();
    backend.apply([peerC]);
    expect(nl.takeOps()).toEqual([
      `replace neigh 10.244.3.0 lladdr ${MAC_C} dev weft.1 nud permanent`,
      `replace fdb ${MAC_C} dst 198.51.100.13 dev weft.1`,
      "replace route 10.244.3.0/24 via 10.244.3.0 dev weft.1 onlink proto 87",
      "delete route 10.244.2.0/24 via 10.244.2.0 dev weft.1 proto 87",
      "delete neigh 10.244.2.0 dev weft.1",
      `delete fdb ${MAC_B} dst 192.0.2.12 dev weft.1`,
    ]);
  });

  test("a peer whose VTEP MAC changed (reinstall) gets new ARP/FDB and the old FDB entry goes", async () => {
    const { nl, backend } = node();
    await backend.up();
    backend.apply([peerB]);
    nl.takeOps();
    backend.apply([{ ...peerB, vtepMac: MAC_A }]);
    expect(nl.takeOps()).toEqual([
      `replace neigh 10.244.2.0 lladdr ${MAC_A} dev weft.1 nud permanent`,
      `replace fdb ${MAC_A} dst 192.0.2.12 dev weft.1`,
      `delete fdb ${MAC_B} dst 192.0.2.12 dev weft.1`,
    ]);
  });

  test("DirectRouting routes on-link peers via their public IP on the underlay, others over vxlan", async () => {
    const { nl, backend } = node({ directRouting: true });
    await backend.up();
    nl.takeOps();
    backend.apply([peerB, peerC]);
    expect(nl.takeOps()).toEqual([
      `replace neigh 10.244.3.0 lladdr ${MAC_C} dev weft.1 nud permanent`,
      `replace fdb ${MAC_C} dst 198.51.100.13 dev weft.1`,
      "replace route 10.244.2.0/24 via 192.0.2.12 dev eth0 proto 87",
      "replace route 10.244.3.0/24 via 10.244.3.0 dev weft.1 onlink proto 87",
    ]);
    expect(backend.apply([peerB, peerC]).changes).toBe(0);
  });

  test("foreign routes, neighbours on other devices and other protocols are never touched", async () => {
    const { nl, backend } = node();
    nl.outside((n) => {
      n.addLinkRaw({ name: "cni0", kind: "bridge" });
      n.addAddress({ dev: "cni0", cidr: "10.244.1.1/24" });
      n.replaceRoute({ dst: "10.244.9.0/24", gateway: "192.0.2.1", dev: "eth0", protocol: 4 }); // static, inside Network
      n.replaceRoute({ dst: "203.0.113.0/24", gateway: "192.0.2.1", dev: "eth0", protocol: 87 }); // our proto, outside Network
      n.replaceNeighbor({ dev: "eth0", ip: "192.0.2.1", mac: "00:11:22:33:44:55" });
    });
    const before = nl.dump();
    await backend.up();
    backend.apply([]);
    const ops = nl.takeOps();
    expect(ops.every((o) => o.includes("weft.1"))).toBe(true);
    const after = nl.dump();
    for (const line of before) expect(after).toContain(line);
  });

  test("stale weft routes/ARP/FDB no lease justifies are removed on the first apply", async () => {
    const { nl, backend } = node();
    await backend.up();
    backend.apply([peerB, peerC]);
    nl.takeOps();
    // a restart with c's lease expired meanwhile: a fresh backend over the same kernel
    const again = createVxlanBackend(
      { type: "vxlan", vni: 1, port: 8472, directRouting: false },
      { nl, publicIp: "192.0.2.11", underlayIface: "eth0", underlayMtu: 1500, ownSubnet: "10.244.1.0/24", network: "10.244.0.0/16", vtepMac: own, logger: silentLogger },
    );
    await again.up();
    expect(nl.takeOps()).toEqual([]); // adopted, not recreated
    again.apply([peerB]);
    expect(nl.takeOps()).toEqual([
      "delete route 10.244.3.0/24 via 10.244.3.0 dev weft.1 proto 87",
      "delete neigh 10.244.3.0 dev weft.1",
      `delete fdb ${MAC_C} dst 198.51.100.13 dev weft.1`,
    ]);
  });

  test("a device with a different MAC is recreated, and a deleted one comes back with its entries", async () => {
    const { nl, backend } = node();
    nl.outside((n) => n.createVxlan({ name: "weft.1", vni: 1, local: "192.0.2.11", port: 8472, mtu: 1450, mac: MAC_A }));
    await backend.up();
    expect(nl.takeOps()).toEqual([
      "delete link weft.1",
      `add link weft.1 type vxlan id 1 local 192.0.2.11 dstport 8472 nolearning mtu 1450 address ${own} dev-index 2`,
      "add address 10.244.1.0/32 dev weft.1",
    ]);
    backend.apply([peerB]);
    nl.outside((n) => n.deleteLink("weft.1"));
    nl.takeOps();
    const r = backend.apply([peerB]);
    expect(r.changes).toBe(5);
    expect(nl.takeOps()).toEqual([
      `add link weft.1 type vxlan id 1 local 192.0.2.11 dstport 8472 nolearning mtu 1450 address ${own} dev-index 2`,
      "add address 10.244.1.0/32 dev weft.1",
      `replace neigh 10.244.2.0 lladdr ${MAC_B} dev weft.1 nud permanent`,
      `replace fdb ${MAC_B} dst 192.0.2.12 dev weft.1`,
      "replace route 10.244.2.0/24 via 10.244.2.0 dev weft.1 onlink proto 87",
    ]);
  });

  test("a device with a different VNI (when the Netlink reports it) is recreated; a wrong MTU is fixed in place", async () => {
    const { nl, backend } = node();
    nl.outside((n) => n.createVxlan({ name: "weft.1", vni: 7, local: "192.0.2.11", port: 8472, mtu: 1450, mac: own }));
    await backend.up();
    expect(nl.takeOps()[0]).toBe("delete link weft.1");
    nl.outside((n) => n.setMtu("weft.1", 1300));
    backend.apply([]);
    expect(nl.takeOps()).toEqual(["set link weft.1 mtu 1450"]);
  });

  test("getLink reports the VXLAN parameters weft created the device with (what the adoption check reads)", async () => {
    const { nl, backend } = node();
    await backend.up();
    expect(nl.getLink("weft.1")?.vxlan).toEqual({ vni: 1, local: "192.0.2.11", port: 8472, learning: false });
    expect(nl.getLink("eth0")?.vxlan).toBeUndefined();
    expect(nl.listLinks().find((l) => l.name === "weft.1")?.vxlan).toEqual({ vni: 1, local: "192.0.2.11", port: 8472, learning: false });
  });

  // Each case: an existing weft.1 with our MAC and MTU that differs in one VXLAN
  // parameter. It must be deleted and created again with the configured parameters.
  const misconfigured: [string, Parameters<RecordingNetlink["addLinkRaw"]>[0]["vxlan"], string][] = [
    ["a wrong VNI", { vni: 2, local: "192.0.2.11", port: 8472, learning: false }, "VNI 2 is not 1"],
    ["a wrong port", { vni: 1, local: "192.0.2.11", port: 4789, learning: false }, "port 4789 is not 8472"],
    ["a wrong local", { vni: 1, local: "192.0.2.99", port: 8472, learning: false }, "local 192.0.2.99 is not 192.0.2.11"],
    ["no local", { vni: 1, port: 8472, learning: false }, "local unset is not 192.0.2.11"],
    ["learning on", { vni: 1, local: "192.0.2.11", port: 8472, learning: true }, "learning is on"],
  ];
  for (const [what, vxlan, why] of misconfigured) {
    test(`an existing weft.1 with ${what} is recreated, logging why`, async () => {
      const lines: string[] = [];
      const nl = new RecordingNetlink();
      nl.outside((n) => {
        n.addLinkRaw({ name: "eth0", mtu: 1500 });
        n.addLinkRaw({ name: "weft.1", kind: "vxlan", mtu: 1450, mac: own, up: true, vxlan });
      });
      const backend = createVxlanBackend(
        { type: "vxlan", vni: 1, port: 8472, directRouting: false },
        { nl, publicIp: "192.0.2.11", underlayIface: "eth0", underlayMtu: 1500, ownSubnet: "10.244.1.0/24", network: "10.244.0.0/16", vtepMac: own, logger: createLogger({ write: (l) => lines.push(l) }) },
      );
      await backend.up();
      expect(nl.takeOps()).toEqual([
        "delete link weft.1",
        `add link weft.1 type vxlan id 1 local 192.0.2.11 dstport 8472 nolearning mtu 1450 address ${own} dev-index 2`,
        "add address 10.244.1.0/32 dev weft.1",
      ]);
      expect(lines.some((l) => l.includes("WARN") && l.includes(`recreating weft.1: ${why}`))).toBe(true);
      expect(nl.getLink("weft.1")?.vxlan).toEqual({ vni: 1, local: "192.0.2.11", port: 8472, learning: false });
    });
  }

  test("an existing weft.1 matching in every reported parameter is adopted with zero changes", async () => {
    const nl = new RecordingNetlink();
    nl.outside((n) => {
      n.addLinkRaw({ name: "eth0", mtu: 1500 });
      n.addLinkRaw({ name: "weft.1", kind: "vxlan", mtu: 1450, mac: own, up: true, vxlan: { vni: 1, local: "192.0.2.11", port: 8472, learning: false } });
      n.addAddress({ dev: "weft.1", cidr: "10.244.1.0/32" });
    });
    const backend = createVxlanBackend(
      { type: "vxlan", vni: 1, port: 8472, directRouting: false },
      { nl, publicIp: "192.0.2.11", underlayIface: "eth0", underlayMtu: 1500, ownSubnet: "10.244.1.0/24", network: "10.244.0.0/16", vtepMac: own, logger: silentLogger },
    );
    await backend.up();
    expect(backend.apply([]).changes).toBe(0);
    expect(nl.takeOps()).toEqual([]);
  });

  test("a renumbered own subnet replaces the lease address", async () => {
    const { nl, backend } = node();
    await backend.up();
    nl.outside((n) => n.addAddress({ dev: "weft.1", cidr: "10.244.7.0/32" }));
    nl.takeOps();
    backend.apply([]);
    expect(nl.takeOps()).toEqual(["delete address 10.244.7.0/32 dev weft.1"]);
  });

  test("bad peer records are reported and skipped, not sent to the kernel", async () => {
    const { nl, backend } = node();
    await backend.up();
    nl.takeOps();
    const r = backend.apply([
      { nodeName: "x", subnet: "10.99.0.0/24", publicIp: "192.0.2.20", vtepMac: MAC_A },
      { nodeName: "y", subnet: "10.244.5.0/24", publicIp: "192.0.2.21" },
      { nodeName: "z", subnet: "10.244.6.0/24", publicIp: "nope", vtepMac: MAC_A },
      peerB,
      { nodeName: "b2", subnet: "10.244.2.0/24", publicIp: "192.0.2.22", vtepMac: MAC_C },
    ]);
    expect(r.problems).toHaveLength(4);
    expect(r.problems.join("\n")).toContain("peer x: skipped, subnet \"10.99.0.0/24\": not inside Network 10.244.0.0/16");
    expect(r.problems.join("\n")).toContain("peer y: skipped, vtepMac undefined");
    expect(r.problems.join("\n")).toContain("peer z: skipped, publicIp \"nope\"");
    expect(r.problems.join("\n")).toContain("peer b2: skipped, subnet 10.244.2.0/24 is also claimed by b");
    expect(nl.takeOps()).toEqual([
      `replace neigh 10.244.2.0 lladdr ${MAC_B} dev weft.1 nud permanent`,
      `replace fdb ${MAC_B} dst 192.0.2.12 dev weft.1`,
      "replace route 10.244.2.0/24 via 10.244.2.0 dev weft.1 onlink proto 87",
    ]);
  });

  test("a failing operation is reported and the others still run; the next apply retries it", async () => {
    const { nl, backend } = node();
    await backend.up();
    nl.takeOps();
    nl.failOn(/replace fdb .* 192\.0\.2\.12/, "Operation not permitted");
    const r = backend.apply([peerB, peerC]);
    expect(r.errors).toEqual([`replace fdb ${MAC_B} dst 192.0.2.12 dev weft.1: Operation not permitted`]);
    expect(r.changes).toBe(5);
    nl.takeOps();
    expect(backend.apply([peerB, peerC]).changes).toBe(1);
    expect(nl.takeOps()).toEqual([`replace fdb ${MAC_B} dst 192.0.2.12 dev weft.1`]);
  });

  test("a peer whose public IP changed gets its FDB entry replaced in one operation, never a second destination", async () => {
    const { nl, backend } = node();
    await backend.up();
    backend.apply([peerB]);
    nl.takeOps();
    expect(backend.apply([{ ...peerB, publicIp: "192.0.2.99" }]).errors).toEqual([]);
    expect(nl.takeOps()).toEqual([`replace fdb ${MAC_B} dst 192.0.2.99 dev weft.1`]);
    expect(nl.listFdb("weft.1")).toEqual([{ dev: "weft.1", mac: MAC_B, dst: "192.0.2.99" }]);
  });

  test("other destinations of a wanted MAC on weft.1 are deleted: one destination per MAC", async () => {
    const { nl, backend } = node();
    await backend.up();
    backend.apply([peerB]);
    nl.outside((n) => n.appendFdbRaw({ dev: "weft.1", mac: MAC_B, dst: "192.0.2.66" }));
    nl.takeOps();
    backend.apply([peerB]);
    expect(nl.takeOps()).toEqual([`delete fdb ${MAC_B} dst 192.0.2.66 dev weft.1`]);
    expect(nl.listFdb("weft.1")).toEqual([{ dev: "weft.1", mac: MAC_B, dst: "192.0.2.12" }]);
  });

  test("peers sharing a VTEP MAC, with each other or with this node, are all skipped and reported with every claimant", async () => {
    const { nl, backend } = node();
    await backend.up();
    backend.apply([peerB]);
    nl.takeOps();
    const thief = { nodeName: "a-thief", subnet: "10.244.9.0/24", publicIp: "192.0.2.66", vtepMac: MAC_B };
    const mimic = { nodeName: "m", subnet: "10.244.8.0/24", publicIp: "192.0.2.67", vtepMac: own };
    const r = backend.apply([peerB, thief, mimic, peerC]);
    expect(r.problems).toEqual([
      `VTEP MAC ${MAC_B} is claimed by a-thief (192.0.2.66), b (192.0.2.12): skipped, a MAC must belong to one node or the kernel would send one node's traffic to the other (a cloned node or a forged lease)`,
      `VTEP MAC ${own} is claimed by m (192.0.2.67) and this node: skipped, a MAC must belong to one node or the kernel would send one node's traffic to the other (a cloned node or a forged lease)`,
    ]);
    // b's entries go too: with two claimants weft cannot tell which one is honest.
    expect(nl.dump().filter((l) => /^(route 10|neigh|fdb)/.test(l))).toEqual([
      `fdb ${MAC_C} dst 198.51.100.13 dev weft.1`,
      `neigh 10.244.3.0 lladdr ${MAC_C} dev weft.1`,
      "route 10.244.3.0/24 via 10.244.3.0 dev weft.1 onlink proto 87",
    ]);
  });

  test("a device named weft.1 that is not a VXLAN device is never deleted: up() names it, apply() reports it and changes nothing", async () => {
    const { nl, backend } = node();
    nl.outside((n) => n.createBridge("weft.1"));
    const message = "weft.1 exists but is a bridge device, not weft's VXLAN device; weft does not delete or program devices it did not make: delete or rename it (ip link del weft.1), or set another Backend.VNI";
    await expect(backend.up()).rejects.toThrow(`start vxlan backend: ${message}`);
    expect(backend.apply([peerB])).toEqual({ changes: 0, errors: [], problems: [message] });
    expect(nl.takeOps()).toEqual([]);
    expect(nl.getLink("weft.1")?.kind).toBe("bridge");
    nl.outside((n) => n.addLinkRaw({ name: "weft.2", mtu: 1500 }));
    const other = createVxlanBackend(
      { type: "vxlan", vni: 2, port: 8472, directRouting: false },
      { nl, publicIp: "192.0.2.11", underlayIface: "eth0", underlayMtu: 1500, ownSubnet: "10.244.1.0/24", network: "10.244.0.0/16", vtepMac: own, logger: silentLogger },
    );
    await expect(other.up()).rejects.toThrow("weft.2 exists but is a device of no reported kind, not weft's VXLAN device");
    expect(nl.takeOps()).toEqual([]);
  });

  test("a foreign route for a peer's subnet is reported and left; the route on weft.1 follows once it is gone", async () => {
    const { nl, backend } = node();
    nl.outside((n) => n.addRouteRaw({ dst: "10.244.2.0/24", gateway: "192.0.2.1", dev: "eth0", protocol: 3 }));
    await backend.up();
    nl.takeOps();
    const r = backend.apply([peerB]);
    expect(r.problems).toEqual(["route 10.244.2.0/24 not installed: the kernel has a route weft did not make for it (10.244.2.0/24 via 192.0.2.1 dev eth0 proto 3); weft never replaces foreign routes, delete it to let weft route 10.244.2.0/24"]);
    expect(nl.takeOps()).toEqual([`replace neigh 10.244.2.0 lladdr ${MAC_B} dev weft.1 nud permanent`, `replace fdb ${MAC_B} dst 192.0.2.12 dev weft.1`]);
    expect(nl.dump()).toContain("route 10.244.2.0/24 via 192.0.2.1 dev eth0 proto 3");
  });

  test("problems are logged once when they appear and once when resolved", async () => {
    const lines: string[] = [];
    const nl = new RecordingNetlink();
    nl.outside((n) => n.addLinkRaw({ name: "eth0" }));
    const logger = createLogger({ write: (l) => lines.push(l) });
    const backend = createVxlanBackend({ type: "vxlan", vni: 1, port: 8472, directRouting: false }, { nl, publicIp: "192.0.2.11", underlayIface: "eth0", underlayMtu: 1500, ownSubnet: "10.244.1.0/24", network: "10.244.0.0/16", logger });
    await backend.up();
    const bad = { nodeName: "y", subnet: "10.244.5.0/24", publicIp: "192.0.2.21" };
    backend.apply([bad]);
    backend.apply([bad]);
    backend.apply([]);
    expect(lines.filter((l) => l.includes("peer y")).map((l) => l.split(" ")[1])).toEqual(["WARN", "INFO"]);
  });
});

describe("stableMac", () => {
  test("is deterministic, unicast and locally administered", () => {
    const seeds = ["a", "node-1", "7f3a9c", "ü"];
    for (const s of seeds) {
      const m = stableMac(s);
      expect(m).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      expect(stableMac(s)).toBe(m);
      const b0 = parseInt(m.slice(0, 2), 16);
      expect(b0 & 1).toBe(0);
      expect(b0 & 2).toBe(2);
    }
    expect(new Set(seeds.map(stableMac)).size).toBe(seeds.length);
  });
  test("rejects an empty seed", () => {
    expect(() => stableMac("")).toThrow("seed is empty");
  });
});
