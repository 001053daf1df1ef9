import { describe, expect, test } from "bun:test";
import { defaultRouteInterface, firstGlobalIPv6, firstIPv4, interfaceForAddress, interfaceMtu, resolveUnderlay } from "../../src/sys/iface.ts";
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

describe("interface discovery with IPv6", () => {
  const dual = stub(
    [
      { index: 2, name: "ens3", mtu: 1500, up: true },
      { index: 3, name: "ens4", mtu: 9000, up: true },
    ],
    [
      { dev: "ens3", cidr: "203.0.113.7/24" },
      { dev: "ens3", cidr: "fe80::7/64" },
      { dev: "ens3", cidr: "2001:db8:7::7/64" },
      { dev: "ens3", cidr: "2001:db8:7::8/64" },
      { dev: "ens4", cidr: "fe80::9/64" },
      { dev: "ens4", cidr: "fd12::9/64" },
    ],
    [
      { dst: "0.0.0.0/0", gateway: "203.0.113.1", dev: "ens3", protocol: 3, table: 254 },
      { dst: "::/0", gateway: "fe80::1", dev: "ens4", protocol: 9, table: 254, priority: 1024 },
    ],
  );
  const v6only = stub([{ index: 3, name: "ens4", mtu: 9000, up: true }], [{ dev: "ens4", cidr: "fe80::9/64" }, { dev: "ens4", cidr: "2001:db8::9/64" }], [{ dst: "::/0", gateway: "fe80::1", dev: "ens4", protocol: 9, table: 254, priority: 1024 }]);

  test.each([
    // Without IPv6 pods, no IPv6 address is looked for.
    [dual, {}, { iface: "ens3", ip: "203.0.113.7", mtu: 1500 }],
    // The first global IPv6 address of the chosen device; link-local ones are skipped.
    [dual, { ipv6: true }, { iface: "ens3", ip: "203.0.113.7", ipv6: "2001:db8:7::7", mtu: 1500 }],
    [dual, { ipv6: true, iface: "ens4" }, { iface: "ens4", ipv6: "fd12::9", mtu: 9000 }],
    // --public-ipv6 picks the device that carries it (and implies IPv6).
    [dual, { publicIpv6: "fd12::9" }, { iface: "ens4", ipv6: "fd12::9", mtu: 9000 }],
    [dual, { publicIpv6: "2001:db8:7::8" }, { iface: "ens3", ip: "203.0.113.7", ipv6: "2001:db8:7::8", mtu: 1500 }],
    // No IPv4 default route: the IPv6 one's device.
    [v6only, { ipv6: true }, { iface: "ens4", ipv6: "2001:db8::9", mtu: 9000 }],
  ] as const)("resolveUnderlay %#", (nl, opts, want) => expect(resolveUnderlay(nl, opts)).toEqual(want));

  test("errors name what is missing and both flags", () => {
    expect(() => resolveUnderlay(v6only)).toThrow("find underlay interface: no IPv4 default route; set --iface");
    const linkLocalOnly = stub([{ index: 3, name: "ens4", mtu: 1500, up: true }], [{ dev: "ens4", cidr: "fe80::9/64" }], []);
    expect(() => resolveUnderlay(linkLocalOnly, { ipv6: true })).toThrow("find underlay interface: no IPv4 or IPv6 default route; set --iface");
    expect(() => resolveUnderlay(linkLocalOnly, { ipv6: true, iface: "ens4" })).toThrow("find underlay address: interface ens4 has neither an IPv4 nor a global IPv6 address; set --public-ip or --public-ipv6");
    expect(firstGlobalIPv6(linkLocalOnly, "ens4")).toBeUndefined();
  });
});
