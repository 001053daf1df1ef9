import { describe, expect, test } from "bun:test";
import { defaultRouteInterface, firstIPv4, interfaceForAddress, interfaceMtu, resolveUnderlay } from "../../src/sys/iface.ts";
import type { AddressSpec, LinkInfo, Netlink, RouteInfo } from "../../src/sys/netlink.ts";

/** Only the read methods iface.ts uses; anything else would be a bug and throws. */
function stub(links: LinkInfo[], addrs: AddressSpec[], routes: RouteInfo[]): Netlink {
  const unexpected = () => {
    throw new Error("iface discovery must only read");
  };
  return new Proxy({} as Netlink, {
    get(_, key) {
      if (key === "getLink") return (n: string) => links.find((l) => l.name === n);
      if (key === "listAddresses") return (dev?: string) => addrs.filter((a) => dev === undefined || a.dev === dev);
      if (key === "listRoutes") return () => routes;
      return unexpected;
    },
  });
}

const host = stub(
  [
    { index: 1, name: "lo", mtu: 65536, up: true },
    { index: 2, name: "ens3", mtu: 9000, up: true },
    { index: 3, name: "ens4", mtu: 1500, up: true },
  ],
  [
    { dev: "lo", cidr: "127.0.0.1/8" },
    { dev: "ens3", cidr: "203.0.113.7/24" },
    { dev: "ens3", cidr: "203.0.113.8/24" },
    { dev: "ens4", cidr: "192.0.2.5/24" },
  ],
  [
    { dst: "203.0.113.0/24", dev: "ens3", protocol: 2, table: 254 },
    { dst: "0.0.0.0/0", gateway: "203.0.113.1", dev: "ens3", protocol: 3, table: 254 },
  ],
);

describe("interface discovery", () => {
  test("default route device, first IPv4, MTU, device of an address", () => {
    expect(defaultRouteInterface(host)).toBe("ens3");
    expect(firstIPv4(host, "ens3")).toBe("203.0.113.7");
    expect(firstIPv4(host, "nope")).toBeUndefined();
    expect(interfaceMtu(host, "ens3")).toBe(9000);
    expect(interfaceMtu(host, "nope")).toBeUndefined();
    expect(interfaceForAddress(host, "192.0.2.5")).toBe("ens4");
    expect(interfaceForAddress(host, "198.51.100.1")).toBeUndefined();
  });

  test.each([
    [{}, { iface: "ens3", ip: "203.0.113.7", mtu: 9000 }],
    [{ iface: "ens4" }, { iface: "ens4", ip: "192.0.2.5", mtu: 1500 }],
    [{ publicIp: "192.0.2.5" }, { iface: "ens4", ip: "192.0.2.5", mtu: 1500 }],
    // An address not on any device (1:1 NAT) keeps the default route's device.
    [{ publicIp: "198.51.100.9" }, { iface: "ens3", ip: "198.51.100.9", mtu: 9000 }],
  ])("resolveUnderlay(%o)", (opts, want) => expect(resolveUnderlay(host, opts)).toEqual(want));

  test("errors say what is missing and which flag to set", () => {
    const bare = stub([{ index: 2, name: "ens3", mtu: 1500, up: true }], [], []);
    expect(() => resolveUnderlay(bare)).toThrow("find underlay interface: no IPv4 default route; set --iface");
    expect(() => resolveUnderlay(bare, { iface: "ens9" })).toThrow("find underlay interface: interface ens9 does not exist");
    expect(() => resolveUnderlay(bare, { iface: "ens3" })).toThrow("find underlay address: interface ens3 has no IPv4 address; set --public-ip");
  });
});
