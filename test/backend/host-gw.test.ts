import { describe, expect, test } from "bun:test";
import { RecordingNetlink } from "../fakes/netlink.ts";
import { createHostGwBackend } from "../../src/backend/host-gw.ts";
import { silentLogger } from "../../src/log.ts";

function node() {
  const nl = new RecordingNetlink();
  nl.outside((n) => {
    n.addLinkRaw({ name: "eth0", mtu: 9000 });
    n.addAddress({ dev: "eth0", cidr: "192.0.2.11/24" });
    n.replaceRoute({ dst: "0.0.0.0/0", gateway: "192.0.2.1", dev: "eth0", protocol: 4 });
  });
  const backend = createHostGwBackend({ nl, publicIp: "192.0.2.11", underlayIface: "eth0", underlayMtu: 9000, ownSubnet: "10.244.1.0/24", network: "10.244.0.0/16", logger: silentLogger });
  return { nl, backend };
}

const b = { nodeName: "b", subnet: "10.244.2.0/24", publicIp: "192.0.2.12" };
const c = { nodeName: "c", subnet: "10.244.3.0/24", publicIp: "192.0.2.13" };
const far = { nodeName: "far", subnet: "10.244.4.0/24", publicIp: "198.51.100.4" };

describe("host-gw backend", () => {
  test("routes each peer subnet via its public IP on the underlay; MTU is the underlay's", async () => {
    const { nl, backend } = node();
    expect(await backend.up()).toEqual({ type: "host-gw" });
    expect(backend.mtu()).toBe(9000);
    expect(backend.apply([b, c])).toEqual({ changes: 2, errors: [], problems: [] });
    expect(nl.takeOps()).toEqual(["replace route 10.244.2.0/24 via 192.0.2.12 dev eth0 proto 87", "replace route 10.244.3.0/24 via 192.0.2.13 dev eth0 proto 87"]);
    expect(backend.apply([b, c]).changes).toBe(0);
    expect(nl.takeOps()).toEqual([]);
  });

  test("a peer that is not on-link is reported as a problem and gets no route", async () => {
    const { nl, backend } = node();
    await backend.up();
    const r = backend.apply([b, far]);
    expect(r.changes).toBe(1);
    expect(r.problems).toEqual([
      "peer far: no route to 10.244.4.0/24: host-gw needs 198.51.100.4 on the same L2 network as eth0 (on-link prefixes: 192.0.2.11/24); use vxlan for routed underlays",
    ]);
    expect(nl.takeOps()).toEqual(["replace route 10.244.2.0/24 via 192.0.2.12 dev eth0 proto 87"]);
  });

  test("a peer that moved to another address gets its route replaced; a departed peer's route is deleted", async () => {
    const { nl, backend } = node();
    await backend.up();
    backend.apply([b, c]);
    nl.takeOps();
    backend.apply([{ ...b, publicIp: "192.0.2.99" }]);
    expect(nl.takeOps()).toEqual(["replace route 10.244.2.0/24 via 192.0.2.99 dev eth0 proto 87", "delete route 10.244.3.0/24 via 192.0.2.13 dev eth0 proto 87"]);
  });

  test("the default route and other protocols' routes survive; stale weft routes go at start", async () => {
    const { nl, backend } = node();
    nl.outside((n) => {
      n.replaceRoute({ dst: "10.244.8.0/24", gateway: "192.0.2.8", dev: "eth0" }); // stale weft route (proto 87)
      n.replaceRoute({ dst: "10.244.9.0/24", gateway: "192.0.2.9", dev: "eth0", protocol: 3 }); // boot proto, not ours
    });
    await backend.up();
    backend.apply([b]);
    expect(nl.takeOps()).toEqual(["replace route 10.244.2.0/24 via 192.0.2.12 dev eth0 proto 87", "delete route 10.244.8.0/24 via 192.0.2.8 dev eth0 proto 87"]);
    const routes = nl.dump().filter((l) => l.startsWith("route "));
    expect(routes).toContain("route 0.0.0.0/0 via 192.0.2.1 dev eth0 proto 4");
    expect(routes).toContain("route 10.244.9.0/24 via 192.0.2.9 dev eth0 proto 3");
  });

  test("a foreign route for a peer's subnet (another protocol, metric 0, any type) is never replaced: reported, left as it is", async () => {
    const { nl, backend } = node();
    nl.outside((n) => {
      n.addRouteRaw({ dst: "10.244.2.0/24", gateway: "192.0.2.1", dev: "eth0", protocol: 4 }); // an operator's static route
      n.addRouteRaw({ dst: "10.244.3.0/24", protocol: 3, type: 6 }); // blackhole
    });
    await backend.up();
    const before = nl.dump();
    const r = backend.apply([b, c]);
    expect(r.changes).toBe(0);
    expect(r.problems).toEqual([
      "route 10.244.2.0/24 not installed: the kernel has a route weft did not make for it (10.244.2.0/24 via 192.0.2.1 dev eth0 proto 4); weft never replaces foreign routes, delete it to let weft route 10.244.2.0/24",
      "route 10.244.3.0/24 not installed: the kernel has a route weft did not make for it (blackhole 10.244.3.0/24 proto 3); weft never replaces foreign routes, delete it to let weft route 10.244.3.0/24",
    ]);
    expect(nl.takeOps()).toEqual([]);
    expect(nl.dump()).toEqual(before);
    // Removed by its owner: weft routes the subnet on the next apply.
    nl.outside((n) => n.deleteRoute({ dst: "10.244.2.0/24", protocol: 4 }));
    expect(backend.apply([b, c]).changes).toBe(1);
    expect(nl.takeOps()).toEqual(["replace route 10.244.2.0/24 via 192.0.2.12 dev eth0 proto 87"]);
  });

  test("a foreign route with another metric is not in the way (a replace cannot take it over) and stays", async () => {
    const { nl, backend } = node();
    nl.outside((n) => n.addRouteRaw({ dst: "10.244.2.0/24", gateway: "192.0.2.1", dev: "eth0", protocol: 4, priority: 100 }));
    await backend.up();
    expect(backend.apply([b])).toEqual({ changes: 1, errors: [], problems: [] });
    expect(nl.dump()).toContain("route 10.244.2.0/24 via 192.0.2.1 dev eth0 proto 4 metric 100");
    expect(nl.dump()).toContain("route 10.244.2.0/24 via 192.0.2.12 dev eth0 proto 87");
  });

  test("a route deleted by an outsider is put back by the next apply", async () => {
    const { nl, backend } = node();
    await backend.up();
    backend.apply([b]);
    nl.outside((n) => n.deleteRoute({ dst: "10.244.2.0/24" }));
    nl.takeOps();
    expect(backend.apply([b]).changes).toBe(1);
    expect(nl.takeOps()).toEqual(["replace route 10.244.2.0/24 via 192.0.2.12 dev eth0 proto 87"]);
  });

  test("up fails clearly without the underlay interface", async () => {
    const nl = new RecordingNetlink();
    const backend = createHostGwBackend({ nl, publicIp: "192.0.2.11", underlayIface: "eth9", underlayMtu: 1500, ownSubnet: "10.244.1.0/24", network: "10.244.0.0/16", logger: silentLogger });
    await expect(backend.up()).rejects.toThrow("start host-gw backend: underlay interface eth9 not found");
  });
});

describe("host-gw backend with IPv6 pods", () => {
  function dual(opts: { pods4?: boolean } = {}) {
    const nl = new RecordingNetlink();
    nl.outside((n) => {
      n.addLinkRaw({ name: "eth0", mtu: 1500 });
      n.addAddress({ dev: "eth0", cidr: "192.0.2.11/24" });
      n.addAddress({ dev: "eth0", cidr: "2001:db8::11/64" });
      n.addAddress({ dev: "eth0", cidr: "fe80::11/64" });
    });
    const backend = createHostGwBackend({
      nl,
      publicIp: "192.0.2.11",
      publicIpv6: "2001:db8::11",
      underlayIface: "eth0",
      underlayMtu: 1500,
      ...(opts.pods4 === false ? {} : { ownSubnet: "10.244.1.0/24", network: "10.244.0.0/16" }),
      ownIpv6Subnet: "fd00:10:244:1::/64",
      ipv6Network: "fd00:10:244::/56",
      logger: silentLogger,
    });
    return { nl, backend };
  }
  const b6 = { nodeName: "b", subnet: "10.244.2.0/24", ipv6Subnet: "fd00:10:244:2::/64", publicIp: "192.0.2.12", publicIpv6: "2001:db8::12" };
  const noV6 = { nodeName: "c", subnet: "10.244.3.0/24", ipv6Subnet: "fd00:10:244:3::/64", publicIp: "192.0.2.13" };
  const farV6 = { nodeName: "far", subnet: "10.244.4.0/24", ipv6Subnet: "fd00:10:244:4::/64", publicIp: "192.0.2.14", publicIpv6: "2001:db8:1::14" };

  test("each family's subnet is routed via the peer's address of that family; a second apply changes nothing", async () => {
    const { nl, backend } = dual();
    await backend.up();
    expect(backend.apply([b6])).toEqual({ changes: 2, errors: [], problems: [] });
    expect(nl.takeOps()).toEqual(["replace route 10.244.2.0/24 via 192.0.2.12 dev eth0 proto 87", "replace route fd00:10:244:2::/64 via 2001:db8::12 dev eth0 proto 87"]);
    expect(backend.apply([b6]).changes).toBe(0);
  });

  test("a peer without an IPv6 address, or whose IPv6 address is not on-link, gets its IPv4 route only and a problem for the IPv6 subnet", async () => {
    const { nl, backend } = dual();
    await backend.up();
    const r = backend.apply([noV6, farV6]);
    expect(r.problems).toEqual([
      "peer c: no route to fd00:10:244:3::/64: host-gw routes it via the peer's IPv6 address, and its lease has none; use vxlan to carry IPv6 pods over the other family's underlay",
      "peer far: no route to fd00:10:244:4::/64: host-gw needs 2001:db8:1::14 on the same L2 network as eth0 (on-link prefixes: 2001:db8::11/64, fe80::11/64); use vxlan for routed underlays",
    ]);
    expect(nl.takeOps()).toEqual(["replace route 10.244.3.0/24 via 192.0.2.13 dev eth0 proto 87", "replace route 10.244.4.0/24 via 192.0.2.14 dev eth0 proto 87"]);
  });

  test("IPv6-only pods: IPv6 routes only; a weft route to an IPv6 subnet no lease holds is removed", async () => {
    const { nl, backend } = dual({ pods4: false });
    await backend.up();
    nl.outside((n) => n.replaceRoute({ dst: "fd00:10:244:7::/64", gateway: "2001:db8::17", dev: "eth0" }));
    expect(backend.apply([b6]).changes).toBe(2);
    expect(nl.takeOps()).toEqual(["replace route fd00:10:244:2::/64 via 2001:db8::12 dev eth0 proto 87", "delete route fd00:10:244:7::/64 via 2001:db8::17 dev eth0 proto 87"]);
  });
});
