/**
 * Renumbering: a committed node that learns of a better claim on its subnet (a healed
 * partition) claims again through the same procedure and reports the move. A failed
 * attempt (a full range, clocks that disagree) waits for a timer, growing from 1 s up to
 * exhaustedRetryMs with jitter: retrying at once (a full range fails without any wait)
 * would spin the event loop, and a retry on every table change would be a loop paced by
 * the peers, not by us. While renumbering or backing off, `why` says so (readiness).
 */
import type { Clock, TimerHandle } from "../clock.ts";
import type { Member } from "../gossip/types.ts";
import type { Logger } from "../log.ts";
import { type Claimer, keptSubnets } from "./claim.ts";
import { describeSubnets, subnetsOf } from "./families.ts";
import type { OwnLease } from "./own-lease.ts";
import { Aborted, type Scheduler } from "./scheduler.ts";
import type { LeaseTable } from "./table.ts";
import type { Lease, LeaseCounters } from "./types.ts";
import type { Winners } from "./winners.ts";

/** First wait before a failed renumber is tried again, ms; doubled per failure up to exhaustedRetryMs. */
const RENUMBER_FIRST_RETRY_MS = 1000;

export interface RenumbererDeps {
  own: OwnLease;
  claimer: Claimer;
  winners: Winners;
  table: LeaseTable;
  members: () => Map<string, Member>;
  clock: Clock;
  scheduler: Scheduler;
  random: () => number;
  /** Cap of the back-off between failed attempts, ms. */
  exhaustedRetryMs: number;
  /** Aborted when the lease layer stops. */
  signal: AbortSignal;
  /** A renumber succeeded: tell the listeners (before the change event). */
  renumbered: (old: Lease, now: Lease) => void;
  /** leases() or renumbering() may differ. */
  emitChange: () => void;
  /** Re-checks our record against the table (a renumber may end on a new conflict). */
  checkOwn: () => void;
  counters: LeaseCounters;
  log: Logger;
}

export class Renumberer {
  /**
   * Why the committed lease is being renumbered, or why the last attempt failed and when
   * the next one runs; undefined while the lease stands unchallenged.
   */
  why: string | undefined;
  /** The back-off timer while a failed renumber waits for its next attempt. */
  retry: TimerHandle | undefined;
  private delayMs = 0;

  constructor(private readonly o: RenumbererDeps) {}

  private setWhy(why: string | undefined): void {
    if (why === this.why) return;
    this.why = why;
    this.o.emitChange();
  }

  /**
   * Called when the table changed around our committed lease: renumber if a live claim
   * beats it. While a failed renumber waits for its retry, only the retry timer tries
   * again.
   */
  check(): void {
    const { own } = this.o;
    if (own.committed && !own.claiming && !this.retry && subnetsOf(own.own!).some((s) => this.o.table.claimants(s).length > 1)) {
      const better = this.o.winners.betterClaim(own.own!, this.o.members(), this.o.clock.now());
      if (better) void this.renumber(better);
    }
  }

  async renumber(winner: Lease): Promise<void> {
    const { own, scheduler, log, counters } = this.o;
    if (own.claiming || scheduler.stopped) return;
    own.claiming = true;
    const old = own.committed!;
    own.attempt++;
    // The families that did not lose keep their subnets if they can (a new claim all the same).
    const lost = this.o.winners.lostSubnets(old, this.o.members(), this.o.clock.now());
    const lostText = [...lost.keys()].join(" + ") || describeSubnets(old);
    log.warn("RENUMBERING: a better claim on our committed subnet appeared (partition healed?)", {
      subnet: lostText,
      winner: winner.nodeName,
      winnerClaimedAt: winner.claimedAt,
      ourClaimedAt: old.claimedAt,
    });
    this.setWhy(`renumbering: ${winner.nodeName} holds an earlier claim on ${lostText}`);
    try {
      const now = await this.o.claimer.claimLoop(this.o.signal, undefined, keptSubnets(old, lost));
      own.commit(now);
      counters.conflictsResolved++;
      counters.renumbers++;
      this.delayMs = 0;
      this.why = undefined;
      log.warn("Renumbered own lease", { old: describeSubnets(old), now: describeSubnets(now) });
      this.o.renumbered(old, now);
      this.o.emitChange();
    } catch (e) {
      if (e instanceof Aborted || scheduler.stopped) return;
      const cap = this.o.exhaustedRetryMs;
      this.delayMs = this.delayMs === 0 ? Math.min(RENUMBER_FIRST_RETRY_MS, cap) : Math.min(2 * this.delayMs, cap);
      const delay = Math.round(this.delayMs * (0.75 + this.o.random() / 4));
      log.error("Cannot renumber own lease; trying again later", { subnet: lostText, error: e as Error, retryInMs: delay });
      this.retry = scheduler.later(delay, () => {
        this.retry = undefined;
        this.retryNow();
      });
      this.setWhy(`cannot renumber ${lostText} (${winner.nodeName} holds an earlier claim): ${(e as Error).message}; next attempt in ${Math.ceil(delay / 1000)} s`);
      return;
    } finally {
      own.claiming = false;
    }
    if (!scheduler.stopped && own.committed) this.o.checkOwn();
  }

  /** The back-off timer fired: renumber again if our committed subnet is still lost. */
  private retryNow(): void {
    const { own, scheduler, log } = this.o;
    if (scheduler.stopped || own.claiming || !own.committed) return;
    if (own.displaced) return this.setWhy(undefined);
    const better = this.o.winners.betterClaim(own.committed, this.o.members(), this.o.clock.now());
    if (better) return void this.renumber(better);
    log.info("The better claim on our subnet is gone; keeping it", { subnet: describeSubnets(own.committed) });
    // A failed attempt may have left one of its claims as our record.
    if (own.own !== own.committed) own.republishCommitted();
    this.delayMs = 0;
    this.setWhy(undefined);
  }
}
