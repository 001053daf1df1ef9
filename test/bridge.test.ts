import { expect, test } from "bun:test";
import { ensureBridge } from "../src/bridge.ts";
import { RecordingNetlink } from "./fakes/netlink.ts";

const spec = { name: "cni0", subnet: "10.244.3.0/24", network: "10.244.0.0/16", mtu: 1450 };

test("creates the bridge with the subnet's gateway address, then changes nothing", () => {
  const nl = new RecordingNetlink();
  expect(ensureBridge(nl, spec)).toBeGreaterThan(0);
  expect(nl.takeOps().join("\n")).toContain("10.244.3.1/24 dev cni0");
  expect(nl.getLink("cni0")?.kind).toBe("bridge");
  expect(nl.listAddresses("cni0").map((a) => a.cidr)).toEqual(["10.244.3.1/24"]);
  expect(ensureBridge(nl, spec)).toBe(0);
  expect(nl.takeOps()).toEqual([]);
});

test("after a renumber the old gateway goes, foreign addresses stay", () => {
  const nl = new RecordingNetlink();
  ensureBridge(nl, spec);
  nl.outside((k) => k.addAddress({ dev: "cni0", cidr: "192.168.50.1/24" }));
  expect(ensureBridge(nl, { ...spec, subnet: "10.244.9.0/24" })).toBe(2);
  expect(nl.listAddresses("cni0").map((a) => a.cidr).sort()).toEqual(["10.244.9.1/24", "192.168.50.1/24"]);
});

test("refuses a non-bridge device of that name", () => {
  const nl = new RecordingNetlink();
  nl.addLinkRaw({ name: "cni0", kind: "veth" });
  expect(() => ensureBridge(nl, spec)).toThrow(/ensure bridge cni0: a veth device/);
});

test("dual-stack: both gateways on the bridge; after an IPv6 renumber only the stale IPv6 gateway goes; the kernel's link-local stays", () => {
  const nl = new RecordingNetlink();
  const dual = { ...spec, ipv6Subnet: "fd00:10:244:3::/64", ipv6Network: "fd00:10:244::/56" };
  expect(ensureBridge(nl, dual)).toBeGreaterThan(0);
  expect(nl.listAddresses("cni0").map((a) => a.cidr)).toEqual(["10.244.3.1/24", "fd00:10:244:3::1/64"]);
  nl.outside((k) => k.addAddress({ dev: "cni0", cidr: "fe80::a:b/64" }));
  expect(ensureBridge(nl, dual)).toBe(0);
  nl.takeOps();
  expect(ensureBridge(nl, { ...dual, ipv6Subnet: "fd00:10:244:9::/64" })).toBe(2);
  expect(nl.takeOps()).toEqual(["delete address fd00:10:244:3::1/64 dev cni0", "add address fd00:10:244:9::1/64 dev cni0"]);
  expect(nl.listAddresses("cni0").map((a) => a.cidr).sort()).toEqual(["10.244.3.1/24", "fd00:10:244:9::1/64", "fe80::a:b/64"]);
});

test("IPv6-only: only the IPv6 gateway", () => {
  const nl = new RecordingNetlink();
  ensureBridge(nl, { name: "cni0", ipv6Subnet: "fd00:10:244:3::/64", ipv6Network: "fd00:10:244::/56", mtu: 1430 });
  expect(nl.listAddresses("cni0").map((a) => a.cidr)).toEqual(["fd00:10:244:3::1/64"]);
});
