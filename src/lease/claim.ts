/**
 * The claim procedure: announce a claim (our record, broadcast under our name), wait the
 * settle window, exchange full state (push-pull) with a few live members, and keep the
 * claim only if no better claim for the subnet turned up; otherwise pick again. Claims on
 * one subnet are ordered by (claimedAt, nodeName) — earliest wins — so every node that
 * holds the same records picks the same winner. A Claimer works on one SubnetRange: a
 * second address family gets a Claimer of its own over its own range.
 */
import type { Clock } from "../clock.ts";
import type { Gossip, Member } from "../gossip/types.ts";
import type { Logger } from "../log.ts";
import { pickSubnet } from "./allocator.ts";
import type { ClockBounds } from "./clock-bounds.ts";
import type { Liveness } from "./expiry.ts";
import type { OwnLease } from "./own-lease.ts";
import { type SubnetRange, subnetProblem } from "./record-validate.ts";
import { Aborted } from "./scheduler.ts";
import type { SettleWindow } from "./settle.ts";
import type { LeaseTable } from "./table.ts";
import type { Lease, LeaseCounters } from "./types.ts";
import type { Winners } from "./winners.ts";

export interface ClaimerDeps {
  nodeName: string;
  /** This node's public IP now (it follows the underlay address). */
  publicIp: () => string;
  range: SubnetRange;
  own: OwnLease;
  table: LeaseTable;
  liveness: Liveness;
  winners: Winners;
  bounds: ClockBounds;
  settle: SettleWindow;
  gossip: () => Gossip | undefined;
  /** The gossip layer's members by name, now. */
  members: () => Map<string, Member>;
  clock: Clock;
  stamp: () => number;
  random: () => number;
  /** Most members push-pulled after the settle window. */
  settlePeers: number;
  counters: LeaseCounters;
  log: Logger;
}

export class Claimer {
  constructor(private readonly o: ClaimerDeps) {}

  /**
   * The next claim. `previousName` is a still-live record under our name (re-learned from
   * peers: it keeps its claimedAt, i.e. its seniority). `prefer` is a subnet we held
   * before whose lease expired: taken again if free, but as a new claim.
   */
  newClaim(previousName?: Lease, prefer?: string): Lease {
    const { own, bounds, table, nodeName, range, winners, liveness } = this.o;
    const skewed = bounds.skewBlock(table, nodeName);
    if (skewed) throw skewed;
    const now = this.o.stamp();
    const members = this.o.members();
    const identity = own.identity!;
    const base = {
      nodeName,
      nodeId: identity.nodeId,
      generation: identity.generation,
      version: own.own && own.own.generation === identity.generation ? own.own.version + 1 : 0,
      publicIp: this.o.publicIp(),
      backend: own.backendFor(identity.nodeId),
      renewedAt: now,
    };
    // Re-learn: peers still hold our name's record (lost state dir, reinstall).
    if (previousName && !previousName.deleted && !subnetProblem(previousName.subnet, range) && liveness.isLive(previousName, members, now)) {
      const mine = { ...base, subnet: previousName.subnet, claimedAt: previousName.claimedAt };
      if (!winners.betterClaim(mine, members, now)) {
        this.o.log.info("Re-learned own lease from peers", { subnet: mine.subnet, previousNodeId: previousName.nodeId });
        return mine;
      }
    }
    const taken = (s: string) => winners.subnetTakenByOther(s, members, now);
    const subnet = prefer && !subnetProblem(prefer, range) && !taken(prefer) ? prefer : pickSubnet(nodeName, range, taken, own.attempt);
    return { ...base, subnet, claimedAt: bounds.claimedAt(now) };
  }

  /**
   * Up to settlePeers alive members, a uniform sample (partial Fisher-Yates, without
   * sorting the whole list): all of them in small clusters. Each push-pull moves the whole
   * table and member list both ways, so "every member" would cost O(N²) bytes per join
   * storm; the claim broadcast reaches the rest during the settle window, and a conflict
   * found after commit is renumbered.
   */
  settleTargets(): string[] {
    const names: string[] = [];
    const gossip = this.o.gossip();
    if (!gossip) return names;
    for (const mb of gossip.members()) if (mb.name !== this.o.nodeName && mb.state === "alive") names.push(mb.name);
    const k = Math.min(this.o.settlePeers, names.length);
    for (let i = 0; i < k; i++) {
      const j = i + Math.floor(this.o.random() * (names.length - i));
      [names[i], names[j]] = [names[j]!, names[i]!];
    }
    return names.slice(0, k);
  }

  /** Announce → settle → push-pull → verify, until a claim survives. Returns the claim. */
  async claimLoop(signal: AbortSignal, first: Lease | undefined, prefer?: string): Promise<Lease> {
    const { own, log } = this.o;
    let learned = first;
    for (;;) {
      const mine = this.newClaim(learned, prefer);
      learned = undefined;
      prefer = undefined;
      own.publish(mine);
      log.info("Claiming subnet", { subnet: mine.subnet, claimedAt: mine.claimedAt, attempt: own.attempt });
      await this.o.settle.wait(signal);
      const targets = this.settleTargets();
      await Promise.allSettled(targets.map((t) => this.o.gossip()!.pushPull(t)));
      if (signal.aborted) throw new Aborted("start aborted");
      if (own.displaced) throw new Error(`Cannot claim a subnet: node name ${this.o.nodeName} was taken over by another node`);
      const now = this.o.clock.now();
      const better = this.o.winners.betterClaim(own.own!, this.o.members(), now);
      if (!better) return own.own!;
      this.o.counters.conflictsResolved++;
      own.attempt++;
      log.info("Lost subnet claim, re-picking", { subnet: own.own!.subnet, winner: better.nodeName, winnerClaimedAt: better.claimedAt });
    }
  }
}
