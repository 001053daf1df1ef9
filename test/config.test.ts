import { describe, expect, test } from "bun:test";
import { ConfigError } from "../src/config.ts";
import { parseNetConf } from "../src/net-conf.ts";
import { resolveAgentFlags } from "../src/agent-flags.ts";

const netConfError = (input: unknown): string => {
  try {
    parseNetConf(input);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error("expected a ConfigError");
};

describe("net-conf defaults (flannel's rules)", () => {
  const table: [string, Record<string, unknown>, Partial<ReturnType<typeof parseNetConf>>][] = [
    ["/16 → /24 from .1 to .255", { Network: "10.244.0.0/16" }, { subnetLen: 24, subnetMin: "10.244.1.0", subnetMax: "10.244.255.0" }],
    ["/22 → /24", { Network: "10.244.0.0/22" }, { subnetLen: 24, subnetMin: "10.244.1.0", subnetMax: "10.244.3.0" }],
    ["/23 → prefix+2", { Network: "10.244.0.0/23" }, { subnetLen: 25, subnetMin: "10.244.0.128", subnetMax: "10.244.1.128" }],
    ["explicit range", { Network: "10.244.0.0/16", SubnetLen: 26, SubnetMin: "10.244.0.64", SubnetMax: "10.244.1.0" }, { subnetLen: 26, subnetMin: "10.244.0.64", subnetMax: "10.244.1.0" }],
  ];
  for (const [name, input, want] of table) {
    test(name, () => expect(parseNetConf(input)).toMatchObject(want));
  }
  test("backend defaults", () => {
    expect(parseNetConf({ Network: "10.244.0.0/16" }).backend).toEqual({ type: "vxlan", vni: 1, port: 8472, directRouting: false });
    expect(parseNetConf({ Network: "10.244.0.0/16", Backend: { Type: "udp" } }).backend).toEqual({ type: "udp", port: 8285 });
    expect(parseNetConf({ Network: "10.244.0.0/16", Backend: { Type: "host-gw" } }).backend).toEqual({ type: "host-gw" });
    expect(parseNetConf({ Network: "10.244.0.0/16", Backend: { Type: "vxlan", VNI: 4, Port: 4789, DirectRouting: true } }).backend).toEqual({
      type: "vxlan",
      vni: 4,
      port: 4789,
      directRouting: true,
    });
  });
  test("wireguard defaults are flannel's", () => {
    expect(parseNetConf({ Network: "10.244.0.0/16", Backend: { Type: "wireguard" } }).backend).toEqual({
      type: "wireguard",
      listenPort: 51820,
      listenPortV6: 51821,
      persistentKeepaliveInterval: 0,
      mode: "separate",
    });
    const psk = Buffer.alloc(32, 7).toString("base64");
    expect(
      parseNetConf({ Network: "10.244.0.0/16", Backend: { Type: "wireguard", PSK: psk, ListenPort: 5000, ListenPortV6: 5001, PersistentKeepaliveInterval: 25, Mode: "auto", MTU: 1380 } }).backend,
    ).toEqual({ type: "wireguard", listenPort: 5000, listenPortV6: 5001, persistentKeepaliveInterval: 25, mode: "auto", psk, mtu: 1380 });
    for (const mode of ["ipv4", "ipv6", "auto", "separate"]) {
      expect(parseNetConf({ Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "fd00:10:244::/56", Backend: { Type: "wireguard", Mode: mode } }).backend).toMatchObject({ mode });
    }
  });
  test("known-but-unused flannel keys are reported", () => {
    expect(parseNetConf({ Network: "10.244.0.0/16", EnableNFTables: true, Backend: { Type: "vxlan", GBP: false } }).ignoredKeys).toEqual([
      "EnableNFTables",
      "Backend.GBP",
    ]);
  });
});

describe("IPv6 and dual-stack net-conf (flannel's keys and defaults)", () => {
  const v6 = { EnableIPv6: true, IPv6Network: "fd00:10:244::/56" };
  const table: [string, Record<string, unknown>, Partial<ReturnType<typeof parseNetConf>>][] = [
    [
      "dual-stack: /56 → /64 from the second to the last subnet",
      { Network: "10.244.0.0/16", ...v6 },
      { enableIPv4: true, network: "10.244.0.0/16", enableIPv6: true, ipv6Network: "fd00:10:244::/56", ipv6SubnetLen: 64, ipv6SubnetMin: "fd00:10:244:1::", ipv6SubnetMax: "fd00:10:244:ff::" },
    ],
    ["/62 → /64", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "fd00::/62" }, { ipv6SubnetLen: 64, ipv6SubnetMin: "fd00:0:0:1::", ipv6SubnetMax: "fd00:0:0:3::" }],
    ["/63 → prefix+2", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "fd00::/63" }, { ipv6SubnetLen: 65, ipv6SubnetMin: "fd00::8000:0:0:0", ipv6SubnetMax: "fd00:0:0:1:8000::" }],
    ["/124, the smallest network → /126", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "fd00::/124" }, { ipv6SubnetLen: 126, ipv6SubnetMin: "fd00::4", ipv6SubnetMax: "fd00::c" }],
    [
      "explicit IPv6 range, non-canonical text made canonical",
      { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "FD00:0010:0244::/56", IPv6SubnetLen: 72, IPv6SubnetMin: "fd00:10:244:2::", IPv6SubnetMax: "fd00:10:244:3:ff00::" },
      { ipv6Network: "fd00:10:244::/56", ipv6SubnetLen: 72, ipv6SubnetMin: "fd00:10:244:2::", ipv6SubnetMax: "fd00:10:244:3:ff00::" },
    ],
    ["a global unicast network", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "2001:db8:42::/48" }, { ipv6SubnetMin: "2001:db8:42:1::", ipv6SubnetMax: "2001:db8:42:ffff::" }],
  ];
  for (const [name, input, want] of table) test(name, () => expect(parseNetConf(input)).toMatchObject(want));

  test("IPv6-only: no IPv4 fields at all, and the IPv4 keys flannel would ignore are reported", () => {
    const c = parseNetConf({ EnableIPv4: false, ...v6 });
    expect(c).toMatchObject({ enableIPv4: false, enableIPv6: true, ipv6SubnetLen: 64 });
    for (const k of ["network", "subnetLen", "subnetMin", "subnetMax"] as const) expect(c[k]).toBeUndefined();
    expect(parseNetConf({ EnableIPv4: false, Network: "10.244.0.0/16", SubnetLen: 20, ...v6 }).ignoredKeys).toEqual(["Network (EnableIPv4 is false)", "SubnetLen (EnableIPv4 is false)"]);
  });

  test("IPv4-only (the default): no IPv6 fields, and IPv6 keys without EnableIPv6 are reported as flannel ignores them", () => {
    const c = parseNetConf({ Network: "10.244.0.0/16", IPv6Network: "fd00::/56", IPv6SubnetLen: 64 });
    for (const k of ["ipv6Network", "ipv6SubnetLen", "ipv6SubnetMin", "ipv6SubnetMax"] as const) expect(c[k]).toBeUndefined();
    expect(c.enableIPv6).toBe(false);
    expect(c.ignoredKeys).toEqual(["IPv6Network (EnableIPv6 is false)", "IPv6SubnetLen (EnableIPv6 is false)"]);
  });
});

describe("net-conf errors name the field", () => {
  const table: [string, unknown, RegExp][] = [
    ["SubnetLen 40", { Network: "10.244.0.0/16", SubnetLen: 40 }, /SubnetLen/],
    ["SubnetLen 31", { Network: "10.244.0.0/16", SubnetLen: 31 }, /SubnetLen: must be at most 30/],
    ["SubnetLen too short", { Network: "10.244.0.0/16", SubnetLen: 17 }, /SubnetLen: must be at least 18/],
    ["SubnetLen string", { Network: "10.244.0.0/16", SubnetLen: "24" }, /SubnetLen/],
    ["missing Network", {}, /Network: required/],
    ["bad Network", { Network: "10.244.0.0" }, /Network: .*expected a CIDR/],
    ["host bits", { Network: "10.244.1.0/16" }, /Network: .*host bits/],
    ["tiny network", { Network: "10.244.0.0/29" }, /Network: .*too small/],
    ["SubnetMin outside", { Network: "10.244.0.0/16", SubnetMin: "10.245.0.0" }, /SubnetMin: .*not inside Network/],
    ["SubnetMax misaligned", { Network: "10.244.0.0/16", SubnetMax: "10.244.3.7" }, /SubnetMax: .*boundary/],
    ["max below min", { Network: "10.244.0.0/16", SubnetMin: "10.244.9.0", SubnetMax: "10.244.3.0" }, /SubnetMax: .*below SubnetMin/],
    ["unknown key", { Network: "10.244.0.0/16", Netwrok: "x" }, /unknown key "Netwrok"/],
    ["every unknown key at once, top level and backend", { Network: "10.244.0.0/16", Netwrok: "x", Backend: { Type: "vxlan", VNi: 2 } }, /unknown key "Netwrok" .*; unknown key "Backend.VNi" for backend vxlan \(known: Type, VNI, Port/],
    ["unknown backend", { Network: "10.244.0.0/16", Backend: { Type: "ipsec" } }, /Backend.Type: .*vxlan.*wireguard/],
    ["VNI range", { Network: "10.244.0.0/16", Backend: { Type: "vxlan", VNI: -1 } }, /Backend.VNI/],
    ["Port type", { Network: "10.244.0.0/16", Backend: { Type: "udp", Port: "x" } }, /Backend.Port/],
    ["unknown backend key", { Network: "10.244.0.0/16", Backend: { Type: "host-gw", VNI: 3 } }, /Backend.VNI/],
    ["wireguard PSK not base64", { Network: "10.244.0.0/16", Backend: { Type: "wireguard", PSK: "not-a-key" } }, /Backend.PSK: expected a base64 32-byte key/],
    ["wireguard PSK 31 bytes", { Network: "10.244.0.0/16", Backend: { Type: "wireguard", PSK: Buffer.alloc(31, 1).toString("base64") } }, /Backend.PSK/],
    ["wireguard PSK non-canonical", { Network: "10.244.0.0/16", Backend: { Type: "wireguard", PSK: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=" } }, /Backend.PSK/],
    ["wireguard PSK number", { Network: "10.244.0.0/16", Backend: { Type: "wireguard", PSK: 5 } }, /Backend.PSK/],
    ["wireguard ListenPort range", { Network: "10.244.0.0/16", Backend: { Type: "wireguard", ListenPort: 70000 } }, /Backend.ListenPort:/],
    ["wireguard ListenPort 0", { Network: "10.244.0.0/16", Backend: { Type: "wireguard", ListenPort: 0 } }, /Backend.ListenPort:/],
    ["wireguard ListenPortV6 range", { Network: "10.244.0.0/16", Backend: { Type: "wireguard", ListenPortV6: -1 } }, /Backend.ListenPortV6/],
    ["wireguard keepalive negative", { Network: "10.244.0.0/16", Backend: { Type: "wireguard", PersistentKeepaliveInterval: -5 } }, /Backend.PersistentKeepaliveInterval/],
    ["wireguard keepalive too big", { Network: "10.244.0.0/16", Backend: { Type: "wireguard", PersistentKeepaliveInterval: 70000 } }, /Backend.PersistentKeepaliveInterval/],
    ["wireguard keepalive fraction", { Network: "10.244.0.0/16", Backend: { Type: "wireguard", PersistentKeepaliveInterval: 2.5 } }, /Backend.PersistentKeepaliveInterval/],
    ["wireguard Mode unknown", { Network: "10.244.0.0/16", Backend: { Type: "wireguard", Mode: "both" } }, /Backend.Mode: expected "separate"/],
    ["wireguard MTU", { Network: "10.244.0.0/16", Backend: { Type: "wireguard", MTU: 100 } }, /Backend.MTU/],
    ["wireguard unknown key", { Network: "10.244.0.0/16", Backend: { Type: "wireguard", Port: 51820 } }, /unknown key "Backend.Port" for backend wireguard/],
    ["not an object", [1, 2], /invalid net-conf/],
    // IPv6 and dual-stack
    ["both families off", { Network: "10.244.0.0/16", EnableIPv4: false, EnableIPv6: false }, /EnableIPv4: at least one of EnableIPv4 and EnableIPv6/],
    ["EnableIPv6 without IPv6Network", { Network: "10.244.0.0/16", EnableIPv6: true }, /IPv6Network: required while EnableIPv6 is true/],
    ["IPv6-only without IPv6Network", { EnableIPv4: false, EnableIPv6: true }, /IPv6Network: required/],
    ["EnableIPv4 without Network", { EnableIPv6: true, IPv6Network: "fd00::/56" }, /Network: required while EnableIPv4 is true/],
    ["EnableIPv6 not a boolean", { Network: "10.244.0.0/16", EnableIPv6: "true", IPv6Network: "fd00::/56" }, /EnableIPv6/],
    ["EnableIPv4 not a boolean", { Network: "10.244.0.0/16", EnableIPv4: 1 }, /EnableIPv4/],
    ["Network given as IPv6", { Network: "fd00:10:244::/56" }, /Network: expected an IPv4 CIDR, got fd00:10:244::\/56 \(an IPv6 pod network goes in IPv6Network\)/],
    ["IPv6Network given as IPv4", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "10.96.0.0/16" }, /IPv6Network: expected an IPv6 CIDR, got 10.96.0.0\/16 \(an IPv4 pod network goes in Network\)/],
    ["IPv6Network not a CIDR", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "fd00::" }, /IPv6Network: .*missing \/prefix/],
    ["IPv6Network garbage", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "fd00::zz/56" }, /IPv6Network: .*expected a CIDR/],
    ["IPv6Network not a string", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: 56 }, /IPv6Network/],
    ["IPv6Network host bits", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "fd00::1/56" }, /IPv6Network: .*host bits set; expected fd00::\/56/],
    ["IPv6Network too small", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "fd00::/125" }, /IPv6Network: .*too small; the smallest useful network is \/124/],
    ["IPv6Network multicast", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "ff05::/56" }, /IPv6Network: ff05::\/56 is multicast/],
    ["IPv6Network link-local", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "fe80::/56" }, /IPv6Network: fe80::\/56 is link-local/],
    ["IPv6Network IPv4-mapped", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "::ffff:10.0.0.0/104" }, /IPv6Network: .* is IPv4-mapped/],
    ["IPv6Network holding ::1", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "::/64" }, /IPv6Network: ::\/64 holds the unspecified and loopback addresses/],
    ["IPv6Network everything", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "::/0" }, /IPv6Network: ::\/0 holds the unspecified and loopback/],
    ["IPv6SubnetLen 127", { Network: "10.244.0.0/16", ...{ EnableIPv6: true, IPv6Network: "fd00::/56" }, IPv6SubnetLen: 127 }, /IPv6SubnetLen: must be at most 126/],
    ["IPv6SubnetLen 129", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "fd00::/56", IPv6SubnetLen: 129 }, /IPv6SubnetLen: Too big/],
    ["IPv6SubnetLen below prefix+2", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "fd00::/56", IPv6SubnetLen: 57 }, /IPv6SubnetLen: must be at least 58 so that fd00::\/56 holds four subnets/],
    ["IPv6SubnetLen fractional", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "fd00::/56", IPv6SubnetLen: 64.5 }, /IPv6SubnetLen/],
    ["IPv6SubnetMin outside", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "fd00::/56", IPv6SubnetMin: "fd01::" }, /IPv6SubnetMin: fd01:: is not inside Network fd00::\/56/],
    ["IPv6SubnetMin IPv4", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "fd00::/56", IPv6SubnetMin: "10.244.1.0" }, /IPv6SubnetMin: 10.244.1.0 is not inside/],
    ["IPv6SubnetMin not an address", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "fd00::/56", IPv6SubnetMin: "first" }, /IPv6SubnetMin: .*expected an address like "fd00:10:244:1::"/],
    ["IPv6SubnetMin misaligned", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "fd00::/56", IPv6SubnetMin: "fd00:0:0:1::1" }, /IPv6SubnetMin: .*not on a \/64 boundary/],
    ["IPv6SubnetMax outside", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "fd00::/56", IPv6SubnetMax: "fd00:0:0:100::" }, /IPv6SubnetMax: .*not inside/],
    ["IPv6SubnetMax misaligned", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "fd00::/56", IPv6SubnetMax: "fd00:0:0:7:8000::" }, /IPv6SubnetMax: .*boundary/],
    ["IPv6 range reversed", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "fd00::/56", IPv6SubnetMin: "fd00:0:0:9::", IPv6SubnetMax: "fd00:0:0:3::" }, /IPv6SubnetMax: fd00:0:0:3:: is below IPv6SubnetMin fd00:0:0:9::/],
    ["IPv6SubnetMax not a string", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "fd00::/56", IPv6SubnetMax: 5 }, /IPv6SubnetMax/],
  ];
  for (const [name, input, re] of table) test(name, () => expect(netConfError(input)).toMatch(re));
});

describe("agent flags", () => {
  const base = { insecure: true };
  test("defaults follow the contract", () => {
    const f = resolveAgentFlags({ ...base, "node-name": "n1" }, {});
    expect(f).toMatchObject({
      netConfPath: "/etc/weft/net-conf.json",
      nodeName: "n1",
      gossipPort: 7946,
      join: [],
      stateDir: "/var/lib/weft",
      subnetFile: "/run/flannel/subnet.env",
      apiListen: { host: "127.0.0.1", port: 7947 },
      bridge: "cni0",
      ipMasq: false,
      logLevel: "info",
      logFormat: "text",
      gossipLegacyWire: "off",
    });
  });
  test("--gossip-legacy-wire takes off, accept or send (flag or WEFT_GOSSIP_LEGACY_WIRE)", () => {
    for (const mode of ["off", "accept", "send"] as const) expect(resolveAgentFlags({ ...base, "gossip-legacy-wire": mode }, {}).gossipLegacyWire).toBe(mode);
    expect(resolveAgentFlags({ ...base }, { WEFT_GOSSIP_LEGACY_WIRE: "send" }).gossipLegacyWire).toBe("send");
  });
  test("env sets, flag wins", () => {
    const f = resolveAgentFlags({ ...base, "gossip-port": "8000" }, { WEFT_GOSSIP_PORT: "9000", WEFT_NODE_NAME: "envnode", WEFT_IP_MASQ: "true" });
    expect(f.gossipPort).toBe(8000);
    expect(f.nodeName).toBe("envnode");
    expect(f.ipMasq).toBe(true);
  });
  test("join accepts IPv4, DNS names (with _ and a trailing dot) and bracketed IPv6", () => {
    const f = resolveAgentFlags({ ...base, join: "192.0.2.1,seed-1.weft_nodes.example.:7000,[2001:db8::1]:7946,node2" }, {});
    expect(f.join).toEqual([
      { host: "192.0.2.1", port: 7946 },
      { host: "seed-1.weft_nodes.example.", port: 7000 },
      { host: "2001:db8::1", port: 7946 },
      { host: "node2", port: 7946 },
    ]);
  });
  test("join list gets the gossip port by default", () => {
    const f = resolveAgentFlags({ ...base, join: "192.0.2.1, 192.0.2.2:9999", "gossip-port": "7000" }, {});
    expect(f.join).toEqual([
      { host: "192.0.2.1", port: 7000 },
      { host: "192.0.2.2", port: 9999 },
    ]);
  });
  test("--public-ipv6 (or WEFT_PUBLIC_IPV6) is kept in canonical form; absent by default", () => {
    expect(resolveAgentFlags({ ...base }, {}).publicIpv6).toBeUndefined();
    expect(resolveAgentFlags({ ...base, "public-ipv6": "2001:DB8:0::0:11" }, {}).publicIpv6).toBe("2001:db8::11");
    expect(resolveAgentFlags({ ...base }, { WEFT_PUBLIC_IPV6: "2001:db8::12" }).publicIpv6).toBe("2001:db8::12");
    expect(resolveAgentFlags({ ...base, "public-ipv6": "2001:db8::13" }, { WEFT_PUBLIC_IPV6: "2001:db8::12" }).publicIpv6).toBe("2001:db8::13");
  });
  test("off / none", () => {
    const f = resolveAgentFlags({ ...base, "api-listen": "off", bridge: "none" }, {});
    expect(f.apiListen).toBeNull();
    expect(f.bridge).toBeNull();
  });
  const bad: [string, Record<string, string | boolean>, RegExp][] = [
    ["port text", { "gossip-port": "abc" }, /--gossip-port/],
    ["port range", { "gossip-port": "70000" }, /--gossip-port/],
    ["public ip", { "public-ip": "300.1.1.1" }, /--public-ip/],
    ["public ipv6 given IPv4", { "public-ipv6": "192.0.2.10" }, /--public-ipv6: expected an IPv6 address/],
    ["public ipv6 garbage", { "public-ipv6": "2001:db8::xyz" }, /--public-ipv6/],
    ["public ipv6 with a zone", { "public-ipv6": "fe80::1%eth0" }, /--public-ipv6/],
    ["log level", { "log-level": "loud" }, /--log-level/],
    ["api listen", { "api-listen": "localhost" }, /--api-listen/],
    ["join", { join: "a:b:c" }, /--join/],
    ["join host with a space", { join: "a b" }, /--join: expected HOST:PORT with HOST an IPv4 address, a DNS name or an \[IPv6\] address, got "a b"/],
    ["join bracketed non-IPv6", { join: "[seed.example]:7946" }, /--join: expected HOST:PORT with HOST/],
    ["join bad IPv4", { join: "300.1.2.3" }, /--join: expected HOST:PORT with HOST/],
    ["public ip loopback", { "public-ip": "127.0.0.1" }, /--public-ip: 127\.0\.0\.1 is a loopback address; peers would refuse a lease naming it/],
    ["public ip link-local (cloud metadata range)", { "public-ip": "169.254.169.254" }, /--public-ip: 169\.254\.169\.254 is a link-local address/],
    ["public ipv6 link-local", { "public-ipv6": "fe80::1" }, /--public-ipv6: fe80::1 is a link-local address/],
    ["public ipv6 multicast", { "public-ipv6": "ff02::1" }, /--public-ipv6: ff02::1 is a multicast address/],
    ["node name", { "node-name": "has space" }, /--node-name/],
    ["legacy wire mode", { "gossip-legacy-wire": "on" }, /--gossip-legacy-wire: expected off, accept or send/],
  ];
  for (const [name, flags, re] of bad) {
    test(`rejects ${name}`, () => expect(() => resolveAgentFlags({ ...base, ...flags }, {})).toThrow(re));
  }
  test("a bad value from the environment names the variable too", () => {
    expect(() => resolveAgentFlags({ ...base }, { WEFT_GOSSIP_PORT: "abc" })).toThrow("--gossip-port (set by WEFT_GOSSIP_PORT): expected a port number 1..65535");
    expect(() => resolveAgentFlags({ ...base }, { WEFT_JOIN: "a b" })).toThrow('--join (set by WEFT_JOIN): expected HOST:PORT with HOST');
    expect(() => resolveAgentFlags({ ...base, "gossip-port": "abc" }, {})).toThrow(/^--gossip-port: expected a port number 1\.\.65535$/);
  });
  test("no key without --insecure", () => {
    expect(() => resolveAgentFlags({}, {})).toThrow(/--key-file: required/);
  });
  test("--release-on-stop is off by default (restarts keep the lease); flag or WEFT_RELEASE_ON_STOP turns it on", () => {
    expect(resolveAgentFlags({ ...base }, {}).releaseOnStop).toBe(false);
    expect(resolveAgentFlags({ ...base, "release-on-stop": true }, {}).releaseOnStop).toBe(true);
    expect(resolveAgentFlags({ ...base }, { WEFT_RELEASE_ON_STOP: "true" }).releaseOnStop).toBe(true);
  });
  test("--log-level-file (or WEFT_LOG_LEVEL_FILE) is kept as given; empty is refused", () => {
    expect(resolveAgentFlags({ ...base }, {}).logLevelFile).toBeUndefined();
    expect(resolveAgentFlags({ ...base }, { WEFT_LOG_LEVEL_FILE: "/etc/weft/log-level" }).logLevelFile).toBe("/etc/weft/log-level");
    expect(() => resolveAgentFlags({ ...base, "log-level-file": "" }, {})).toThrow("--log-level-file: expected a file path");
  });
  test("bad boolean env names the variable", () => {
    expect(() => resolveAgentFlags({ ...base }, { WEFT_IP_MASQ: "maybe" })).toThrow(/WEFT_IP_MASQ/);
  });
});
