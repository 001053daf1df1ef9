/**
 * The plugin's output per spec version: the same attachment written as each version's
 * result, a chained prevResult passed through with ours appended, errors and VERSION.
 */
import { describe, expect, test } from "bun:test";
import { formatError, formatResult, fromPrevResult, mergeResults, versionInfo } from "../../src/cni/result.ts";
import { CniError, SUPPORTED_VERSIONS, type CniResult } from "../../src/cni/spec.ts";

const attachment: CniResult = {
  interfaces: [
    { name: "cni0", mac: "02:00:00:00:00:b0" },
    { name: "veth0123456789a", mac: "02:00:00:00:01:00", mtu: 1450 },
    { name: "eth0", mac: "02:00:00:00:00:01", mtu: 1450, sandbox: "/run/netns/pod1" },
  ],
  ips: [{ address: "10.244.3.2/24", gateway: "10.244.3.1", interface: 2 }],
  routes: [{ dst: "0.0.0.0/0", gw: "10.244.3.1" }],
};

describe("result per spec version", () => {
  test.each(["0.3.0", "0.3.1", "0.4.0"] as const)("%s: ips carry version \"4\", interfaces no mtu", (v) => {
    expect(formatResult(attachment, v)).toEqual({
      cniVersion: v,
      interfaces: [
        { name: "cni0", mac: "02:00:00:00:00:b0" },
        { name: "veth0123456789a", mac: "02:00:00:00:01:00" },
        { name: "eth0", mac: "02:00:00:00:00:01", sandbox: "/run/netns/pod1" },
      ],
      ips: [{ version: "4", address: "10.244.3.2/24", gateway: "10.244.3.1", interface: 2 }],
      routes: [{ dst: "0.0.0.0/0", gw: "10.244.3.1" }],
    });
  });

  test("1.0.0: no ips version, no interface mtu", () => {
    const r = formatResult(attachment, "1.0.0") as { ips: object[]; interfaces: object[] };
    expect(r.ips).toEqual([{ address: "10.244.3.2/24", gateway: "10.244.3.1", interface: 2 }]);
    expect(r.interfaces[2]).toEqual({ name: "eth0", mac: "02:00:00:00:00:01", sandbox: "/run/netns/pod1" });
  });

  test("1.1.0: interfaces carry their mtu", () => {
    const r = formatResult(attachment, "1.1.0") as { cniVersion: string; interfaces: object[] };
    expect(r.cniVersion).toBe("1.1.0");
    expect(r.interfaces).toEqual([
      { name: "cni0", mac: "02:00:00:00:00:b0" },
      { name: "veth0123456789a", mac: "02:00:00:00:01:00", mtu: 1450 },
      { name: "eth0", mac: "02:00:00:00:00:01", mtu: 1450, sandbox: "/run/netns/pod1" },
    ]);
  });

  test("an IPv6 address is version \"6\" in the old format", () => {
    const r = formatResult({ interfaces: [], ips: [{ address: "fd00::2/64" }], routes: [] }, "0.4.0") as { ips: object[] };
    expect(r.ips).toEqual([{ version: "6", address: "fd00::2/64" }]);
  });

  test("dns is written only when there is some; routes only when there are some", () => {
    expect(Object.keys(formatResult({ interfaces: [], ips: [], routes: [] }, "1.0.0"))).toEqual(["cniVersion", "interfaces", "ips"]);
    expect(formatResult({ interfaces: [], ips: [], routes: [], dns: { nameservers: ["10.96.0.10"] } }, "1.0.0").dns).toEqual({ nameservers: ["10.96.0.10"] });
  });
});

describe("chaining", () => {
  test("a previous result is kept and ours appended with interface indexes shifted", () => {
    const prev = fromPrevResult({
      cniVersion: "0.4.0",
      interfaces: [{ name: "lo", sandbox: "/run/netns/pod1" }],
      ips: [{ version: "4", address: "127.0.0.1/8", interface: 0 }],
      dns: { nameservers: ["1.1.1.1"] },
    });
    const merged = mergeResults(prev, attachment);
    expect(merged.interfaces.map((i) => i.name)).toEqual(["lo", "cni0", "veth0123456789a", "eth0"]);
    expect(merged.ips).toEqual([
      { address: "127.0.0.1/8", interface: 0 },
      { address: "10.244.3.2/24", gateway: "10.244.3.1", interface: 3 },
    ]);
    expect(merged.dns).toEqual({ nameservers: ["1.1.1.1"] });
    expect(formatResult(merged, "1.0.0").ips).toEqual([
      { address: "127.0.0.1/8", interface: 0 },
      { address: "10.244.3.2/24", gateway: "10.244.3.1", interface: 3 },
    ]);
  });

  test("our dns wins over the previous one", () => {
    expect(mergeResults(fromPrevResult({ dns: { domain: "a" } }), { ...attachment, dns: { domain: "b" } }).dns).toEqual({ domain: "b" });
  });
});

describe("errors and VERSION", () => {
  test("error JSON: cniVersion, code, msg, details", () => {
    expect(formatError(new CniError(11, "try again", "because"), "0.4.0")).toEqual({ cniVersion: "0.4.0", code: 11, msg: "try again", details: "because" });
    expect(formatError(new CniError(7, "bad"))).toEqual({ cniVersion: "1.1.0", code: 7, msg: "bad" });
  });

  test("VERSION lists every supported version and echoes the one asked for", () => {
    expect(versionInfo("0.4.0")).toEqual({ cniVersion: "0.4.0", supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] });
    expect(versionInfo(undefined).cniVersion).toBe("1.1.0");
    expect(versionInfo("9.9.9").cniVersion).toBe("1.1.0");
    expect(SUPPORTED_VERSIONS).toContain("1.1.0");
  });
});
