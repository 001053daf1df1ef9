/**
 * Random lease records for the property tests: few names, subnets and counters, so merges
 * collide often; IPv4-only, dual-stack and IPv6-only records alike.
 */
import fc from "fast-check";
import type { Lease } from "../../src/lease/types.ts";

export const names = ["a", "b", "c", "node-1", "node-2"];
export const arbLease: fc.Arbitrary<Lease> = fc
  .record({
    nodeName: fc.constantFrom(...names),
    nodeId: fc.constantFrom("0".repeat(32), "f".repeat(32), "0123456789abcdef0123456789abcdef"),
    generation: fc.integer({ min: 1, max: 3 }),
    version: fc.integer({ min: 0, max: 3 }),
    subnet: fc.integer({ min: 1, max: 4 }).map((i) => `10.244.${i}.0/24`),
    publicIp: fc.constantFrom("192.0.2.1", "192.0.2.2"),
    ipv6Subnet: fc.option(fc.integer({ min: 1, max: 4 }).map((i) => `fd00:10:244:${i}::/64`), { nil: undefined }),
    publicIpv6: fc.option(fc.constantFrom("2001:db8::1", "2001:db8::2"), { nil: undefined }),
    v6only: fc.boolean(),
    claimedAt: fc.integer({ min: 0, max: 5 }),
    deleted: fc.boolean(),
  })
  .map(({ v6only, ...r }) => {
    const l: Lease = { ...r, backend: { type: "vxlan", vtepMac: "aa:bb:cc:dd:ee:ff" }, renewedAt: r.claimedAt };
    if (r.ipv6Subnet === undefined) delete l.ipv6Subnet;
    if (r.publicIpv6 === undefined) delete l.publicIpv6;
    // IPv6-only: no IPv4 subnet or public IP (a record keeps one subnet and one address of some family).
    if (v6only && l.ipv6Subnet !== undefined && l.publicIpv6 !== undefined) {
      delete l.subnet;
      delete l.publicIp;
    }
    if (!r.deleted) delete l.deleted;
    return l;
  });
