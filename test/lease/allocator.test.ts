import { describe, expect, test } from "bun:test";
import { SubnetExhaustedError, claimWinner, pickSubnet, subnetCount } from "../../src/lease/allocator.ts";
import { rangeOf } from "../../src/lease/record-validate.ts";
import { parseNetConf } from "../../src/net-conf.ts";
import type { Lease } from "../../src/lease/types.ts";

const lease = (nodeName: string, claimedAt: number): Lease => ({
  nodeName, nodeId: "0".repeat(32), generation: 1, version: 0, subnet: "10.244.1.0/24", publicIp: "192.0.2.1", backend: { type: "host-gw" }, claimedAt,
});

describe("pickSubnet", () => {
  const range = rangeOf(parseNetConf({ Network: "10.244.0.0/16" }));

  test("flannel's default range (10.244.1.0..10.244.255.0) holds 255 subnets", () => {
    expect(subnetCount(range)).toBe(255n);
  });

  test("is stable per name and spreads names", () => {
    expect(pickSubnet("node-a", range, () => false)).toBe(pickSubnet("node-a", range, () => false));
    const picks = new Set(Array.from({ length: 50 }, (_, i) => pickSubnet(`node-${i}`, range, () => false)));
    expect(picks.size).toBeGreaterThan(40);
  });

  test("probes onward past taken subnets and stays in range", () => {
    const first = pickSubnet("node-a", range, () => false);
    const next = pickSubnet("node-a", range, (s) => s === first);
    expect(next).not.toBe(first);
    const taken = new Set<string>();
    for (let i = 0; i < 255; i++) taken.add(pickSubnet("x", range, (s) => taken.has(s)));
    expect(taken.size).toBe(255);
    expect(taken.has("10.244.0.0/24")).toBe(false);
    expect(taken.has("10.244.255.0/24")).toBe(true);
  });

  test("a full network is a clear error naming the range and count", () => {
    const r = rangeOf(parseNetConf({ Network: "10.244.0.0/16", SubnetMax: "10.244.254.0" }));
    expect(() => pickSubnet("n", r, () => true)).toThrow(SubnetExhaustedError);
    expect(() => pickSubnet("n", r, () => true)).toThrow(
      "subnet exhausted: all 254 subnets of 10.244.0.0/16 between 10.244.1.0 and 10.244.254.0 are leased",
    );
  });

  test("exactly-50 range used by the simulations", () => {
    const r = rangeOf(parseNetConf({ Network: "10.244.0.0/24", SubnetLen: 30, SubnetMin: "10.244.0.4", SubnetMax: "10.244.0.200" }));
    expect(subnetCount(r)).toBe(50n);
  });
});

describe("claimWinner", () => {
  test.each([
    [[lease("b", 5), lease("a", 6)], "b"],
    [[lease("b", 5), lease("a", 5)], "a"],
    [[lease("a", 5), lease("b", 5)], "a"],
    [[lease("z", 1)], "z"],
  ] as const)("%j → %s, whatever the order", (claims, winner) => {
    expect(claimWinner(claims)!.nodeName).toBe(winner);
    expect(claimWinner([...claims].reverse())!.nodeName).toBe(winner);
  });
  test("no claims, no winner", () => expect(claimWinner([])).toBeUndefined());
});
