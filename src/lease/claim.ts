/**
 * The claim procedure: announce a claim (our record, broadcast under our name), wait the
 * settle window, exchange full state (push-pull) with a few live members, and keep the
 * claim only if no better claim for any of its subnets turned up; otherwise pick again.
 * Claims on one subnet are ordered by (claimedAt, nodeName) — earliest wins — so every
 * node that holds the same records picks the same winner.
 *
 * One claim covers every family the node runs: its record names a subnet from each
 * family's range (a RangePicker per range), all dated by one claimedAt. A claim that lost
 * one family's subnet is made again with a fresh date, keeping the subnets that did not
 * lose if they are still free: every claim is verified as a whole, so a family never
 * keeps the seniority of a claim it is no longer part of.
 */
import type { Clock } from "../clock.ts";
import type { Gossip, Member } from "../gossip/types.ts";
import type { Logger } from "../log.ts";
import { pickSubnet } from "./allocator.ts";
import type { ClockBounds } from "./clock-bounds.ts";
import type { Liveness } from "./expiry.ts";
import { describeSubnets, FAMILIES, type Family, familiesOf, type FamilySubnets, type LeaseRanges, publicIpFields, subnetFields, subnetOf } from "./families.ts";
import type { OwnLease } from "./own-lease.ts";
import { type SubnetRange, subnetProblem } from "./record-validate.ts";
import { Aborted } from "./scheduler.ts";
import type { SettleWindow } from "./settle.ts";
import type { LeaseTable } from "./table.ts";
import type { Lease, LeaseCounters } from "./types.ts";
import type { Winners } from "./winners.ts";

/** One family's part of a claim: which subnet of its range to ask for. */
export class RangePicker {
  constructor(
    readonly family: Family,
    readonly range: SubnetRange,
  ) {}

  /** True when `subnet` is a valid lease of this range. */
  fits(subnet: string | undefined): subnet is string {
    return subnet !== undefined && !subnetProblem(subnet, this.range);
  }

  /**
   * `prefer` if it fits and is free, else the first free subnet from the position a hash
   * of the node name (and the attempt) gives. Throws SubnetExhaustedError when full.
   */
  pick(nodeName: string, taken: (subnet: string) => boolean, attempt: number, prefer?: string): string {
    return this.fits(prefer) && !taken(prefer) ? prefer : pickSubnet(nodeName, this.range, taken, attempt);
  }
}

export interface ClaimerDeps {
  nodeName: string;
  /** This node's public addresses now (at least one; they follow the underlay). */
  publicIp: () => string | undefined;
  publicIpv6: () => string | undefined;
  /** The families the node runs, each with its range. */
  ranges: LeaseRanges;
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
  private readonly pickers: RangePicker[];

  constructor(private readonly o: ClaimerDeps) {
    this.pickers = familiesOf(o.ranges).map((f) => new RangePicker(f, o.ranges[f]!));
  }

  /** True when `l` has a valid subnet for every family this node runs (it could be reused as it is). */
  complete(l: Lease): boolean {
    return this.pickers.every((p) => p.fits(subnetOf(l, p.family)));
  }

  /** Of `l`'s subnets, those valid for a family this node runs: what a new claim prefers to keep. */
  reusable(l: Lease): FamilySubnets {
    const out: FamilySubnets = {};
    for (const p of this.pickers) {
      const s = subnetOf(l, p.family);
      if (p.fits(s)) out[p.family] = s;
    }
    return out;
  }

  /**
   * The next claim. `previousName` is a still-live record under our name (re-learned from
   * peers: it keeps its claimedAt, i.e. its seniority, if it holds a subnet of every
   * family we run). `prefer` are subnets to keep if they are still free (one we held
   * before whose lease expired, the families that did not lose a conflict): taken again,
   * but as a new claim.
   */
  newClaim(previousName?: Lease, prefer: FamilySubnets = {}): Lease {
    const { own, bounds, table, nodeName, winners, liveness } = this.o;
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
      ...publicIpFields(this.o.publicIp(), this.o.publicIpv6()),
      backend: own.backendFor(identity.nodeId),
      renewedAt: now,
    };
    // Re-learn: peers still hold our name's record (lost state dir, reinstall).
    if (previousName && !previousName.deleted && liveness.isLive(previousName, members, now)) {
      if (this.complete(previousName)) {
        const mine: Lease = { ...base, ...subnetFields(this.reusable(previousName)), claimedAt: previousName.claimedAt };
        if (!winners.betterClaim(mine, members, now)) {
          this.o.log.info("Re-learned own lease from peers", { subnets: describeSubnets(mine), previousNodeId: previousName.nodeId });
          return mine;
        }
      }
      // It lacks a family we run now (IPv6 just enabled), or lost: keep what still fits.
      prefer = { ...this.reusable(previousName), ...prefer };
    }
    const taken = (s: string) => winners.subnetTakenByOther(s, members, now);
    const chosen: FamilySubnets = {};
    for (const p of this.pickers) chosen[p.family] = p.pick(nodeName, taken, own.attempt, prefer[p.family]);
    return { ...base, ...subnetFields(chosen), claimedAt: bounds.claimedAt(now) };
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
  async claimLoop(signal: AbortSignal, first: Lease | undefined, prefer: FamilySubnets = {}): Promise<Lease> {
    const { own, log } = this.o;
    let learned = first;
    for (;;) {
      const mine = this.newClaim(learned, prefer);
      learned = undefined;
      own.publish(mine);
      log.info("Claiming subnet", { subnet: describeSubnets(mine), claimedAt: mine.claimedAt, attempt: own.attempt });
      await this.o.settle.wait(signal);
      const targets = this.settleTargets();
      await Promise.allSettled(targets.map((t) => this.o.gossip()!.pushPull(t)));
      if (signal.aborted) throw new Aborted("start aborted");
      if (own.displaced) throw new Error(`Cannot claim a subnet: node name ${this.o.nodeName} was taken over by another node`);
      const now = this.o.clock.now();
      const lost = this.o.winners.lostSubnets(own.own!, this.o.members(), now);
      if (lost.size === 0) return own.own!;
      this.o.counters.conflictsResolved++;
      own.attempt++;
      const [subnet, better] = lost.entries().next().value!;
      log.info("Lost subnet claim, re-picking", { subnet, winner: better.nodeName, winnerClaimedAt: better.claimedAt });
      prefer = keptSubnets(own.own!, lost);
    }
  }
}

/** `l`'s subnets that did not lose (those not in `lost`): what its next claim keeps. */
export function keptSubnets(l: Lease, lost: Map<string, Lease>): FamilySubnets {
  const out: FamilySubnets = {};
  for (const f of FAMILIES) {
    const s = subnetOf(l, f);
    if (s !== undefined && !lost.has(s)) out[f] = s;
  }
  return out;
}
