/** The duplicate-subnet check every lease simulation ends with, for both address families. */
import { describeSubnets, subnetsOf } from "../src/lease/families.ts";
import type { Lease } from "../src/lease/types.ts";

/** Subnets (IPv4 or IPv6) held by more than one of the given committed leases, as "subnet (a, b)". */
export function duplicateSubnets(owned: Iterable<[string, Lease]>): string[] {
  const seen = new Map<string, string>();
  const dup: string[] = [];
  for (const [name, own] of owned) {
    for (const s of subnetsOf(own)) {
      if (seen.has(s)) dup.push(`${s} (${seen.get(s)}, ${name})`);
      else seen.set(s, name);
    }
  }
  return dup;
}

/** One node's view of the cluster as text: "name=subnets" per routed lease, sorted. */
export const viewText = (leases: Lease[]): string =>
  leases
    .map((l) => `${l.nodeName}=${describeSubnets(l)}`)
    .sort()
    .join(",");
