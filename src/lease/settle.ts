/**
 * The settle window of a claim: settleMs after announcing it, then on while a storm of
 * records is still arriving (at most settleMaxMs in all). A join storm still delivers
 * claims that may beat ours; committing in the middle of it means renumbering later.
 * Quiet means: at most settleQuietRecords peer records changed the table in the last
 * settleQuietMs, and none of them was late (made more than settleQuietMs before it
 * arrived). Old claims still arriving mean dissemination lags (a storm's tail), while a
 * trickle of joins brings only fresh ones.
 */
import type { Clock } from "../clock.ts";
import type { Scheduler } from "./scheduler.ts";
import type { Lease } from "./types.ts";

export interface SettleTimings {
  settleMs: number;
  settleQuietMs: number;
  settleQuietRecords: number;
  settleMaxMs: number;
}

export class SettleWindow {
  /** When peers' records last changed our table: the newest settleQuietRecords + 1 times. */
  private readonly recentChanges: number[] = [];
  /** The last time a record arrived late (made more than settleQuietMs before it arrived). */
  private lastLateChangeAt = -Infinity;

  constructor(private readonly o: SettleTimings & { clock: Clock; scheduler: Scheduler }) {}

  /** A peer's record `l` changed the table at `at`. */
  noteChange(l: Lease, at: number): void {
    const { settleQuietRecords, settleQuietMs } = this.o;
    this.recentChanges.push(at);
    if (this.recentChanges.length > settleQuietRecords + 1) this.recentChanges.shift();
    if ((l.renewedAt ?? l.claimedAt) < at - settleQuietMs) this.lastLateChangeAt = at;
  }

  /** settleMs, then on until the table is quiet, at most settleMaxMs in all. */
  async wait(signal: AbortSignal): Promise<void> {
    const { settleMs, settleQuietMs, settleQuietRecords, settleMaxMs, clock, scheduler } = this.o;
    const t0 = clock.now();
    await scheduler.sleep(settleMs, signal);
    for (;;) {
      const now = clock.now();
      // Quiet once the (settleQuietRecords + 1)-th newest change has left the window, and
      // no late news came within it.
      const recent = this.recentChanges;
      const oldestThatCounts = recent.length > settleQuietRecords ? recent[recent.length - 1 - settleQuietRecords]! : -Infinity;
      const quietAt = Math.max(oldestThatCounts, this.lastLateChangeAt) + settleQuietMs;
      if (quietAt <= now || now - t0 >= settleMaxMs) return;
      await scheduler.sleep(Math.min(quietAt, t0 + settleMaxMs) - now, signal);
    }
  }
}
