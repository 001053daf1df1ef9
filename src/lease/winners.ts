/**
 * Who holds a subnet now: among the live claims on it (expiry.ts), the one the claim
 * order prefers (earliest claimedAt, then name; allocator.ts claimWinner).
 */
import type { Member } from "../gossip/types.ts";
import { claimWinner } from "./allocator.ts";
import type { Liveness } from "./expiry.ts";
import type { LeaseTable } from "./table.ts";
import type { Lease } from "./types.ts";

export class Winners {
  constructor(private readonly o: { nodeName: string; table: LeaseTable; liveness: Liveness }) {}

  /** Calls `fn` with the lease that holds each claimed subnet now (the live claim that wins it). */
  forEachWinner(members: Map<string, Member>, now: number, fn: (w: Lease) => void): void {
    const { table, liveness } = this.o;
    for (const subnet of table.claimedSubnets()) {
      const w = claimWinner(table.claimants(subnet), (c) => liveness.isLive(c, members, now));
      if (w) fn(w);
    }
  }

  /** True when a live claim of another node is on `subnet`. */
  subnetTakenByOther(subnet: string, members: Map<string, Member>, now: number): boolean {
    for (const c of this.o.table.claimants(subnet)) if (c.nodeName !== this.o.nodeName && this.o.liveness.isLive(c, members, now)) return true;
    return false;
  }

  /** The live claim that beats `mine` on its subnet, if any. */
  betterClaim(mine: Lease, members: Map<string, Member>, now: number): Lease | undefined {
    const rivals = this.o.table.claimants(mine.subnet).filter((c) => c.nodeName !== this.o.nodeName && this.o.liveness.isLive(c, members, now));
    if (rivals.length === 0) return undefined;
    const w = claimWinner([mine, ...rivals]);
    return w === mine ? undefined : w;
  }
}
