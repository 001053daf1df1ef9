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
    expect(parseNetConf({ Network: "10.244.0.0/16", Backend: { Type: "wireguard", Mode: "ipv4" } }).backend).toMatchObject({ mode: "ipv4" });
  });
  test("known-but-unused flannel keys are reported", () => {
    expect(parseNetConf({ Network: "10.244.0.0/16", EnableNFTables: true, Backend: { Type: "vxlan", GBP: false } }).ignoredKeys).toEqual([
      "EnableNFTables",
      "Backend.GBP",
    ]);
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
    ["unknown backend", { Network: "10.244.0.0/16", Backend: { Type: "ipsec" } }, /Backend.Type: .*vxlan.*wireguard/],
    ["VNI range", { Network: "10.244.0.0/16", Backend: { Type: "vxlan", VNI: -1 } }, /Backend.VNI/],
    ["Port type", { Network: "10.244.0.0/16", Backend: { Type: "udp", Port: "x" } }, /Backend.Port/],
    ["unknown backend key", { Network: "10.244.0.0/16", Backend: { Type: "host-gw", VNI: 3 } }, /Backend.VNI/],
    ["IPv6 only", { Network: "10.244.0.0/16", EnableIPv6: true }, /EnableIPv6/],
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
    ["wireguard Mode ipv6", { Network: "10.244.0.0/16", Backend: { Type: "wireguard", Mode: "ipv6" } }, /Backend.Mode: "ipv6" needs IPv6/],
    ["wireguard separate with IPv6", { Network: "10.244.0.0/16", EnableIPv6: true, Backend: { Type: "wireguard" } }, /Backend.Mode: "separate" with EnableIPv6/],
    ["wireguard MTU", { Network: "10.244.0.0/16", Backend: { Type: "wireguard", MTU: 100 } }, /Backend.MTU/],
    ["wireguard unknown key", { Network: "10.244.0.0/16", Backend: { Type: "wireguard", Port: 51820 } }, /unknown key "Backend.Port" for backend wireguard/],
    ["not an object", [1, 2], /invalid net-conf/],
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
  test("join list gets the gossip port by default", () => {
    const f = resolveAgentFlags({ ...base, join: "192.0.2.1, 192.0.2.2:9999", "gossip-port": "7000" }, {});
    expect(f.join).toEqual([
      { host: "192.0.2.1", port: 7000 },
      { host: "192.0.2.2", port: 9999 },
    ]);
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
    ["log level", { "log-level": "loud" }, /--log-level/],
    ["api listen", { "api-listen": "localhost" }, /--api-listen/],
    ["join", { join: "a:b:c" }, /--join/],
    ["node name", { "node-name": "has space" }, /--node-name/],
    ["legacy wire mode", { "gossip-legacy-wire": "on" }, /--gossip-legacy-wire: expected off, accept or send/],
  ];
  for (const [name, flags, re] of bad) {
    test(`rejects ${name}`, () => expect(() => resolveAgentFlags({ ...base, ...flags }, {})).toThrow(re));
  }
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
