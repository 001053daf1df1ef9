/**
 * Lease records against this node's clock (the bound and its derivation: CLOCK_SKEW_MS in
 * src/clock.ts). A record dated (claimedAt or renewedAt) more than maxClockSkewMs ahead
 * is refused: a far-future claimedAt would push every later claim past what peers accept,
 * a far-future renewedAt would never expire. New claims are dated after every claim this
 * node knows, but never more than half the bound ahead of its clock. Peers whose records
 * were refused for their dates are remembered (bounded), so a node whose clock is the odd
 * one out stops claiming (ClockSkewError) instead of out-ranking leases it cannot see.
 */
import { ClockSkewError } from "./allocator.ts";
import type { LeaseTable } from "./table.ts";
import type { Lease } from "./types.ts";

/** Most peers remembered as sending records from the future. */
const FUTURE_NAMES_MAX = 1024;

export class ClockBounds {
  /**
   * Peers whose latest record was refused as dated too far ahead of our clock: when, and by
   * how much. Entries older than a refresh period are dropped by sweep() (an honest owner
   * re-sends at least that often).
   */
  private readonly futureNames = new Map<string, { at: number; aheadMs: number }>();
  /** The newest claimedAt among the records this node holds or made. */
  private maxClaimedAt = 0;

  constructor(readonly maxClockSkewMs: number) {}

  /** The latest date a record may carry when received at `now`. */
  latest(now: number): number {
    return now + this.maxClockSkewMs;
  }

  /**
   * How far `l` is dated beyond `latest` (= latest(now)), remembering its owner; or
   * undefined when it is within the bound (then its owner is forgotten as a future sender).
   */
  tooFarAhead(l: Lease, latest: number): number | undefined {
    const dated = Math.max(l.claimedAt, l.renewedAt ?? 0);
    if (dated > latest) {
      const aheadMs = dated - (latest - this.maxClockSkewMs);
      if (this.futureNames.size < FUTURE_NAMES_MAX || this.futureNames.has(l.nodeName)) this.futureNames.set(l.nodeName, { at: latest - this.maxClockSkewMs, aheadMs });
      return aheadMs;
    }
    if (this.futureNames.size > 0) this.futureNames.delete(l.nodeName);
    return undefined;
  }

  /** Notes a claim this node now holds or made (its claimedAt ranks later claims). */
  noteClaimedAt(claimedAt: number): void {
    if (claimedAt > this.maxClaimedAt) this.maxClaimedAt = claimedAt;
  }

  /**
   * claimedAt of a new claim made at `now`: after every claim we know of, but never more
   * than half the allowed skew ahead of our clock, so peers whose clocks agree with ours
   * within that half still accept it.
   */
  claimedAt(now: number): number {
    return Math.max(now, Math.min(this.maxClaimedAt + 1, now + Math.floor(this.maxClockSkewMs / 2)));
  }

  /** Why a persisted record cannot be reused because of its dates (the clock was set back), or undefined. */
  persistedProblem(p: Lease, now: number): string | undefined {
    // Peers whose clocks agree with ours would reject it; it is claimed anew (the same subnet if free).
    if (Math.max(p.claimedAt, p.renewedAt ?? 0) > now + this.maxClockSkewMs) return `it is dated more than ${this.maxClockSkewMs / 1000} s ahead of this node's clock (was the clock set back?)`;
    return undefined;
  }

  /**
   * A ClockSkewError when at least as many peers sent only records dated too far ahead as
   * sent records we accepted: then our clock is the odd one out, most likely behind, and a
   * claim would neither see their leases nor rank after them.
   */
  skewBlock(table: LeaseTable, nodeName: string): ClockSkewError | undefined {
    const futureNames = this.futureNames;
    if (futureNames.size === 0) return undefined;
    let accepted = table.size - (table.get(nodeName) ? 1 : 0);
    for (const name of futureNames.keys()) if (table.get(name)) accepted--;
    if (futureNames.size < accepted) return undefined;
    let worst = 0;
    for (const f of futureNames.values()) worst = Math.max(worst, f.aheadMs);
    return new ClockSkewError(
      `Cannot claim a subnet: lease records of ${futureNames.size} of ${futureNames.size + accepted} peers are dated up to ${Math.round(worst / 1000)} s ahead of this node's clock (allowed: ${this.maxClockSkewMs / 1000} s); fix time synchronisation`,
    );
  }

  /** The operator-facing problem while peers' records are refused for their dates, or undefined. */
  problem(): string | undefined {
    if (this.futureNames.size === 0) return undefined;
    let worst = { name: "", aheadMs: 0 };
    for (const [name, f] of this.futureNames) if (f.aheadMs > worst.aheadMs) worst = { name, aheadMs: f.aheadMs };
    return `lease records of ${this.futureNames.size} peer(s) rejected as dated more than ${this.maxClockSkewMs / 1000} s ahead of this node's clock (${worst.name}: ${Math.round(worst.aheadMs / 1000)} s ahead): this clock is behind, theirs ahead, or the records are forged`;
  }

  /** Forgets refusals older than `keepMs`. */
  sweep(now: number, keepMs: number): void {
    for (const [n, f] of this.futureNames) if (f.at + keepMs <= now) this.futureNames.delete(n);
  }
}
