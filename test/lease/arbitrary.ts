/** Random lease records for the property tests: few names, subnets and counters, so merges collide often. */
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
    claimedAt: fc.integer({ min: 0, max: 5 }),
    deleted: fc.boolean(),
  })
  .map((r) => {
    const l: Lease = { ...r, backend: { type: "vxlan", vtepMac: "aa:bb:cc:dd:ee:ff" }, renewedAt: r.claimedAt };
    if (!r.deleted) delete l.deleted;
    return l;
  });
