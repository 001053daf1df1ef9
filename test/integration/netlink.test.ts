/**
 * Every Netlink method of the libnl implementation against the real kernel, inside a
 * namespace this suite creates, read back with iproute2 (`ip -j`, `bridge -j`) as an
 * independent reader. libnl runs in child processes (see harness.ts). Root only.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { WEFT_ROUTE_PROTOCOL } from "../../src/sys/netlink.ts";
import { bridgeFdb, ip, ipJson, listNamespaces, NamespaceGroup, netlinkBatch, netlinkOk, requireRoot } from "../../sim/netns.ts";

const skip = requireRoot();
if (skip) console.warn(`skipping netlink kernel tests: ${skip}`);

describe.skipIf(!!skip)("LibnlNetlink against the kernel", () => {
  let group: NamespaceGroup;
  let ns: string;
  beforeAll(() => {
    group = new NamespaceGroup("wtf-");
    ns = group.add("nl");
    // A veth pair made by iproute2 stands in for an underlay NIC.
    ip(ns, "link", "add", "ul0", "type", "veth", "peer", "name", "ul1");
    ip(ns, "link", "set", "ul0", "up");
    ip(ns, "link", "set", "ul1", "up");
    ip(ns, "addr", "add", "192.0.2.11/24", "dev", "ul0");
    ip(ns, "route", "add", "default", "via", "192.0.2.1", "dev", "ul0");
  });
  afterAll(async () => {
    await group?.cleanup();
    if (group) expect(listNamespaces(group.id)).toEqual([]);
  });

  const link = (name: string) => ipJson(ns, "-d", "link", "show", "dev", name)[0];

  test("createBridge makes an up bridge with the MTU and MAC asked for; a second create fails naming it", async () => {
    const [info, dup] = await netlinkBatch(ns, [
      { method: "createBridge", args: ["wbr0", { mtu: 1400, mac: "02:aa:00:00:00:01" }] },
      { method: "createBridge", args: ["wbr0"] },
    ]);
    expect(info).toMatchObject({ ok: true, value: { name: "wbr0", kind: "bridge", mtu: 1400, mac: "02:aa:00:00:00:01", up: true } });
    expect(dup).toEqual({ ok: false, error: "create bridge wbr0: Object exists" });
    const l = link("wbr0");
    expect(l.linkinfo.info_kind).toBe("bridge");
    expect(l.mtu).toBe(1400);
    expect(l.address).toBe("02:aa:00:00:00:01");
    expect(l.flags).toContain("UP");
    expect((info as any).value.index).toBe(l.ifindex);
  });

  test("createVxlan sets VNI, local, port, learning off, MTU, MAC and underlay device, up", async () => {
    const ul0 = link("ul0").ifindex as number;
    const [info] = await netlinkOk(ns, [
      { method: "createVxlan", args: [{ name: "weft.1", vni: 1, local: "192.0.2.11", port: 8472, mtu: 1450, mac: "02:aa:00:00:01:01", underlayIndex: ul0 }] },
    ]);
    expect(info).toMatchObject({ name: "weft.1", kind: "vxlan", mtu: 1450, mac: "02:aa:00:00:01:01", up: true });
    const l = link("weft.1");
    expect(l.linkinfo.info_data).toMatchObject({ id: 1, local: "192.0.2.11", port: 8472, learning: false, link: "ul0" });
    expect(l.mtu).toBe(1450);
    expect(l.address).toBe("02:aa:00:00:01:01");
    expect(l.flags).toContain("UP");
  });

  test("getLink/listLinks report links made by ip, with kind, master and up flag", async () => {
    ip(ns, "link", "add", "wbr9", "type", "bridge");
    ip(ns, "link", "add", "wv0", "type", "veth", "peer", "name", "wv1");
    ip(ns, "link", "set", "wv0", "master", "wbr9");
    const [wv0, missing, all] = await netlinkOk(ns, [
      { method: "getLink", args: ["wv0"] },
      { method: "getLink", args: ["nope0"] },
      { method: "listLinks" },
    ]);
    const master = link("wbr9").ifindex;
    expect(wv0).toMatchObject({ name: "wv0", kind: "veth", up: false, master, mac: link("wv0").address, mtu: 1500 });
    expect(missing).toBeNull();
    const names = (all as { name: string; kind?: string }[]).map((l) => `${l.name}:${l.kind ?? "-"}`).sort();
    expect(names).toEqual(["lo:-", "ul0:veth", "ul1:veth", "wbr0:bridge", "wbr9:bridge", "wv0:veth", "wv1:veth", "weft.1:vxlan"].sort());
  });

  test("getLink/listLinks report VNI, local, port (host order) and learning of VXLANs, and no vxlan field elsewhere", async () => {
    // One made by ip with non-default choices, one with no local and learning on (the
    // kernel default), one with an IPv6 local; weft.1 was made by createVxlan above.
    ip(ns, "link", "add", "wvx42", "type", "vxlan", "id", "42", "local", "192.0.2.11", "dstport", "4789", "nolearning");
    ip(ns, "link", "add", "wvx43", "type", "vxlan", "id", "43", "dstport", "4789");
    ip(ns, "link", "add", "wvx44", "type", "vxlan", "id", "44", "local", "fd00::11", "dstport", "8472");
    try {
      // A vxlan getter on a non-VXLAN object would abort this child (exit 134) and fail here.
      const [weft, v42, v43, v44, bridge, veth, lo, all] = (await netlinkOk(ns, [
        { method: "getLink", args: ["weft.1"] },
        { method: "getLink", args: ["wvx42"] },
        { method: "getLink", args: ["wvx43"] },
        { method: "getLink", args: ["wvx44"] },
        { method: "getLink", args: ["wbr0"] },
        { method: "getLink", args: ["ul0"] },
        { method: "getLink", args: ["lo"] },
        { method: "listLinks" },
      ])) as any[];
      expect(weft.vxlan).toEqual({ vni: 1, local: "192.0.2.11", port: 8472, learning: false });
      expect(v42.vxlan).toEqual({ vni: 42, local: "192.0.2.11", port: 4789, learning: false });
      expect(v43.vxlan).toEqual({ vni: 43, port: 4789, learning: true });
      expect(v44.vxlan).toEqual({ vni: 44, local: "fd00::11", port: 8472, learning: true });
      // iproute2 as the independent reader of the same attributes
      for (const [name, got] of [["weft.1", weft], ["wvx42", v42], ["wvx43", v43]] as const) {
        const d = link(name).linkinfo.info_data;
        expect(got.vxlan).toEqual({ vni: d.id, port: d.port, learning: d.learning, ...(d.local ? { local: d.local } : {}) });
      }
      for (const l of [bridge, veth, lo]) expect(Object.keys(l)).not.toContain("vxlan");
      expect(bridge.kind).toBe("bridge");
      expect(veth.kind).toBe("veth");
      const listed = new Map((all as any[]).map((l) => [l.name, l]));
      for (const l of [weft, v42, v43, v44]) expect(listed.get(l.name).vxlan).toEqual(l.vxlan);
      const others = (all as any[]).filter((l) => l.kind !== "vxlan");
      expect(others.length).toBeGreaterThanOrEqual(5);
      for (const l of others) expect(Object.keys(l)).not.toContain("vxlan");
    } finally {
      for (const n of ["wvx42", "wvx43", "wvx44"]) ip(ns, "link", "del", n);
    }
  });

  test("setLinkUp, setMtu and deleteLink change what ip sees; errors name the link", async () => {
    const r = await netlinkBatch(ns, [
      { method: "setLinkUp", args: ["wv1"] },
      { method: "setMtu", args: ["wv1", 1300] },
      { method: "deleteLink", args: ["wbr9"] },
      { method: "deleteLink", args: ["wbr9"] },
      { method: "setMtu", args: ["nope0", 1300] },
      { method: "setMtu", args: ["wv1", 10] },
    ]);
    expect(r.slice(0, 3).every((x) => x.ok)).toBe(true);
    expect(r[3]).toEqual({ ok: false, error: "delete link wbr9: No such device" });
    expect(r[4]).toEqual({ ok: false, error: "set mtu 1300 on link nope0: No such device" });
    expect(r[5]).toEqual({ ok: false, error: "set mtu 10 on link wv1: mtu must be an integer in 68..65535, got 10" });
    expect(link("wv1").flags).toContain("UP");
    expect(link("wv1").mtu).toBe(1300);
    expect(ipJson(ns, "link", "show").map((l: any) => l.ifname)).not.toContain("wbr9");
  });

  test("addresses: add, duplicate, list (including ip-added), delete, delete missing", async () => {
    ip(ns, "addr", "add", "10.244.5.1/24", "dev", "wbr0");
    const r = await netlinkBatch(ns, [
      { method: "addAddress", args: [{ dev: "weft.1", cidr: "10.244.1.0/32" }] },
      { method: "addAddress", args: [{ dev: "weft.1", cidr: "10.244.1.0/32" }] },
      { method: "listAddresses", args: ["wbr0"] },
      { method: "listAddresses" },
      { method: "deleteAddress", args: [{ dev: "wbr0", cidr: "10.244.5.1/24" }] },
      { method: "deleteAddress", args: [{ dev: "wbr0", cidr: "10.244.5.1/24" }] },
      { method: "addAddress", args: [{ dev: "weft.1", cidr: "10.244.1.0/33" }] },
    ]);
    expect(r[0]).toEqual({ ok: true, value: null });
    expect(r[1]).toEqual({ ok: false, error: "add address 10.244.1.0/32 dev weft.1: Object exists" });
    expect(r[2]).toEqual({ ok: true, value: [{ dev: "wbr0", cidr: "10.244.5.1/24" }] });
    expect((r[3] as any).value).toEqual(
      expect.arrayContaining([
        { dev: "lo", cidr: "127.0.0.1/8" },
        { dev: "ul0", cidr: "192.0.2.11/24" },
        { dev: "weft.1", cidr: "10.244.1.0/32" },
      ]),
    );
    expect(r[4]).toEqual({ ok: true, value: null });
    expect(r[5]!.ok).toBe(false);
    expect((r[5] as any).error).toStartWith("delete address 10.244.5.1/24 dev wbr0: ");
    expect((r[6] as any).error).toStartWith("add address 10.244.1.0/33 dev weft.1: Cannot parse CIDR");
    const addrs = ipJson(ns, "-4", "addr", "show", "dev", "weft.1")[0].addr_info.map((a: any) => `${a.local}/${a.prefixlen}`);
    expect(addrs).toEqual(["10.244.1.0/32"]);
    expect(ipJson(ns, "-4", "addr", "show", "dev", "wbr0")[0]?.addr_info ?? []).toEqual([]);
  });

  test("replaceRoute installs an onlink route with weft's protocol, idempotently, and replaces the gateway", async () => {
    const route = { dst: "10.244.2.0/24", gateway: "10.244.2.0", dev: "weft.1", onlink: true };
    await netlinkOk(ns, [
      { method: "replaceRoute", args: [route] },
      { method: "replaceRoute", args: [route] },
    ]);
    let shown = ipJson(ns, "route", "show", "10.244.2.0/24");
    expect(shown).toEqual([{ dst: "10.244.2.0/24", gateway: "10.244.2.0", dev: "weft.1", protocol: String(WEFT_ROUTE_PROTOCOL), flags: ["onlink"] }]);
    await netlinkOk(ns, [{ method: "replaceRoute", args: [{ ...route, gateway: "10.244.2.9" }] }]);
    shown = ipJson(ns, "route", "show", "10.244.2.0/24");
    expect(shown.map((x: any) => x.gateway)).toEqual(["10.244.2.9"]);
    // Without onlink the kernel refuses a gateway that is not on a connected network.
    const [bad] = await netlinkBatch(ns, [{ method: "replaceRoute", args: [{ dst: "10.244.3.0/24", gateway: "10.244.3.0", dev: "weft.1" }] }]);
    expect(bad!.ok).toBe(false);
    expect((bad as any).error).toStartWith("replace route 10.244.3.0/24 via 10.244.3.0 dev weft.1 proto 87: ");
  });

  test("listRoutes reports protocol/table/gateway/dev, sees ip's routes and the default route, filters", async () => {
    ip(ns, "route", "add", "10.244.7.0/24", "via", "192.0.2.7", "dev", "ul0", "proto", "static");
    await netlinkOk(ns, [{ method: "replaceRoute", args: [{ dst: "10.244.6.0/24", dev: "wbr0" }] }]);
    const [all, weft, onUl0] = await netlinkOk(ns, [
      { method: "listRoutes" },
      { method: "listRoutes", args: [{ protocol: WEFT_ROUTE_PROTOCOL }] },
      { method: "listRoutes", args: [{ dev: "ul0" }] },
    ]);
    expect(all).toEqual(
      expect.arrayContaining([
        { dst: "0.0.0.0/0", gateway: "192.0.2.1", dev: "ul0", protocol: 3, table: 254 },
        { dst: "10.244.7.0/24", gateway: "192.0.2.7", dev: "ul0", protocol: 4, table: 254 },
        { dst: "192.0.2.0/24", dev: "ul0", protocol: 2, table: 254 },
      ]),
    );
    expect(weft).toEqual([
      { dst: "10.244.2.0/24", gateway: "10.244.2.9", dev: "weft.1", onlink: true, protocol: WEFT_ROUTE_PROTOCOL, table: 254 },
      { dst: "10.244.6.0/24", dev: "wbr0", protocol: WEFT_ROUTE_PROTOCOL, table: 254 },
    ]);
    expect((onUl0 as any[]).map((x) => x.dst).sort()).toEqual(["0.0.0.0/0", "10.244.7.0/24", "192.0.2.0/24"]);
  });

  test("deleteRoute removes by prefix (any gateway/protocol) or exact spec; missing route names the route", async () => {
    const r = await netlinkBatch(ns, [
      { method: "deleteRoute", args: [{ dst: "10.244.7.0/24" }] },
      { method: "deleteRoute", args: [{ dst: "10.244.2.0/24", gateway: "10.244.2.9", dev: "weft.1", onlink: true }] },
      { method: "deleteRoute", args: [{ dst: "10.244.6.0/24", dev: "wbr0" }] },
      { method: "deleteRoute", args: [{ dst: "10.244.2.0/24", gateway: "10.244.2.9", dev: "weft.1", onlink: true }] },
      { method: "deleteRoute", args: [{ dst: "10.244.7.0/24" }] },
      { method: "deleteRoute", args: [{ dst: "10.244.7.1/24" }] },
    ]);
    expect(r.slice(0, 3)).toEqual([{ ok: true, value: null }, { ok: true, value: null }, { ok: true, value: null }]);
    expect(r[3]).toEqual({ ok: false, error: "delete route 10.244.2.0/24 via 10.244.2.9 dev weft.1 onlink: Object not found" });
    expect(r[4]).toEqual({ ok: false, error: "delete route 10.244.7.0/24: Object not found" });
    expect((r[5] as any).error).toStartWith("delete route 10.244.7.1/24: \"10.244.7.1/24\" has host bits set");
    const dsts = ipJson(ns, "route", "show").map((x: any) => x.dst);
    expect(dsts).not.toContain("10.244.2.0/24");
    expect(dsts).not.toContain("10.244.6.0/24");
    expect(dsts).not.toContain("10.244.7.0/24");
    expect(dsts).toContain("default");
  });

  test("replaceNeighbor writes a permanent ARP entry, replaces the MAC; list sees ip's entries; delete", async () => {
    ip(ns, "neigh", "replace", "10.244.9.9", "lladdr", "02:bb:00:00:00:09", "dev", "weft.1", "nud", "permanent");
    const r = await netlinkBatch(ns, [
      { method: "replaceNeighbor", args: [{ dev: "weft.1", ip: "10.244.2.0", mac: "02:bb:00:00:00:01" }] },
      { method: "replaceNeighbor", args: [{ dev: "weft.1", ip: "10.244.2.0", mac: "02:bb:00:00:00:02" }] },
      { method: "listNeighbors", args: ["weft.1"] },
      { method: "deleteNeighbor", args: [{ dev: "weft.1", ip: "10.244.9.9" }] },
      { method: "deleteNeighbor", args: [{ dev: "weft.1", ip: "10.244.9.9" }] },
      { method: "replaceNeighbor", args: [{ dev: "weft.1", ip: "10.244.2.0", mac: "02:bb:00:00:00" }] },
    ]);
    expect(r[0]!.ok && r[1]!.ok && r[3]!.ok).toBe(true);
    expect((r[2] as any).value.sort((a: any, b: any) => a.ip.localeCompare(b.ip))).toEqual([
      { dev: "weft.1", ip: "10.244.2.0", mac: "02:bb:00:00:00:02" },
      { dev: "weft.1", ip: "10.244.9.9", mac: "02:bb:00:00:00:09" },
    ]);
    expect(r[4]).toEqual({ ok: false, error: "delete neighbor 10.244.9.9 dev weft.1: Object not found" });
    expect((r[5] as any).error).toBe('replace neighbor 10.244.2.0 lladdr 02:bb:00:00:00 dev weft.1: "02:bb:00:00:00" is not a MAC address (aa:bb:cc:dd:ee:ff)');
    expect(ipJson(ns, "neigh", "show", "dev", "weft.1")).toEqual([{ dst: "10.244.2.0", lladdr: "02:bb:00:00:00:02", state: ["PERMANENT"] }]);
  });

  test("replaceFdb creates self permanent entries idempotently and moves a MAC to a new dst; listFdb sees every remote of one MAC; deleteFdb removes one dst", async () => {
    exec_bridge(["fdb", "append", "02:cc:00:00:00:09", "dev", "weft.1", "dst", "192.0.2.99", "self", "permanent"]);
    // Several remotes per MAC exist only for the all-zeros (flood) and multicast MACs: the
    // kernel ignores an append of a second dst for a unicast MAC. libnl's cache would merge them.
    const flood = { dev: "weft.1", mac: "00:00:00:00:00:00" };
    exec_bridge(["fdb", "append", flood.mac, "dev", "weft.1", "dst", "192.0.2.12", "self", "permanent"]);
    exec_bridge(["fdb", "append", flood.mac, "dev", "weft.1", "dst", "192.0.2.13", "self", "permanent"]);
    const f = { dev: "weft.1", mac: "02:cc:00:00:00:01", dst: "192.0.2.12" };
    const r = await netlinkBatch(ns, [
      { method: "replaceFdb", args: [f] },
      { method: "replaceFdb", args: [f] },
      { method: "replaceFdb", args: [{ ...f, dst: "192.0.2.14" }] },
      { method: "listFdb", args: ["weft.1"] },
      { method: "deleteFdb", args: [{ ...flood, dst: "192.0.2.13" }] },
      { method: "deleteFdb", args: [{ ...flood, dst: "192.0.2.13" }] },
      { method: "deleteFdb", args: [{ ...f, dst: "192.0.2.14" }] },
      { method: "deleteFdb", args: [{ ...f, dst: "192.0.2.14" }] },
    ]);
    expect(r.slice(0, 3).every((x) => x.ok)).toBe(true);
    const key = (x: any) => `${x.mac} ${x.dst}`;
    expect((r[3] as any).value.map(key).sort()).toEqual([
      "00:00:00:00:00:00 192.0.2.12",
      "00:00:00:00:00:00 192.0.2.13",
      "02:cc:00:00:00:01 192.0.2.14",
      "02:cc:00:00:00:09 192.0.2.99",
    ]);
    const shown = bridgeFdb(ns, "weft.1").filter((x) => x.dst);
    expect(shown.map(key).sort()).toEqual(["00:00:00:00:00:00 192.0.2.12", "02:cc:00:00:00:09 192.0.2.99"]);
    expect(r[4]!.ok).toBe(true);
    // The kernel would accept this one (the MAC exists, the dst does not); the contract says throw.
    expect(r[5]).toEqual({ ok: false, error: "delete fdb 00:00:00:00:00:00 dst 192.0.2.13 dev weft.1: Object not found" });
    expect(r[6]!.ok).toBe(true);
    expect(r[7]).toEqual({ ok: false, error: "delete fdb 02:cc:00:00:00:01 dst 192.0.2.14 dev weft.1: Object not found" });
    const flood12 = shown.find((x) => x.mac === flood.mac);
    expect(flood12.flags).toContain("self");
    expect(flood12.state).toBe("permanent");
  });

  test("listRoutes reports other protocols, metrics and, with anyType, blackhole routes", async () => {
    ip(ns, "route", "add", "10.244.77.0/24", "dev", "ul0", "proto", "static", "metric", "100");
    ip(ns, "route", "add", "blackhole", "10.244.78.0/24", "proto", "boot");
    const r = await netlinkBatch(ns, [{ method: "listRoutes", args: [{}] }, { method: "listRoutes", args: [{ anyType: true }] }]);
    const line = (x: any) => `${x.type ?? "unicast"} ${x.dst} ${x.protocol} ${x.priority ?? 0}`;
    expect((r[0] as any).value.map(line)).toContain("unicast 10.244.77.0/24 4 100");
    expect((r[0] as any).value.map(line)).not.toContain("6 10.244.78.0/24 3 0");
    expect((r[1] as any).value.map(line)).toContain("6 10.244.78.0/24 3 0");
  });

  test("bad input is refused before any kernel call, naming the field", async () => {
    const r = await netlinkBatch(ns, [
      { method: "createVxlan", args: [{ name: "weft.2", vni: 1 << 24, local: "192.0.2.11", port: 8472, mtu: 1450 }] },
      { method: "createVxlan", args: [{ name: "weft.2", vni: 2, local: "fd00::1%eth0", port: 8472, mtu: 1450 }] },
      { method: "createBridge", args: ["a-name-longer-than-15"] },
      { method: "replaceFdb", args: [{ dev: "weft.1", mac: "02:cc:00:00:00:01", dst: "not-an-ip" }] },
    ]);
    expect((r[0] as any).error).toBe("create vxlan weft.2 (vni 16777216, local 192.0.2.11, port 8472): vni must be an integer in 0..16777215, got 16777216");
    expect((r[1] as any).error).toBe('create vxlan weft.2 (vni 2, local fd00::1%eth0, port 8472): "fd00::1%eth0": zone indexes are not supported');
    expect((r[2] as any).error).toBe('create bridge a-name-longer-than-15: interface name "a-name-longer-than-15" is longer than 15 bytes');
    expect((r[3] as any).error).toStartWith("replace fdb 02:cc:00:00:00:01 dst not-an-ip dev weft.1: Cannot parse IP address");
    expect(ipJson(ns, "link", "show").map((l: any) => l.ifname)).not.toContain("weft.2");
  });

  test("methods after close() throw instead of touching a freed socket", async () => {
    const [, after] = await netlinkBatch(ns, [{ method: "close" }, { method: "listLinks" }]);
    expect(after).toEqual({ ok: false, error: "list links: netlink socket closed" });
  });

  function exec_bridge(args: string[]) {
    const p = Bun.spawnSync(["ip", "netns", "exec", ns, "bridge", ...args]);
    if (p.exitCode !== 0) throw new Error(`bridge ${args.join(" ")}: ${p.stderr}`);
  }
});

describe.skipIf(!!skip)("LibnlNetlink with IPv6 against the kernel", () => {
  let group: NamespaceGroup;
  let ns: string;
  beforeAll(() => {
    group = new NamespaceGroup("wtf6-");
    ns = group.add("nl");
    ip(ns, "link", "add", "ul0", "type", "veth", "peer", "name", "ul1");
    ip(ns, "link", "set", "ul0", "up");
    ip(ns, "link", "set", "ul1", "up");
    ip(ns, "addr", "add", "2001:db8::11/64", "dev", "ul0", "nodad");
  });
  afterAll(async () => {
    await group?.cleanup();
    if (group) expect(listNamespaces(group.id)).toEqual([]);
  });

  const link = (name: string) => ipJson(ns, "-d", "link", "show", "dev", name)[0];
  const MAC = "02:aa:00:00:06:01";

  test("createVxlan with an IPv6 local makes an IPv6 VXLAN (what ip reads as local6); getLink reports it", async () => {
    const [info, again] = await netlinkOk(ns, [
      { method: "createVxlan", args: [{ name: "weft-v6.1", vni: 1, local: "2001:db8::11", port: 8472, mtu: 1430, mac: MAC, underlayIndex: link("ul0").ifindex }] },
      { method: "getLink", args: ["weft-v6.1"] },
    ]);
    expect(info).toMatchObject({ name: "weft-v6.1", kind: "vxlan", mtu: 1430, mac: MAC, up: true, vxlan: { vni: 1, local: "2001:db8::11", port: 8472, learning: false } });
    expect(again).toEqual(info);
    expect(link("weft-v6.1").linkinfo.info_data).toMatchObject({ id: 1, local6: "2001:db8::11", port: 8472, learning: false, link: "ul0" });
  });

  test("IPv6 addresses: added without duplicate address detection (never tentative), with or without a prefix route; listed after the IPv4 ones; deleted", async () => {
    const r = await netlinkBatch(ns, [
      { method: "addAddress", args: [{ dev: "weft-v6.1", cidr: "10.244.1.0/32" }] },
      { method: "addAddress", args: [{ dev: "weft-v6.1", cidr: "fd00:10:244:1::/128" }] },
      { method: "addAddress", args: [{ dev: "ul1", cidr: "fd00:10:244:8::1/64", noPrefixRoute: true }] },
      { method: "addAddress", args: [{ dev: "ul1", cidr: "fd00:10:244:9::1/64" }] },
      { method: "listAddresses", args: ["weft-v6.1"] },
    ]);
    expect(r.slice(0, 4).every((x) => x.ok)).toBe(true);
    // IPv4 first, then IPv6 (the kernel's link-local one among them).
    const listed = (r[4] as any).value.map((a: any) => a.cidr);
    expect(listed[0]).toBe("10.244.1.0/32");
    expect(listed.slice(1)).toContain("fd00:10:244:1::/128");
    const info = ipJson(ns, "-6", "addr", "show", "dev", "weft-v6.1")[0].addr_info.find((a: any) => a.local === "fd00:10:244:1::");
    expect(info.prefixlen).toBe(128);
    expect(info.nodad).toBe(true);
    expect(info.tentative).toBeUndefined();
    const ul1 = ipJson(ns, "-6", "addr", "show", "dev", "ul1")[0].addr_info;
    expect(ul1.find((a: any) => a.local === "fd00:10:244:8::1").noprefixroute).toBe(true);
    const routes = ipJson(ns, "-6", "route", "show", "dev", "ul1").map((x: any) => x.dst);
    expect(routes).toContain("fd00:10:244:9::/64");
    expect(routes).not.toContain("fd00:10:244:8::/64");
    await netlinkOk(ns, [{ method: "deleteAddress", args: [{ dev: "ul1", cidr: "fd00:10:244:8::1/64" }] }]);
    expect(ipJson(ns, "-6", "addr", "show", "dev", "ul1")[0].addr_info.map((a: any) => a.local)).not.toContain("fd00:10:244:8::1");
  });

  test("IPv6 routes: onlink via the peer subnet's address with weft's protocol and the kernel's default metric 1024; listed; replaced; deleted", async () => {
    const route = { dst: "fd00:10:244:2::/64", gateway: "fd00:10:244:2::", dev: "weft-v6.1", onlink: true };
    const [, , listed] = await netlinkOk(ns, [
      { method: "replaceRoute", args: [route] },
      { method: "replaceRoute", args: [route] },
      { method: "listRoutes", args: [{ protocol: WEFT_ROUTE_PROTOCOL }] },
    ]);
    expect(ipJson(ns, "-6", "route", "show", "fd00:10:244:2::/64")).toEqual([{ dst: "fd00:10:244:2::/64", gateway: "fd00:10:244:2::", dev: "weft-v6.1", protocol: String(WEFT_ROUTE_PROTOCOL), metric: 1024, flags: ["onlink"], pref: "medium" }]);
    expect(listed).toEqual([{ dst: "fd00:10:244:2::/64", gateway: "fd00:10:244:2::", dev: "weft-v6.1", onlink: true, protocol: WEFT_ROUTE_PROTOCOL, table: 254, priority: 1024 }]);
    ip(ns, "-6", "route", "add", "default", "via", "2001:db8::1", "dev", "ul0");
    const [all] = await netlinkOk(ns, [{ method: "listRoutes" }]);
    expect(all).toEqual(expect.arrayContaining([{ dst: "::/0", gateway: "2001:db8::1", dev: "ul0", protocol: 3, table: 254, priority: 1024 }]));
    await netlinkOk(ns, [{ method: "replaceRoute", args: [{ ...route, gateway: "fd00:10:244:2::9" }] }]);
    expect(ipJson(ns, "-6", "route", "show", "fd00:10:244:2::/64").map((x: any) => x.gateway)).toEqual(["fd00:10:244:2::9"]);
    const r = await netlinkBatch(ns, [
      { method: "deleteRoute", args: [{ dst: "fd00:10:244:2::/64", dev: "weft-v6.1" }] },
      { method: "deleteRoute", args: [{ dst: "fd00:10:244:2::/64", dev: "weft-v6.1" }] },
      { method: "replaceRoute", args: [{ dst: "fd00:10:244:3::/64", gateway: "10.244.3.0", dev: "weft-v6.1" }] },
    ]);
    expect(r[0]).toEqual({ ok: true, value: null });
    expect(r[1]).toEqual({ ok: false, error: "delete route fd00:10:244:2::/64 dev weft-v6.1: Object not found" });
    expect(r[2]).toEqual({ ok: false, error: "replace route fd00:10:244:3::/64 via 10.244.3.0 dev weft-v6.1 proto 87: gateway 10.244.3.0 is not of the family of fd00:10:244:3::/64" });
  });

  test("NDP entries: permanent, replaced, listed (without the kernel's link-local ones), deleted", async () => {
    ip(ns, "-6", "neigh", "replace", "fe80::99", "lladdr", "02:bb:00:00:06:99", "dev", "weft-v6.1", "nud", "permanent");
    const r = await netlinkBatch(ns, [
      { method: "replaceNeighbor", args: [{ dev: "weft-v6.1", ip: "fd00:10:244:2::", mac: "02:bb:00:00:06:01" }] },
      { method: "replaceNeighbor", args: [{ dev: "weft-v6.1", ip: "fd00:10:244:2::", mac: "02:bb:00:00:06:02" }] },
      { method: "replaceNeighbor", args: [{ dev: "weft-v6.1", ip: "10.244.2.0", mac: "02:bb:00:00:06:02" }] },
      { method: "listNeighbors", args: ["weft-v6.1"] },
    ]);
    expect(r.slice(0, 3).every((x) => x.ok)).toBe(true);
    expect((r[3] as any).value.sort((a: any, b: any) => a.ip.localeCompare(b.ip))).toEqual([
      { dev: "weft-v6.1", ip: "10.244.2.0", mac: "02:bb:00:00:06:02" },
      { dev: "weft-v6.1", ip: "fd00:10:244:2::", mac: "02:bb:00:00:06:02" },
    ]);
    expect(ipJson(ns, "-6", "neigh", "show", "dev", "weft-v6.1").find((n: any) => n.dst === "fd00:10:244:2::")).toEqual({ dst: "fd00:10:244:2::", lladdr: "02:bb:00:00:06:02", state: ["PERMANENT"] });
    await netlinkOk(ns, [{ method: "deleteNeighbor", args: [{ dev: "weft-v6.1", ip: "fd00:10:244:2::" }] }]);
    expect(ipJson(ns, "-6", "neigh", "show", "dev", "weft-v6.1").map((n: any) => n.dst)).toEqual(["fe80::99"]);
  });

  test("FDB entries with an IPv6 remote on the IPv6 VXLAN: created, moved, listed, deleted", async () => {
    const f = { dev: "weft-v6.1", mac: "02:cc:00:00:06:01", dst: "2001:db8::12" };
    const r = await netlinkBatch(ns, [
      { method: "replaceFdb", args: [f] },
      { method: "replaceFdb", args: [f] },
      { method: "replaceFdb", args: [{ ...f, dst: "2001:db8::14" }] },
      { method: "listFdb", args: ["weft-v6.1"] },
    ]);
    expect(r.slice(0, 3).every((x) => x.ok)).toBe(true);
    expect((r[3] as any).value).toEqual([{ dev: "weft-v6.1", mac: "02:cc:00:00:06:01", dst: "2001:db8::14" }]);
    const shown = bridgeFdb(ns, "weft-v6.1").filter((x) => x.dst);
    expect(shown.map((x: any) => [x.mac, x.dst, x.state, x.flags.includes("self")])).toEqual([["02:cc:00:00:06:01", "2001:db8::14", "permanent", true]]);
    const d = await netlinkBatch(ns, [{ method: "deleteFdb", args: [{ ...f, dst: "2001:db8::14" }] }, { method: "deleteFdb", args: [{ ...f, dst: "2001:db8::14" }] }]);
    expect(d[0]!.ok).toBe(true);
    expect(d[1]).toEqual({ ok: false, error: "delete fdb 02:cc:00:00:06:01 dst 2001:db8::14 dev weft-v6.1: Object not found" });
  });
});
