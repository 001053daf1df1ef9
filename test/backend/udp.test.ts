import { describe, expect, test } from "bun:test";
import { RecordingNetlink } from "../fakes/netlink.ts";
import { createBackend } from "../../src/backend/create-backend.ts";
import type { PumpPeer } from "../../src/backend/udp-pump-protocol.ts";
import { PrefixTable } from "../../src/backend/udp-pump-protocol.ts";
import { parseIpv4U32 } from "../../src/net/ipv4.ts";
import type { Pump, PumpOptions } from "../../src/backend/udp-pump.ts";
import { silentLogger } from "../../src/log.ts";

function node({ offloadRefused = false, dual = false, v6only = false } = {}) {
  const nl = new RecordingNetlink();
  nl.outside((n) => {
    n.addLinkRaw({ name: "eth0", mtu: 1500 });
    if (!v6only) n.addAddress({ dev: "eth0", cidr: "192.0.2.11/24" });
    if (dual || v6only) n.addAddress({ dev: "eth0", cidr: "2001:db8::11/64" });
  });
  const tables: PumpPeer[][] = [];
  const events: string[] = [];
  let nextFd = 40;
  let dead = false;
  let died = false;
  let pumps = 0;
  const sysctls: string[] = [];
  let failStart = false;
  let started: PumpOptions | undefined;
  const pump: Pump = {
    ready: Promise.resolve(),
    setPeers: (p) => void tables.push(p),
    setTun: (fd) => void events.push(`setTun ${fd}`),
    tunDead: () => dead,
    died: () => died,
    counters: () => ({ txPackets: 1, txBytes: 2, rxPackets: 3, rxBytes: 4, droppedNoRoute: 5, droppedInvalid: 6, droppedIo: 7, droppedUnknownSender: 0, droppedSpoofedSource: 0, droppedBadOffloadHeader: 0, packetsForwarded: 4, packetsDropped: 18, loops: 9, txSuperPackets: 0, rxSuperPackets: 0 }),
    stop: () => void events.push("stop"),
  };
  const backend = createBackend(
    { type: "udp", port: 8285 },
    {
      nl,
      ...(v6only ? {} : { publicIp: "192.0.2.11", ownSubnet: "10.244.1.0/24", network: "10.244.0.0/16" }),
      ...(dual || v6only ? { publicIpv6: "2001:db8::11", ownIpv6Subnet: "fd00:10:244:1::/64", ipv6Network: "fd00:10:244::/56" } : {}),
      underlayIface: "eth0",
      underlayMtu: 1500,
      logger: silentLogger,
      udpSys: {
        openTun(name, offload) {
          if (offloadRefused && offload) throw new Error("open TUN weft0: TUNSETOFFLOAD: Invalid argument");
          // like the kernel: TUNSETIFF creates the device down, or re-attaches a persistent one
          if (!nl.getLink(name)) nl.outside((n) => n.addLinkRaw({ name, kind: "tun", mtu: 1500, up: false }));
          events.push(`openTun ${name}${offload ? " offload" : ""} -> ${nextFd}`);
          return nextFd++;
        },
        openUdpSocket(ip, port) {
          events.push(`openUdp ${ip}:${port}`);
          return ip.includes(":") ? 98 : 99;
        },
        closeFd: (fd, what) => void events.push(`close ${fd} ${what}`),
        setIpv6: (dev, on) => void sysctls.push(`${dev} ipv6 ${on ? "on" : "off"}`),
        startPump(o) {
          started = o;
          pumps++;
          died = false;
          if (failStart) {
            failStart = false;
            return { ...pump, ready: Promise.reject(new Error("start udp packet loop: worker exploded")) };
          }
          return pump;
        },
      },
    },
  );
  return { nl, backend, tables, events, setDead: (d: boolean) => (dead = d), kill: () => (died = true), sysctls, failNextStart: () => (failStart = true), pumps: () => pumps, started: () => started };
}

describe("udp backend", () => {
  test("up opens weft0 (MTU underlay-28, Network-prefix address) and starts the loop on UDP 8285", async () => {
    const { nl, backend, events, started, sysctls } = node();
    expect(await backend.up()).toEqual({ type: "udp" });
    expect(sysctls).toEqual(["weft0 ipv6 off"]);
    expect(backend.mtu()).toBe(1472);
    expect(nl.takeOps()).toEqual(["set link weft0 mtu 1472", "set link weft0 up", "add address 10.244.1.0/16 dev weft0"]);
    expect(events).toEqual(["openTun weft0 offload -> 40", "openUdp 192.0.2.11:8285"]);
    expect(started()).toMatchObject({ tunFd: 40, udpFd: 99, udpFd6: -1, port: 8285, ownSubnets: ["10.244.1.0/24"], offload: true });
    // the kernel routes the whole Network into the TUN
    expect(nl.dump()).toContain("route 10.244.0.0/16 dev weft0 proto 2");
  });

  test("a persistent weft0 left by a previous run is re-attached (opened), not skipped", async () => {
    const { nl, backend, events } = node();
    nl.outside((n) => {
      n.addLinkRaw({ name: "weft0", kind: "tun", mtu: 1472, up: true });
      n.addAddress({ dev: "weft0", cidr: "10.244.1.0/16" });
    });
    await backend.up();
    expect(events).toEqual(["openTun weft0 offload -> 40", "openUdp 192.0.2.11:8285"]);
    expect(nl.takeOps()).toEqual([]);
  });

  test("apply hands the peer table to the loop once; same peers → no changes", async () => {
    const { nl, backend, tables } = node();
    await backend.up();
    nl.takeOps();
    const peers = [
      { nodeName: "b", subnet: "10.244.2.0/24", publicIp: "192.0.2.12" },
      { nodeName: "a", subnet: "10.244.1.0/24", publicIp: "192.0.2.11" },
    ];
    expect(backend.apply(peers)).toEqual({ changes: 2, errors: [], problems: [] });
    expect(tables).toEqual([[{ subnet: "10.244.2.0/24", ip: "192.0.2.12" }]]);
    // the kernel's Network route into weft0 becomes weft's own
    expect(nl.takeOps()).toEqual(["replace route 10.244.0.0/16 dev weft0 proto 87"]);
    expect(backend.apply(peers)).toEqual({ changes: 0, errors: [], problems: [] });
    expect(tables).toHaveLength(1);
    expect(nl.takeOps()).toEqual([]);
    backend.apply([]);
    expect(tables[1]).toEqual([]);
  });

  test("weft routes left by another backend are removed; foreign routes stay", async () => {
    const { nl, backend } = node();
    nl.outside((n) => {
      n.replaceRoute({ dst: "10.244.2.0/24", gateway: "192.0.2.12", dev: "eth0" });
      n.replaceRoute({ dst: "10.244.3.0/24", gateway: "192.0.2.13", dev: "eth0", protocol: 4 });
    });
    await backend.up();
    nl.takeOps();
    backend.apply([]);
    expect(nl.takeOps()).toEqual(["replace route 10.244.0.0/16 dev weft0 proto 87", "delete route 10.244.2.0/24 via 192.0.2.12 dev eth0 proto 87"]);
    expect(nl.dump()).toContain("route 10.244.3.0/24 via 192.0.2.13 dev eth0 proto 4");
  });

  test("the Network route into weft0 is put back when someone deletes it", async () => {
    const { nl, backend } = node();
    await backend.up();
    backend.apply([]);
    nl.outside((n) => n.deleteRoute({ dst: "10.244.0.0/16" }));
    nl.takeOps();
    expect(backend.apply([]).changes).toBe(1);
    expect(nl.takeOps()).toEqual(["replace route 10.244.0.0/16 dev weft0 proto 87"]);
  });

  test("a deleted weft0 is reopened and the new fd handed to the loop; close keeps the device", async () => {
    const { nl, backend, events, setDead } = node();
    await backend.up();
    backend.apply([]);
    nl.outside((n) => n.deleteLink("weft0"));
    setDead(true);
    nl.takeOps();
    const r = backend.apply([]);
    expect(r.changes).toBe(5);
    expect(events.slice(2)).toEqual(["openTun weft0 offload -> 41", "setTun 41"]);
    expect(nl.takeOps()).toEqual(["set link weft0 mtu 1472", "set link weft0 up", "add address 10.244.1.0/16 dev weft0", "replace route 10.244.0.0/16 dev weft0 proto 87"]);
    backend.close();
    expect(events.slice(4)).toEqual(["stop", "close 99 UDP socket 192.0.2.11:8285", "close 41 weft0", "close 40 retired weft0 fd"]);
    expect(nl.getLink("weft0")).toBeDefined();
    expect(nl.takeOps()).toEqual([]);
  });

  test("a kernel refusing TUN offload falls back to plain packets, also on reopen", async () => {
    const { nl, backend, events, started, setDead } = node({ offloadRefused: true });
    await backend.up();
    expect(events).toEqual(["openTun weft0 -> 40", "openUdp 192.0.2.11:8285"]);
    expect(started()?.offload).toBe(false);
    nl.outside((n) => n.deleteLink("weft0"));
    setDead(true);
    backend.apply([]);
    expect(events[2]).toBe("openTun weft0 -> 41");
  });

  test("a dead packet worker is replaced on the next apply and gets the peer table again", async () => {
    const { backend, events, tables, kill, pumps } = node();
    await backend.up();
    const peers = [{ nodeName: "b", subnet: "10.244.2.0/24", publicIp: "192.0.2.12" }];
    backend.apply(peers);
    kill();
    const r = backend.apply(peers);
    expect(r.changes).toBe(2); // new loop + its table
    expect(pumps()).toBe(2);
    expect(events).toContain("stop");
    expect(tables).toHaveLength(2);
    expect(backend.apply(peers).changes).toBe(0);
    // the dead loop's counts are carried over (the fake reports the same numbers each time)
    expect(backend.counters?.().packetsForwarded).toBe(8);
  });

  test("a loop that fails to start makes up() fail, and a later up() starts a new one", async () => {
    const { backend, pumps, failNextStart } = node();
    failNextStart();
    await expect(backend.up()).rejects.toThrow("start udp packet loop: worker exploded");
    expect(() => backend.apply([])).toThrow("up() has not run");
    await backend.up();
    expect(pumps()).toBe(2);
    expect(backend.apply([]).errors).toEqual([]);
  });

  test("counters come from the loop", async () => {
    const { backend } = node();
    expect(backend.counters?.().packetsForwarded).toBe(0);
    await backend.up();
    expect(backend.counters?.()).toMatchObject({ packetsForwarded: 4, packetsDropped: 18 });
  });

  test("apply before up fails clearly; a non-TUN weft0 is refused", async () => {
    const { nl, backend } = node();
    expect(() => backend.apply([])).toThrow("apply udp backend: up() has not run");
    nl.outside((n) => n.createBridge("weft0"));
    await expect(backend.up()).rejects.toThrow("weft0 exists but is a bridge device, not a TUN");
  });
});

describe("PrefixTable", () => {
  test.each([
    ["10.244.2.7", "b"],
    ["10.244.2.255", "b"],
    ["10.244.3.1", "c-narrow"],
    ["10.244.3.200", "c-wide"],
    ["10.244.4.1", undefined],
    ["192.0.2.1", undefined],
  ])("%s → %s", (ip, want) => {
    const t = new PrefixTable([
      { net: parseIpv4U32("10.244.2.0"), prefix: 24, value: "b" },
      { net: parseIpv4U32("10.244.3.0"), prefix: 24, value: "c-wide" },
      { net: parseIpv4U32("10.244.3.0"), prefix: 25, value: "c-narrow" },
    ]);
    expect(t.lookup(parseIpv4U32(ip))).toBe(want);
  });
  test("parseIpv4U32 rejects junk", () => {
    expect(() => parseIpv4U32("10.1")).toThrow('Cannot parse IPv4 address "10.1"');
  });
});

describe("createBackend", () => {
  test("names missing dependencies", () => {
    const nl = new RecordingNetlink();
    expect(() => createBackend({ type: "host-gw" }, { nl, publicIp: "", underlayIface: "eth0", underlayMtu: 1500, ownSubnet: "10.244.1.0/24", network: "10.244.0.0/16", logger: silentLogger })).toThrow("create host-gw backend: publicIp or publicIpv6 is required");
    expect(() => createBackend({ type: "host-gw" }, { nl, publicIpv6: "2001:db8::1", underlayIface: "eth0", underlayMtu: 1500, logger: silentLogger })).toThrow("create host-gw backend: ownSubnet or ownIpv6Subnet is required");
    expect(() => createBackend({ type: "host-gw" }, { nl, publicIpv6: "2001:db8::1", underlayIface: "eth0", underlayMtu: 1500, ownIpv6Subnet: "fd00::/64", logger: silentLogger })).toThrow("create host-gw backend: ownIpv6Subnet and ipv6Network go together");
    expect(() => createBackend({ type: "host-gw" }, { nl, publicIp: "192.0.2.1", underlayIface: "eth0", underlayMtu: 0, ownSubnet: "10.244.1.0/24", network: "10.244.0.0/16", logger: silentLogger })).toThrow("underlayMtu must be an integer >= 576");
  });
  test("picks the backend by type", () => {
    const nl = new RecordingNetlink();
    const deps = { nl, publicIp: "192.0.2.1", underlayIface: "eth0", underlayMtu: 1500, ownSubnet: "10.244.1.0/24", network: "10.244.0.0/16", logger: silentLogger };
    expect(createBackend({ type: "vxlan", vni: 4, port: 8472, directRouting: false }, deps).device).toBe("weft.4");
    expect(createBackend({ type: "host-gw" }, deps).device).toBeUndefined();
    expect(createBackend({ type: "udp", port: 8285 }, deps).device).toBe("weft0");
  });
});

describe("udp backend with IPv6", () => {
  test("dual-stack: IPv6 on weft0 (without a link-local address), both addresses (IPv6 without a prefix route), both sockets, MTU underlay − 48", async () => {
    const { nl, backend, events, started, sysctls } = node({ dual: true });
    await backend.up();
    expect(sysctls).toEqual(["weft0 ipv6 on"]);
    expect(backend.mtu()).toBe(1452);
    expect(nl.takeOps()).toEqual(["set link weft0 mtu 1452", "set link weft0 up", "add address 10.244.1.0/16 dev weft0", "add address fd00:10:244:1::/56 dev weft0 noprefixroute"]);
    expect(events).toEqual(["openTun weft0 offload -> 40", "openUdp 192.0.2.11:8285", "openUdp 2001:db8::11:8285"]);
    expect(started()).toMatchObject({ udpFd: 99, udpFd6: 98, ownSubnets: ["10.244.1.0/24", "fd00:10:244:1::/64"] });
  });

  test("the IPv6Network route into weft0 is weft's; each peer's subnets go over the underlay both share, IPv4 first, and its other address is accepted too", async () => {
    const { nl, backend, tables } = node({ dual: true });
    await backend.up();
    nl.takeOps();
    const both = { nodeName: "b", subnet: "10.244.2.0/24", ipv6Subnet: "fd00:10:244:2::/64", publicIp: "192.0.2.12", publicIpv6: "2001:db8::12" };
    const v6only = { nodeName: "c", subnet: "10.244.3.0/24", ipv6Subnet: "fd00:10:244:3::/64", publicIpv6: "2001:db8::13" };
    expect(backend.apply([both, v6only])).toEqual({ changes: 3, errors: [], problems: [] });
    expect(nl.takeOps()).toEqual(["replace route 10.244.0.0/16 dev weft0 proto 87", "replace route fd00:10:244::/56 dev weft0 proto 87"]);
    expect(tables).toEqual([
      [
        { subnet: "10.244.2.0/24", ip: "192.0.2.12", otherIp: "2001:db8::12" },
        { subnet: "fd00:10:244:2::/64", ip: "192.0.2.12", otherIp: "2001:db8::12" },
        { subnet: "10.244.3.0/24", ip: "2001:db8::13" },
        { subnet: "fd00:10:244:3::/64", ip: "2001:db8::13" },
      ],
    ]);
    // A deleted IPv6Network route is put back.
    nl.outside((n) => n.deleteRoute({ dst: "fd00:10:244::/56" }));
    expect(backend.apply([both, v6only]).changes).toBe(1);
    expect(nl.takeOps()).toEqual(["replace route fd00:10:244::/56 dev weft0 proto 87"]);
  });

  test("IPv6-only underlay and pods: one IPv6 socket; a peer with only an IPv4 address is a problem", async () => {
    const { backend, events, started, tables } = node({ v6only: true });
    await backend.up();
    expect(events).toEqual(["openTun weft0 offload -> 40", "openUdp 2001:db8::11:8285"]);
    expect(started()).toMatchObject({ udpFd: -1, udpFd6: 98, ownSubnets: ["fd00:10:244:1::/64"] });
    const r = backend.apply([{ nodeName: "d", ipv6Subnet: "fd00:10:244:4::/64", publicIp: "192.0.2.14" }]);
    expect(r.problems).toEqual(["peer d: no route to fd00:10:244:4::/64: no underlay family in common (this node has IPv6, the peer IPv4)"]);
    expect(tables).toEqual([[]]);
  });
});
