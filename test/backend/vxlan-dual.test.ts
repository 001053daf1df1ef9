/**
 * vxlan with IPv6: which device carries which pod family to which peer (weft.1 over the
 * IPv4 underlay, weft-v6.1 over the IPv6 one), as recorded operations.
 */
import { describe, expect, test } from "bun:test";
import { RecordingNetlink } from "../fakes/netlink.ts";
import { createVxlanBackend } from "../../src/backend/vxlan.ts";
import type { BackendDeps, PeerLease } from "../../src/backend/backend.ts";
import { silentLogger } from "../../src/log.ts";

const own = "be:ef:00:00:00:01";
const MAC_B = "0a:00:00:00:00:02";
const MAC_C = "0a:00:00:00:00:03";
const MAC_D = "0a:00:00:00:00:04";

function node(opts: { v4?: boolean; v6?: boolean; pods4?: boolean; directRouting?: boolean } = {}) {
  const { v4 = true, v6 = true, pods4 = true } = opts;
  const nl = new RecordingNetlink();
  nl.outside((n) => {
    n.addLinkRaw({ name: "eth0", mtu: 1500 });
    if (v4) n.addAddress({ dev: "eth0", cidr: "192.0.2.11/24" });
    if (v6) n.addAddress({ dev: "eth0", cidr: "2001:db8::11/64" });
  });
  const deps: BackendDeps = {
    nl,
    underlayIface: "eth0",
    underlayMtu: 1500,
    ...(v4 ? { publicIp: "192.0.2.11" } : {}),
    ...(v6 ? { publicIpv6: "2001:db8::11" } : {}),
    ...(pods4 ? { ownSubnet: "10.244.1.0/24", network: "10.244.0.0/16" } : {}),
    ownIpv6Subnet: "fd00:10:244:1::/64",
    ipv6Network: "fd00:10:244::/56",
    vtepMac: own,
    logger: silentLogger,
  };
  const backend = createVxlanBackend({ type: "vxlan", vni: 1, port: 8472, directRouting: opts.directRouting ?? false }, deps);
  return { nl, backend };
}

/** Dual underlay, dual pods. */
const peerB: PeerLease = { nodeName: "b", subnet: "10.244.2.0/24", ipv6Subnet: "fd00:10:244:2::/64", publicIp: "192.0.2.12", publicIpv6: "2001:db8::12", vtepMac: MAC_B };
/** IPv4 underlay only, dual pods. */
const peerC: PeerLease = { nodeName: "c", subnet: "10.244.3.0/24", ipv6Subnet: "fd00:10:244:3::/64", publicIp: "192.0.2.13", vtepMac: MAC_C };
/** IPv6 underlay only, dual pods. */
const peerD: PeerLease = { nodeName: "d", subnet: "10.244.4.0/24", ipv6Subnet: "fd00:10:244:4::/64", publicIpv6: "2001:db8::14", vtepMac: MAC_D };

describe("vxlan with IPv6 pods", () => {
  test("a node with both underlays gets weft.1 (underlay − 50) and weft-v6.1 (underlay − 70), both with the own subnets' addresses; pods get the smaller MTU", async () => {
    const { nl, backend } = node();
    expect(await backend.up()).toEqual({ type: "vxlan", vtepMac: own });
    expect(backend.mtu()).toBe(1430);
    expect(nl.takeOps()).toEqual([
      `add link weft.1 type vxlan id 1 local 192.0.2.11 dstport 8472 nolearning mtu 1450 address ${own} dev-index 2`,
      "add address 10.244.1.0/32 dev weft.1",
      "add address fd00:10:244:1::/128 dev weft.1",
      `add link weft-v6.1 type vxlan id 1 local 2001:db8::11 dstport 8472 nolearning mtu 1430 address ${own} dev-index 2`,
      "add address 10.244.1.0/32 dev weft-v6.1",
      "add address fd00:10:244:1::/128 dev weft-v6.1",
    ]);
  });

  test("each pod family goes over the underlay of its own family where both ends have one, else over the other; a second apply changes nothing", async () => {
    const { nl, backend } = node();
    await backend.up();
    nl.takeOps();
    expect(backend.apply([peerB, peerC, peerD])).toEqual({ changes: 16, errors: [], problems: [] });
    expect(nl.takeOps()).toEqual([
      // Per device, neighbours then FDB; routes last.
      // weft.1: b's IPv4 pods; c's IPv4 and IPv6 pods (c has no IPv6 underlay).
      `replace neigh 10.244.2.0 lladdr ${MAC_B} dev weft.1 nud permanent`,
      `replace neigh 10.244.3.0 lladdr ${MAC_C} dev weft.1 nud permanent`,
      `replace neigh fd00:10:244:3:: lladdr ${MAC_C} dev weft.1 nud permanent`,
      `replace fdb ${MAC_B} dst 192.0.2.12 dev weft.1`,
      `replace fdb ${MAC_C} dst 192.0.2.13 dev weft.1`,
      // weft-v6.1: b's IPv6 pods; d's IPv4 and IPv6 pods (d has no IPv4 underlay).
      `replace neigh fd00:10:244:2:: lladdr ${MAC_B} dev weft-v6.1 nud permanent`,
      `replace neigh 10.244.4.0 lladdr ${MAC_D} dev weft-v6.1 nud permanent`,
      `replace neigh fd00:10:244:4:: lladdr ${MAC_D} dev weft-v6.1 nud permanent`,
      `replace fdb ${MAC_B} dst 2001:db8::12 dev weft-v6.1`,
      `replace fdb ${MAC_D} dst 2001:db8::14 dev weft-v6.1`,
      "replace route 10.244.2.0/24 via 10.244.2.0 dev weft.1 onlink proto 87",
      "replace route fd00:10:244:2::/64 via fd00:10:244:2:: dev weft-v6.1 onlink proto 87",
      "replace route 10.244.3.0/24 via 10.244.3.0 dev weft.1 onlink proto 87",
      "replace route fd00:10:244:3::/64 via fd00:10:244:3:: dev weft.1 onlink proto 87",
      "replace route 10.244.4.0/24 via 10.244.4.0 dev weft-v6.1 onlink proto 87",
      "replace route fd00:10:244:4::/64 via fd00:10:244:4:: dev weft-v6.1 onlink proto 87",
    ]);
    expect(backend.apply([peerD, peerC, peerB])).toEqual({ changes: 0, errors: [], problems: [] });
    expect(nl.takeOps()).toEqual([]);
  });

  test("without an IPv6 underlay address only weft.1 exists, and it carries the IPv6 pods of every peer", async () => {
    const { nl, backend } = node({ v6: false });
    await backend.up();
    expect(backend.mtu()).toBe(1450);
    expect(nl.takeOps()).toEqual([`add link weft.1 type vxlan id 1 local 192.0.2.11 dstport 8472 nolearning mtu 1450 address ${own} dev-index 2`, "add address 10.244.1.0/32 dev weft.1", "add address fd00:10:244:1::/128 dev weft.1"]);
    expect(backend.apply([peerB])).toEqual({ changes: 5, errors: [], problems: [] });
    expect(nl.dump().filter((l) => l.includes("weft"))).toEqual([
      "address 10.244.1.0/32 dev weft.1",
      "address fd00:10:244:1::/128 dev weft.1",
      `fdb ${MAC_B} dst 192.0.2.12 dev weft.1`,
      `link weft.1 vxlan mtu 1450 ${own} up`,
      `neigh 10.244.2.0 lladdr ${MAC_B} dev weft.1`,
      `neigh fd00:10:244:2:: lladdr ${MAC_B} dev weft.1`,
      "route 10.244.2.0/24 via 10.244.2.0 dev weft.1 onlink proto 87",
      "route fd00:10:244:2::/64 via fd00:10:244:2:: dev weft.1 onlink proto 87 metric 1024",
    ]);
  });

  test("IPv6-only pods over an IPv6-only underlay: weft-v6.1 alone; a weft.1 left from an IPv4 past is removed", async () => {
    const { nl, backend } = node({ v4: false, pods4: false });
    nl.outside((n) => n.createVxlan({ name: "weft.1", vni: 1, local: "192.0.2.11", port: 8472, mtu: 1450 }));
    await backend.up();
    expect(nl.takeOps()).toEqual([
      "delete link weft.1",
      `add link weft-v6.1 type vxlan id 1 local 2001:db8::11 dstport 8472 nolearning mtu 1430 address ${own} dev-index 2`,
      "add address fd00:10:244:1::/128 dev weft-v6.1",
    ]);
    expect(backend.apply([peerD, peerC])).toEqual({ changes: 3, errors: [], problems: ["peer c: no route to fd00:10:244:3::/64: no underlay family in common (this node has only an IPv6 underlay address, the peer only an IPv4 underlay address)"] });
    expect(nl.takeOps()).toEqual([
      `replace neigh fd00:10:244:4:: lladdr ${MAC_D} dev weft-v6.1 nud permanent`,
      `replace fdb ${MAC_D} dst 2001:db8::14 dev weft-v6.1`,
      "replace route fd00:10:244:4::/64 via fd00:10:244:4:: dev weft-v6.1 onlink proto 87",
    ]);
  });

  test("DirectRouting: a peer whose IPv6 address is on-link gets a plain IPv6 route via it, the IPv4 one via its IPv4 address", async () => {
    const { nl, backend } = node({ directRouting: true });
    await backend.up();
    nl.takeOps();
    backend.apply([peerB]);
    expect(nl.takeOps()).toEqual(["replace route 10.244.2.0/24 via 192.0.2.12 dev eth0 proto 87", "replace route fd00:10:244:2::/64 via 2001:db8::12 dev eth0 proto 87"]);
  });

  test("the kernel's link-local address on the device is left alone; any other stray address goes", async () => {
    const { nl, backend } = node();
    await backend.up();
    nl.outside((n) => {
      n.addAddress({ dev: "weft.1", cidr: "fe80::bcef:ff:fe00:1/64" });
      n.addAddress({ dev: "weft-v6.1", cidr: "fd00:10:244:9::/128" });
    });
    nl.takeOps();
    expect(backend.apply([])).toEqual({ changes: 1, errors: [], problems: [] });
    expect(nl.takeOps()).toEqual(["delete address fd00:10:244:9::/128 dev weft-v6.1"]);
  });

  test("an IPv6 peer route deleted by hand is put back by the next apply; a foreign IPv6 route to a peer subnet is reported, never replaced", async () => {
    const { nl, backend } = node();
    await backend.up();
    backend.apply([peerB, peerC]);
    nl.outside((n) => n.deleteRoute({ dst: "fd00:10:244:3::/64" }));
    nl.takeOps();
    expect(backend.apply([peerB, peerC]).changes).toBe(1);
    expect(nl.takeOps()).toEqual(["replace route fd00:10:244:3::/64 via fd00:10:244:3:: dev weft.1 onlink proto 87"]);
    nl.outside((n) => n.deleteRoute({ dst: "fd00:10:244:2::/64" }));
    nl.addRouteRaw({ dst: "fd00:10:244:2::/64", gateway: "2001:db8::1", dev: "eth0", protocol: 4, priority: 1024 });
    const r = backend.apply([peerB, peerC]);
    expect(r.problems).toEqual([
      "route fd00:10:244:2::/64 not installed: the kernel has a route weft did not make for it (fd00:10:244:2::/64 via 2001:db8::1 dev eth0 proto 4 metric 1024); weft never replaces foreign routes, delete it to let weft route fd00:10:244:2::/64",
    ]);
    expect(nl.takeOps()).toEqual([]);
  });
});
