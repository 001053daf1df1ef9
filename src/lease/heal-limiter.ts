/**
 * Partition heal: a member that comes back alive from suspect, dead or left (a healed
 * partition) gets a full-state push-pull, so claims made on either side meet at once.
 * A token bucket bounds them — at most 3 at once, one more every 5 s — so a heal between
 * two halves of a large cluster does not start N²/4 exchanges.
 */
import type { Member } from "../gossip/types.ts";

const BUCKET = 3;
const REFILL_MS = 5000;

export class HealLimiter {
  /**
   * The last state each member was seen in, kept only while it is not alive (absent =
   * alive): most members are alive, and a process running many nodes keeps one such map
   * per node.
   */
  private readonly downStates = new Map<string, Member["state"]>();
  private tokens = BUCKET;
  private refillAt = 0;

  /** Records `mb`'s new state; returns the one it had before ("alive" if unknown). */
  transition(mb: Member): Member["state"] {
    const prev = this.downStates.get(mb.name) ?? "alive";
    if (mb.state === "alive") this.downStates.delete(mb.name);
    else this.downStates.set(mb.name, mb.state);
    return prev;
  }

  /** True when a member that was `prev` and is now `mb` came back from a partition (not a fresh leave). */
  static cameBack(kind: "join" | "update" | "leave", prev: Member["state"], mb: Member): boolean {
    return kind !== "leave" && mb.state === "alive" && (prev === "suspect" || prev === "dead" || prev === "left");
  }

  /** Takes a token for a recovery push-pull at `now` (refilling first); false when none is left or `ready` is false. */
  take(now: number, ready: boolean): boolean {
    if (now >= this.refillAt) {
      this.tokens = Math.min(BUCKET, this.tokens + Math.max(1, Math.floor((now - this.refillAt) / REFILL_MS)));
      this.refillAt = now + REFILL_MS;
    }
    if (this.tokens <= 0 || !ready) return false;
    this.tokens--;
    return true;
  }
}
