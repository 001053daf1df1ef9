/**
 * The wireguard backend against a recorded kernel (RecordingNetlink) and a recorded
 * WireGuard (RecordingWireguard): the operations as text, idempotency, the order of a
 * re-key, repairs, kernel vs wireguard-go, bad lease records, and that the private key
 * never shows up in operations or logs.
 */
import { describe, expect, test } from "bun:test";
import { createBackend } from "../../src/backend/create-backend.ts";
import type { BackendDeps, PeerLease } from "../../src/backend/backend.ts";
import { TrafficTotals, type WireguardBackend } from "../../src/backend/wireguard.ts";
import { isPrivateAddress, peerEndpoint } from "../../src/backend/wireguard-endpoint.ts";
import { createLogger } from "../../src/log.ts";
import type { WireguardConf } from "../../src/net-conf.ts";
import { RecordingNetlink } from "../fakes/netlink.ts";
import { RecordingWireguard } from "../fakes/wireguard.ts";

const key = (n: number) => Buffer.alloc(32, n).toString("base64");
const OWN = { privateKey: key(200), publicKey: key(201) };
const conf: WireguardConf = { type: "wireguard", listenPort: 51820, listenPortV6: 51821, persistentKeepaliveInterval: 0, mode: "separate" };
const peer = (n: number, over: Partial<PeerLease> = {}): PeerLease => ({ nodeName: `node${n}`, subnet: `10.244.${n}.0/24`, publicIp: `192.0.2.${10 + n}`, publicKey: key(n), ...over });

const V4_NODE: Partial<BackendDeps> = { publicIp: "192.0.2.11", ownSubnet: "10.244.1.0/24", network: "10.244.0.0/16" };

function node({ kernel = false, userspace = true, c = conf, nl = new RecordingNetlink(), wg, deps = V4_NODE, resendEndpoints }: { kernel?: boolean; userspace?: boolean; c?: WireguardConf; nl?: RecordingNetlink; wg?: RecordingWireguard; deps?: Partial<BackendDeps>; resendEndpoints?: boolean } = {}) {
  if (!nl.getLink("eth0")) {
    nl.outside((n) => {
      n.addLinkRaw({ name: "eth0", mtu: 1500 });
      if (deps.publicIp) n.addAddress({ dev: "eth0", cidr: `${deps.publicIp}/24` });
      if (deps.publicIpv6) n.addAddress({ dev: "eth0", cidr: `${deps.publicIpv6}/64` });
    });
  }
  const sys = wg ?? new RecordingWireguard(nl);
  sys.kernel = kernel;
  sys.userspace = userspace;
  const lines: string[] = [];
  let clock = 1_000_000;
  const backend = createBackend(c, {
    nl,
    ...deps,
    underlayIface: "eth0",
    underlayMtu: 1500,
    logger: createLogger({ level: "debug", write: (l) => lines.push(l) }),
    wireguard: { keys: OWN, sys, now: () => clock, ...(resendEndpoints !== undefined ? { resendEndpoints } : {}) },
  }) as WireguardBackend;
  const ops = () => [...nl.takeOps(), ...sys.takeOps()];
  return { nl, wg: sys, backend, lines, ops, tick: (ms: number) => (clock += ms) };
}

describe("wireguard backend", () => {
  test("up creates weft-wg (wireguard-go without the kernel module) with key and port; publishes the public key", async () => {
    const n = node();
    expect(await n.backend.up()).toEqual({ type: "wireguard", publicKey: OWN.publicKey });
    expect(n.ops()).toEqual(["add address 10.244.1.0/32 dev weft-wg", "set link weft-wg up", "wg create weft-wg (userspace)", "wg set weft-wg private-key (hidden) listen-port 51820"]);
    expect(n.backend.mtu()).toBe(1420);
  });

  test("the kernel module is used when the kernel has it", async () => {
    const n = node({ kernel: true });
    await n.backend.up();
    expect(n.ops()).toContain("wg create weft-wg (kernel)");
    expect(n.nl.getLink("weft-wg")?.kind).toBe("wireguard");
    expect(n.backend.stats().impl).toBe("kernel");
  });

  test("neither the module nor wireguard-go: an error naming both", async () => {
    const n = node({ userspace: false });
    await expect(n.backend.up()).rejects.toThrow(/no WireGuard module and wireguard-go is not installed; load the kernel module or install wireguard-go/);
  });

  test("apply adds each peer (key, endpoint = public IP:ListenPort, allowed IPs = subnet) and the Network route; a second apply changes nothing", async () => {
    const n = node();
    await n.backend.up();
    n.ops();
    const r = n.backend.apply([peer(1, { publicKey: OWN.publicKey }), peer(2), peer(3)].slice(1));
    expect(r).toEqual({ changes: 3, errors: [], problems: [] });
    expect(n.ops()).toEqual([
      "replace route 10.244.0.0/16 dev weft-wg proto 87",
      `wg set weft-wg peer ${key(2)} endpoint 192.0.2.12:51820 persistent-keepalive 0 allowed-ips 10.244.2.0/24 peer ${key(3)} endpoint 192.0.2.13:51820 persistent-keepalive 0 allowed-ips 10.244.3.0/24`,
    ]);
    expect(n.backend.apply([peer(2), peer(3)])).toEqual({ changes: 0, errors: [], problems: [] });
    expect(n.ops()).toEqual([]);
  });

  test("the own lease is skipped; PSK and keepalive from net-conf go to every peer", async () => {
    const n = node({ c: { ...conf, psk: key(99), persistentKeepaliveInterval: 25 } });
    await n.backend.up();
    n.ops();
    n.backend.apply([{ nodeName: "me", subnet: "10.244.1.0/24", publicIp: "192.0.2.11", publicKey: OWN.publicKey }, peer(2)]);
    expect(n.ops()).toContain(`wg set weft-wg peer ${key(2)} preshared-key (hidden) endpoint 192.0.2.12:51820 persistent-keepalive 25 allowed-ips 10.244.2.0/24`);
    expect(n.wg.device("weft-wg")?.peers[0]?.presharedKey).toBe(key(99));
  });

  test("a lease gone removes its peer; a re-keyed node's new peer is added before the old one goes", async () => {
    const n = node();
    await n.backend.up();
    n.backend.apply([peer(2), peer(3)]);
    n.ops();
    n.backend.apply([peer(2, { publicKey: key(22) })]);
    expect(n.ops()).toEqual([`wg set weft-wg peer ${key(22)} endpoint 192.0.2.12:51820 persistent-keepalive 0 allowed-ips 10.244.2.0/24 peer ${key(2)} remove peer ${key(3)} remove`]);
    expect(n.wg.device("weft-wg")?.peers.map((p) => [p.publicKey, p.allowedIps])).toEqual([[key(22), ["10.244.2.0/24"]]]);
  });

  test("a peer's new public IP or subnet updates that peer only", async () => {
    const n = node();
    await n.backend.up();
    n.backend.apply([peer(2), peer(3)]);
    n.ops();
    n.backend.apply([peer(2, { publicIp: "192.0.2.99" }), peer(3, { subnet: "10.244.30.0/24" })]);
    expect(n.ops()).toEqual([
      `wg set weft-wg peer ${key(2)} endpoint 192.0.2.99:51820 persistent-keepalive 0 allowed-ips 10.244.2.0/24 peer ${key(3)} endpoint 192.0.2.13:51820 persistent-keepalive 0 allowed-ips 10.244.30.0/24`,
    ]);
  });

  test("records without a usable key, a duplicated key or this node's key are reported and skipped", async () => {
    const n = node();
    await n.backend.up();
    const r = n.backend.apply([peer(2, { publicKey: undefined }) as PeerLease, peer(3, { publicKey: "bm90IGEga2V5" }), peer(4), peer(5, { publicKey: key(4) }), peer(6, { publicKey: OWN.publicKey })]);
    expect(r.problems).toEqual([
      "peer node2: skipped, its lease has no WireGuard public key (is it running the wireguard backend?)",
      "peer node3: skipped, its lease has no WireGuard public key (is it running the wireguard backend?)",
      `peer node5: skipped, public key ${key(4).slice(0, 8)}… is also used by node4 (a copied state directory?)`,
      `peer node6: skipped, it has this node's public key ${OWN.publicKey.slice(0, 8)}… (a copied state directory?)`,
    ]);
    expect(n.wg.device("weft-wg")?.peers.map((p) => p.publicKey)).toEqual([key(4)]);
  });

  test("a device deleted by hand comes back whole on the next apply", async () => {
    const n = node();
    await n.backend.up();
    n.backend.apply([peer(2)]);
    n.ops();
    n.nl.outside((x) => x.deleteLink("weft-wg"));
    const r = n.backend.apply([peer(2)]);
    expect(r.errors).toEqual([]);
    expect(n.ops()).toEqual([
      "add address 10.244.1.0/32 dev weft-wg",
      "set link weft-wg up",
      "replace route 10.244.0.0/16 dev weft-wg proto 87",
      "wg create weft-wg (userspace)",
      `wg set weft-wg private-key (hidden) listen-port 51820 peer ${key(2)} endpoint 192.0.2.12:51820 persistent-keepalive 0 allowed-ips 10.244.2.0/24`,
    ]);
  });

  test("a peer removed by hand is put back; other peers are left alone", async () => {
    const n = node();
    await n.backend.up();
    n.backend.apply([peer(2), peer(3)]);
    n.ops();
    n.wg.outside("weft-wg", (d) => (d.peers = d.peers.filter((p) => p.publicKey !== key(3))));
    expect(n.backend.apply([peer(2), peer(3)]).changes).toBe(1);
    expect(n.ops()).toEqual([`wg set weft-wg peer ${key(3)} endpoint 192.0.2.13:51820 persistent-keepalive 0 allowed-ips 10.244.3.0/24`]);
  });

  test("a TUN named weft-wg whose wireguard-go died is replaced", async () => {
    const n = node();
    await n.backend.up();
    n.backend.apply([peer(2)]);
    n.ops();
    n.wg.killDaemon("weft-wg");
    n.backend.apply([peer(2)]);
    expect(n.ops().slice(0, 2)).toEqual(["delete link weft-wg", "add address 10.244.1.0/32 dev weft-wg"]);
    expect(n.wg.device("weft-wg")?.peers.map((p) => p.publicKey)).toEqual([key(2)]);
    expect(n.lines.join("\n")).toContain("recreating weft-wg: it is a tun device with no WireGuard behind it");
  });

  test("wrong MTU, a foreign address, a foreign private key and port are put right", async () => {
    const n = node();
    await n.backend.up();
    n.backend.apply([]);
    n.ops();
    n.nl.outside((x) => {
      x.setMtu("weft-wg", 1300);
      x.addAddress({ dev: "weft-wg", cidr: "10.99.0.1/32" });
    });
    n.wg.outside("weft-wg", (d) => {
      d.privateKey = key(7);
      d.listenPort = 1234;
    });
    n.backend.apply([]);
    expect(n.ops()).toEqual(["set link weft-wg mtu 1420", "delete address 10.99.0.1/32 dev weft-wg", "wg set weft-wg private-key (hidden) listen-port 51820"]);
  });

  test("a failed device change is reported and retried by the next apply", async () => {
    const n = node();
    await n.backend.up();
    n.wg.failOn(/peer/, "Address already in use");
    const r = n.backend.apply([peer(2)]);
    expect(r.errors).toEqual([expect.stringContaining("Address already in use")]);
    expect(n.backend.apply([peer(2)]).errors).toEqual([]);
    expect(n.wg.device("weft-wg")?.peers.length).toBe(1);
  });

  test("a restarted agent adopts the running device with zero changes", async () => {
    const a = node();
    await a.backend.up();
    a.backend.apply([peer(2), peer(3)]);
    a.backend.close();
    const b = node({ nl: a.nl, wg: a.wg });
    b.ops();
    await b.backend.up();
    expect(b.backend.apply([peer(2), peer(3)])).toEqual({ changes: 0, errors: [], problems: [] });
    expect(b.ops()).toEqual([]);
  });

  test("rebuilt after the node's own address moved: the first apply sends every peer's endpoint again (dropping WireGuard's cached source address), later applies nothing", async () => {
    const a = node();
    await a.backend.up();
    a.backend.apply([peer(2), peer(3)]);
    a.backend.close();
    const b = node({ nl: a.nl, wg: a.wg, deps: { ...V4_NODE, publicIp: "192.0.2.111" }, resendEndpoints: true });
    b.ops();
    await b.backend.up();
    expect(b.backend.apply([peer(2), peer(3)])).toMatchObject({ changes: 2, errors: [] });
    const sent = b.ops();
    expect(sent.length).toBe(1);
    for (const p of [peer(2), peer(3)]) expect(sent[0]).toContain(`endpoint ${p.publicIp}:51820`);
    expect(b.lines.filter((l) => l.includes("sent again (this node's address moved)")).length).toBe(2);
    expect(b.backend.apply([peer(2), peer(3)])).toEqual({ changes: 0, errors: [], problems: [] });
    expect(b.ops()).toEqual([]);
  });

  test("the private key appears in no operation and no log line", async () => {
    const n = node({ c: { ...conf, psk: key(99) } });
    await n.backend.up();
    n.backend.apply([peer(2)]);
    n.nl.outside((x) => x.deleteLink("weft-wg"));
    n.backend.apply([peer(2)]);
    const text = [...n.wg.ops, ...n.lines].join("\n");
    expect(text).not.toContain(OWN.privateKey);
    expect(text).not.toContain(key(99));
    expect(n.lines.join("\n")).toContain(OWN.publicKey);
  });

  test("stats: peers with handshake time and bytes, read again at most once a second", async () => {
    const n = node();
    await n.backend.up();
    n.backend.apply([peer(2)]);
    n.wg.outside("weft-wg", (d) => Object.assign(d.peers[0]!, { lastHandshakeMs: 123, rxBytes: 10, txBytes: 20 }));
    const seen = { device: "weft-wg", publicKey: key(2), endpoint: "192.0.2.12:51820", lastHandshakeMs: 123, rxBytes: 10, txBytes: 20 };
    expect(n.backend.stats()).toEqual({ impl: "userspace", peers: [seen], rxBytesTotal: 10, txBytesTotal: 20 });
    n.wg.outside("weft-wg", (d) => Object.assign(d.peers[0]!, { lastHandshakeMs: 456, rxBytes: 30, txBytes: 40 }));
    expect(n.backend.stats().peers).toEqual([seen]); // read less than a second ago
    n.tick(1000);
    expect(n.backend.stats()).toEqual({ impl: "userspace", peers: [{ ...seen, lastHandshakeMs: 456, rxBytes: 30, txBytes: 40 }], rxBytesTotal: 30, txBytesTotal: 40 });
  });
});

const DUAL_NODE: Partial<BackendDeps> = { ...V4_NODE, publicIpv6: "2001:db8::11", ownIpv6Subnet: "fd00:10:244:1::/64", ipv6Network: "fd00:10:244::/56" };
const V6_NODE: Partial<BackendDeps> = { publicIpv6: "2001:db8::11", ownIpv6Subnet: "fd00:10:244:1::/64", ipv6Network: "fd00:10:244::/56" };
const dualPeer = (n: number, over: Partial<PeerLease> = {}): PeerLease => peer(n, { ipv6Subnet: `fd00:10:244:${n}::/64`, publicIpv6: `2001:db8::${10 + n}`, ...over });
const v6Peer = (n: number, over: Partial<PeerLease> = {}): PeerLease => ({ nodeName: `node${n}`, ipv6Subnet: `fd00:10:244:${n}::/64`, publicIpv6: `2001:db8::${10 + n}`, publicKey: key(n), ...over });

describe("wireguard backend with IPv6 pods", () => {
  test("Mode separate, dual-stack: IPv4 pods on weft-wg (ListenPort, IPv4 endpoints), IPv6 pods on weft-wg-v6 (ListenPortV6, IPv6 endpoints), one key; a second apply changes nothing", async () => {
    const n = node({ deps: DUAL_NODE });
    await n.backend.up();
    expect(n.ops()).toEqual([
      "add address 10.244.1.0/32 dev weft-wg",
      "set link weft-wg up",
      "add address fd00:10:244:1::/128 dev weft-wg-v6",
      "set link weft-wg-v6 up",
      "wg create weft-wg (userspace)",
      "wg set weft-wg private-key (hidden) listen-port 51820",
      "wg create weft-wg-v6 (userspace)",
      "wg set weft-wg-v6 private-key (hidden) listen-port 51821",
    ]);
    const r = n.backend.apply([dualPeer(2), dualPeer(3)]);
    expect(r).toEqual({ changes: 6, errors: [], problems: [] });
    expect(n.ops()).toEqual([
      "replace route 10.244.0.0/16 dev weft-wg proto 87",
      "replace route fd00:10:244::/56 dev weft-wg-v6 proto 87",
      `wg set weft-wg peer ${key(2)} endpoint 192.0.2.12:51820 persistent-keepalive 0 allowed-ips 10.244.2.0/24 peer ${key(3)} endpoint 192.0.2.13:51820 persistent-keepalive 0 allowed-ips 10.244.3.0/24`,
      `wg set weft-wg-v6 peer ${key(2)} endpoint [2001:db8::12]:51821 persistent-keepalive 0 allowed-ips fd00:10:244:2::/64 peer ${key(3)} endpoint [2001:db8::13]:51821 persistent-keepalive 0 allowed-ips fd00:10:244:3::/64`,
    ]);
    expect(n.wg.device("weft-wg-v6")?.privateKey).toBe(OWN.privateKey);
    expect(n.backend.apply([dualPeer(2), dualPeer(3)])).toEqual({ changes: 0, errors: [], problems: [] });
    expect(n.ops()).toEqual([]);
  });

  test("Mode separate, IPv6 only: weft-wg-v6 alone; a peer without an IPv6 public address is a problem", async () => {
    const n = node({ deps: V6_NODE });
    await n.backend.up();
    expect(n.backend.device).toBe("weft-wg-v6");
    expect(n.nl.getLink("weft-wg")).toBeUndefined();
    const r = n.backend.apply([v6Peer(2), v6Peer(3, { publicIpv6: undefined, publicIp: "192.0.2.13" })]);
    expect(r.problems).toEqual(["peer node3: skipped on weft-wg-v6 (Mode separate), its lease has no IPv6 public address"]);
    expect(n.wg.device("weft-wg-v6")?.peers.map((p) => [p.endpoint, p.allowedIps])).toEqual([["[2001:db8::12]:51821", ["fd00:10:244:2::/64"]]]);
    expect(n.nl.listRoutes().map((x) => `${x.dst} dev ${x.dev}`)).toContain("fd00:10:244::/56 dev weft-wg-v6");
  });

  test("Mode separate with IPv6 pods but no IPv6 underlay address: an error naming the Mode and the flag", () => {
    expect(() => node({ deps: { ...DUAL_NODE, publicIpv6: undefined } })).toThrow(/Mode separate carries IPv6 pods over IPv6 \(weft-wg-v6\), and this node has no IPv6 underlay address \(--public-ipv6\)/);
    expect(() => node({ c: { ...conf, mode: "ipv6" }, deps: { ...DUAL_NODE, publicIpv6: undefined } })).toThrow(/Mode ipv6 reaches peers over IPv6, and this node has no IPv6 underlay address/);
    expect(() => node({ c: { ...conf, mode: "ipv4" }, deps: V6_NODE })).toThrow(/Mode ipv4 reaches peers over IPv4, and this node has no IPv4 underlay address \(--public-ip\)/);
  });

  test("Modes auto, ipv4, ipv6: one weft-wg with both addresses and both routes, each peer's allowed IPs both its subnets, its endpoint by the Mode", async () => {
    for (const [mode, endpoint] of [["ipv4", "192.0.2.12:51820"], ["ipv6", "[2001:db8::12]:51820"], ["auto", "192.0.2.12:51820"]] as const) {
      const n = node({ c: { ...conf, mode }, deps: DUAL_NODE });
      await n.backend.up();
      expect(n.nl.getLink("weft-wg-v6")).toBeUndefined();
      expect(n.nl.listAddresses("weft-wg").map((a) => a.cidr).sort()).toEqual(["10.244.1.0/32", "fd00:10:244:1::/128"]);
      expect(n.backend.apply([dualPeer(2)]).problems).toEqual([]);
      expect(n.wg.device("weft-wg")?.peers.map((p) => [p.endpoint, p.allowedIps])).toEqual([[endpoint, ["10.244.2.0/24", "fd00:10:244:2::/64"]]]);
      expect(n.nl.listRoutes().filter((x) => x.protocol === 87).map((x) => `${x.dst} dev ${x.dev}`).sort()).toEqual(["10.244.0.0/16 dev weft-wg", "fd00:10:244::/56 dev weft-wg"]);
    }
  });

  test("a Mode change removes the device the new Mode does not use", async () => {
    const a = node({ deps: DUAL_NODE });
    await a.backend.up();
    a.backend.apply([dualPeer(2)]);
    const b = node({ c: { ...conf, mode: "auto" }, deps: DUAL_NODE, nl: a.nl, wg: a.wg });
    b.ops();
    await b.backend.up();
    expect(b.ops()).toContain("delete link weft-wg-v6");
    expect(a.nl.getLink("weft-wg-v6")).toBeUndefined();
    b.backend.apply([dualPeer(2)]);
    expect(b.nl.listRoutes().filter((x) => x.protocol === 87).map((x) => `${x.dst} dev ${x.dev}`).sort()).toEqual(["10.244.0.0/16 dev weft-wg", "fd00:10:244::/56 dev weft-wg"]);
  });

  test("the kernel's IPv6 link-local address on a device is left alone", async () => {
    const n = node({ deps: DUAL_NODE });
    await n.backend.up();
    n.backend.apply([dualPeer(2)]);
    n.nl.outside((x) => x.addAddress({ dev: "weft-wg-v6", cidr: "fe80::1234/64" }));
    n.ops();
    expect(n.backend.apply([dualPeer(2)])).toEqual({ changes: 0, errors: [], problems: [] });
  });

  test("stats list a node once per device it is a peer on", async () => {
    const n = node({ deps: DUAL_NODE });
    await n.backend.up();
    n.backend.apply([dualPeer(2)]);
    n.wg.outside("weft-wg-v6", (d) => Object.assign(d.peers[0]!, { lastHandshakeMs: 5, rxBytes: 7, txBytes: 9 }));
    n.tick(1000);
    const s = n.backend.stats();
    expect(s.peers.map((p) => [p.device, p.endpoint, p.lastHandshakeMs])).toEqual([["weft-wg", "192.0.2.12:51820", 0], ["weft-wg-v6", "[2001:db8::12]:51821", 5]]);
    expect([s.rxBytesTotal, s.txBytesTotal]).toEqual([7, 9]);
  });

  test("Mode auto picks flannel's endpoint: IPv4 unless it is private and both IPv6 addresses are not; the one family both ends have", () => {
    const self = { publicIp: "192.0.2.11", publicIpv6: "2001:db8::11" };
    const at = (s: typeof self | Partial<typeof self>, p: Partial<typeof self>) => peerEndpoint("auto", s, p, 51820);
    expect(at(self, { publicIp: "192.0.2.12", publicIpv6: "2001:db8::12" })).toEqual({ endpoint: "192.0.2.12:51820" });
    expect(at(self, { publicIp: "10.0.0.12", publicIpv6: "2001:db8::12" })).toEqual({ endpoint: "[2001:db8::12]:51820" });
    expect(at(self, { publicIp: "172.16.0.12", publicIpv6: "fd00::12" })).toEqual({ endpoint: "172.16.0.12:51820" });
    expect(at({ ...self, publicIpv6: "fd00::11" }, { publicIp: "192.168.0.12", publicIpv6: "2001:db8::12" })).toEqual({ endpoint: "192.168.0.12:51820" });
    expect(at(self, { publicIpv6: "2001:db8::12" })).toEqual({ endpoint: "[2001:db8::12]:51820" });
    expect(at({ publicIpv6: "2001:db8::11" }, { publicIp: "10.0.0.12", publicIpv6: "fd00::12" })).toEqual({ endpoint: "[fd00::12]:51820" });
    expect(at({ publicIp: "192.0.2.11" }, { publicIpv6: "2001:db8::12" })).toEqual({ problem: "it shares no underlay address family with this node" });
    expect(peerEndpoint(6, self, { publicIp: "192.0.2.12" }, 1)).toEqual({ problem: "its lease has no IPv6 public address" });
    expect(["10.1.2.3", "172.31.255.255", "192.168.1.1", "fc00::1", "fd12::1"].every(isPrivateAddress)).toBe(true);
    expect(["172.32.0.1", "192.0.2.1", "11.0.0.1", "2001:db8::1", "fe00::1"].some(isPrivateAddress)).toBe(false);
  });
});

describe("traffic totals", () => {
  const p = (k: number, rx: number, tx: number) => ({ publicKey: key(k), allowedIps: [], persistentKeepaliveInterval: 0, lastHandshakeMs: 0, rxBytes: rx, txBytes: tx });
  test("never go down when a peer goes, is re-keyed or its counters restart", () => {
    const t = new TrafficTotals();
    t.update([p(1, 100, 10), p(2, 50, 5)]);
    expect(t.totals()).toEqual({ rx: 150, tx: 15 });
    t.update([p(1, 120, 12)]); // peer 2 removed
    expect(t.totals()).toEqual({ rx: 170, tx: 17 });
    t.update([p(1, 3, 1)]); // device recreated: counters restart
    expect(t.totals()).toEqual({ rx: 173, tx: 18 });
  });

  test("one key on two devices counts as two peers", () => {
    const t = new TrafficTotals();
    t.update([{ ...p(1, 100, 10), device: "weft-wg" }, { ...p(1, 50, 5), device: "weft-wg-v6" }]);
    expect(t.totals()).toEqual({ rx: 150, tx: 15 });
    t.update([{ ...p(1, 110, 11), device: "weft-wg" }, { ...p(1, 60, 6), device: "weft-wg-v6" }]);
    expect(t.totals()).toEqual({ rx: 170, tx: 17 });
  });
});
