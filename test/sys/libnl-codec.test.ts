import { describe, expect, test } from "bun:test";
import { invalidIfName, invalidInt, ipBytes, ipCidr, NetlinkError, routeText } from "../../src/sys/libnl-codec.ts";

describe("NetlinkError", () => {
  test("message is the operation, then the detail; code and op kept", () => {
    const e = new NetlinkError("add route 10.244.2.0/24 via 10.244.2.0 dev weft.1", "Object exists", 6);
    expect(e.message).toBe("add route 10.244.2.0/24 via 10.244.2.0 dev weft.1: Object exists");
    expect(e.op).toBe("add route 10.244.2.0/24 via 10.244.2.0 dev weft.1");
    expect(e.code).toBe(6);
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe("NetlinkError");
  });
});

describe("routeText", () => {
  test.each([
    [{ dst: "10.244.2.0/24" }, "10.244.2.0/24"],
    [{ dst: "10.244.2.0/24", gateway: "10.244.2.0", dev: "weft.1", onlink: true }, "10.244.2.0/24 via 10.244.2.0 dev weft.1 onlink"],
    [{ dst: "10.244.2.0/24", dev: "cni0", protocol: 87 }, "10.244.2.0/24 dev cni0 proto 87"],
    [{ dst: "0.0.0.0/0", gateway: "192.0.2.1", onlink: false }, "0.0.0.0/0 via 192.0.2.1"],
  ])("%o -> %s", (r, text) => expect(routeText(r)).toBe(text));
});

describe("interface names", () => {
  test.each([
    ["weft.1", undefined],
    ["cni0", undefined],
    ["a".repeat(15), undefined],
    ["", "interface name is empty"],
    ["a".repeat(16), `interface name "${"a".repeat(16)}" is longer than 15 bytes`],
    ["..", 'interface name ".." is reserved'],
    ["a/b", `interface name "a/b" contains '/', ':', NUL or whitespace`],
    ["a b", `interface name "a b" contains '/', ':', NUL or whitespace`],
    ["eth0:1", `interface name "eth0:1" contains '/', ':', NUL or whitespace`],
  ])("%j -> %j", (name, detail) => expect(invalidIfName(name)).toBe(detail as string | undefined));
  test("non-strings are refused", () => expect(invalidIfName(7)).toBe("interface name is empty"));
});

describe("IPv4 and IPv6 addresses and prefixes as bytes", () => {
  test("CIDR with and without the network rule", () => {
    expect(ipCidr("10.244.1.1/24")).toEqual({ family: 4, bytes: new Uint8Array([10, 244, 1, 1]), prefix: 24 });
    expect(ipCidr("0.0.0.0/0", { network: true })).toEqual({ family: 4, bytes: new Uint8Array(4), prefix: 0 });
    expect(() => ipCidr("10.244.1.1/24", { network: true })).toThrow('"10.244.1.1/24" has host bits set (did you mean 10.244.1.0/24?)');
    expect(() => ipCidr("10.0.0.0/33")).toThrow("prefix must be 0..32");
    // IPv6: 16 bytes, network check, prefix bound.
    expect(ipCidr("fd00:10:244:3::1/64")).toEqual({ family: 6, bytes: Uint8Array.from([0xfd, 0, 0, 0x10, 0x02, 0x44, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1]), prefix: 64 });
    expect(ipCidr("::/0", { network: true })).toEqual({ family: 6, bytes: new Uint8Array(16), prefix: 0 });
    expect(() => ipCidr("fd00::1/64", { network: true })).toThrow('"fd00::1/64" has host bits set (did you mean fd00::/64?)');
    expect(() => ipCidr("fd00::/129")).toThrow("prefix must be 0..128");
    expect(ipBytes("2001:db8::11")).toEqual({ family: 6, bytes: Uint8Array.from([0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11]) });
    expect(ipBytes("192.0.2.1")).toEqual({ family: 4, bytes: Uint8Array.from([192, 0, 2, 1]) });
    expect(() => ipBytes("fe80::1%eth0")).toThrow("zone indexes are not supported");
  });
});

describe("invalidInt", () => {
  test.each([
    [1450, undefined],
    [68, undefined],
    [67, "mtu must be an integer in 68..65535, got 67"],
    [1.5, "mtu must be an integer in 68..65535, got 1.5"],
    ["1450", 'mtu must be an integer in 68..65535, got "1450"'],
  ])("mtu %j -> %j", (v, detail) => expect(invalidInt("mtu", v, 68, 65535)).toBe(detail as string | undefined));
});
