/**
 * Liveness and expiry of leases. A lease holds its subnet while it is not deleted and
 * its owner was seen within the TTL: seen = the newest of the record's renewedAt, the
 * owner's gossip lastSeen, and "now" while the owner is alive or suspect. The last sign
 * of life is kept after the gossip layer reaps a dead member, so expiry counts from it,
 * not from the last refresh. Records silent for twice the TTL (tombstones included) are
 * dropped from the table.
 */
import type { Member } from "../gossip/types.ts";
import type { LeaseTable } from "./table.ts";
import type { Lease } from "./types.ts";

export class Liveness {
  /** Last time each owner was seen alive, kept after the gossip layer forgets the member. */
  private readonly lastAlive = new Map<string, number>();

  constructor(
    private readonly o: {
      nodeName: string;
      leaseTtlMs: number;
      /** True while this node's own committed lease stands (committed and not displaced). */
      ownAlive: () => boolean;
    },
  ) {}

  /** When `l`'s owner last showed life (now, if it is up). */
  lastSeenOf(l: Lease, members: Map<string, Member> | undefined, now: number): number {
    if (l.nodeName === this.o.nodeName) {
      if (this.o.ownAlive()) return now;
      // Before commit the member under our name is us, not the record's past owner.
      return l.renewedAt ?? l.claimedAt;
    }
    let seen = Math.max(l.renewedAt ?? l.claimedAt, this.lastAlive.get(l.nodeName) ?? 0);
    const mb = members?.get(l.nodeName);
    if (mb) {
      if (mb.state === "alive" || mb.state === "suspect") {
        this.lastAlive.set(l.nodeName, now);
        return now;
      }
      seen = Math.max(seen, mb.lastSeen);
    }
    return seen;
  }

  /** A record that holds its subnet now: not deleted and owner seen within the TTL. */
  isLive(l: Lease, members: Map<string, Member> | undefined, now: number): boolean {
    return !l.deleted && this.lastSeenOf(l, members, now) + this.o.leaseTtlMs > now;
  }

  forget(name: string): void {
    this.lastAlive.delete(name);
  }
}

/** The periodic sweep: drops records silent for 2×TTL and notices when the set of live peer leases changed. */
export class Expiry {
  private lastLiveKey = "";

  constructor(private readonly o: { nodeName: string; leaseTtlMs: number; table: LeaseTable; liveness: Liveness }) {}

  /**
   * Removes expired records (and what liveness kept of them). `liveChanged` is true when
   * a peer lease expired or came back since the previous sweep, without any record
   * arriving: leases() differs then.
   */
  sweep(members: Map<string, Member>, now: number): { gone: string[]; liveChanged: boolean } {
    const { nodeName, leaseTtlMs, table, liveness } = this.o;
    const gone: string[] = [];
    let liveKey = "";
    for (const l of table.all()) {
      if (l.nodeName === nodeName) continue;
      const seen = liveness.lastSeenOf(l, members, now);
      if (seen + 2 * leaseTtlMs <= now) gone.push(l.nodeName);
      else if (!l.deleted && seen + leaseTtlMs > now) liveKey += `${l.nodeName}|`;
    }
    for (const n of gone) {
      table.remove(n);
      liveness.forget(n);
    }
    const liveChanged = liveKey !== this.lastLiveKey && this.lastLiveKey !== "";
    if (liveKey !== this.lastLiveKey) this.lastLiveKey = liveKey;
    return { gone, liveChanged };
  }
}
