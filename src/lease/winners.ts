/**
 * Who holds a subnet now: among the live claims on it (expiry.ts), the one the claim
 * order prefers (earliest claimedAt, then name; allocator.ts claimWinner). Each subnet of
 * either family is decided on its own, so a dual-stack record can win one of its subnets
 * and lose the other.
 */
import type { Member } from "../gossip/types.ts";
import { claimWinner } from "./allocator.ts";
import type { Liveness } from "./expiry.ts";
import { subnetsOf } from "./families.ts";
import type { LeaseTable } from "./table.ts";
import type { Lease } from "./types.ts";

export class Winners {
  constructor(private readonly o: { nodeName: string; table: LeaseTable; liveness: Liveness }) {}

  /** Calls `fn` with each claimed subnet and the lease that holds it now (the live claim that wins it). */
  forEachWinner(members: Map<string, Member>, now: number, fn: (w: Lease, subnet: string) => void): void {
    const { table, liveness } = this.o;
    for (const subnet of table.claimedSubnets()) {
      const w = claimWinner(table.claimants(subnet), (c) => liveness.isLive(c, members, now));
      if (w) fn(w, subnet);
    }
  }

  /** True when a live claim of another node is on `subnet`. */
  subnetTakenByOther(subnet: string, members: Map<string, Member>, now: number): boolean {
    for (const c of this.o.table.claimants(subnet)) if (c.nodeName !== this.o.nodeName && this.o.liveness.isLive(c, members, now)) return true;
    return false;
  }

  /** Each of `mine`'s subnets that a live claim of another node beats, with that claim. */
  lostSubnets(mine: Lease, members: Map<string, Member>, now: number): Map<string, Lease> {
    const lost = new Map<string, Lease>();
    for (const subnet of subnetsOf(mine)) {
      const rivals = this.o.table.claimants(subnet).filter((c) => c.nodeName !== this.o.nodeName && this.o.liveness.isLive(c, members, now));
      if (rivals.length === 0) continue;
      const w = claimWinner([mine, ...rivals]);
      if (w !== mine) lost.set(subnet, w!);
    }
    return lost;
  }

  /** A live claim that beats `mine` on one of its subnets, if any. */
  betterClaim(mine: Lease, members: Map<string, Member>, now: number): Lease | undefined {
    return this.lostSubnets(mine, members, now).values().next().value;
  }
}
