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
