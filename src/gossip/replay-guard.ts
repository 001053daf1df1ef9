/**
 * Freshness of sealed messages (after WireGuard's timestamps and replay window): a message
 * is accepted once, and only while its sent-at time lies within ±maxSkewMs of our clock.
 *
 * - Outside the window: refused, whatever its id (a capture older than the window is
 *   worthless; a sender whose clock is off by more than the window is refused too).
 * - Inside it: refused if its id was accepted before. Ids are remembered until their
 *   sent-at time has left the window, which is when the window test takes over.
 * - Bounded memory: at most `maxEntries` ids. When full, the oldest is forgotten and the
 *   *floor* rises to its sent-at time; nothing sent at or before the floor is accepted
 *   again. So every id ever accepted is either remembered or at/below the floor: no
 *   replay is accepted, even if our own clock steps back. The cost of a full cache is
 *   that honest messages older than the floor are refused until the flood passes.
 *
 * Memory: 32 bytes per remembered id (an open-addressed table at most half full, plus
 * the ids and times in arrival order), grown by doubling from a small start, so a quiet
 * node (and each node of a simulation in sim/) pays for what it receives.
 */
import { NumberSet } from "./number-set.ts";

export const FRESH = 0;
/** Sent-at time outside ±maxSkewMs of our clock. */
export const SKEWED = 1;
/** Id seen before, or sent at or before the floor. */
export const REPLAYED = 2;
export type Verdict = typeof FRESH | typeof SKEWED | typeof REPLAYED;

const INITIAL = 256;

export class ReplayGuard {
  private cap: number;
  private seen: NumberSet;
  /** Ids and sent-at times in arrival order: a ring starting at `head`. */
  private ids: Float64Array;
  private times: Float64Array;
  private head = 0;
  private count = 0;
  private floor_ = -Infinity;

  /** Ids are integers in 0 .. 2⁵³−1 (Sealer takes 53 bits of the random nonce). */
  constructor(
    private readonly maxSkewMs: number,
    private readonly maxEntries: number,
  ) {
    if (!(maxSkewMs > 0)) throw new RangeError(`ReplayGuard maxSkewMs: expected > 0, got ${maxSkewMs}`);
    if (!(Number.isInteger(maxEntries) && maxEntries >= 1)) throw new RangeError(`ReplayGuard maxEntries: expected a positive integer, got ${maxEntries}`);
    this.cap = Math.min(INITIAL, maxEntries);
    this.ids = new Float64Array(this.cap);
    this.times = new Float64Array(this.cap);
    this.seen = new NumberSet(this.cap);
  }

  /** Accepts (and remembers) the message sent at `sentAt` with `id`, or says why not. */
  admit(sentAt: number, id: number, now: number): Verdict {
    // Written so that NaN fails too.
    if (!(sentAt >= now - this.maxSkewMs && sentAt <= now + this.maxSkewMs)) return SKEWED;
    if (sentAt <= this.floor_ || this.seen.has(id)) return REPLAYED;
    const oldest = now - this.maxSkewMs;
    while (this.count > 0 && this.times[this.head]! < oldest) this.dropOldest();
    if (this.count === this.cap) {
      if (this.cap < this.maxEntries) this.grow();
      else this.dropOldest();
    }
    const at = (this.head + this.count) % this.cap;
    this.ids[at] = id;
    this.times[at] = sentAt;
    this.count++;
    this.seen.add(id);
    return FRESH;
  }

  /** Nothing sent at or before this time is accepted (−Infinity until the first id is forgotten). */
  get floor(): number {
    return this.floor_;
  }

  /** Ids remembered now. */
  get size(): number {
    return this.count;
  }

  /** Ids that fit before the cache grows again. */
  get capacity(): number {
    return this.cap;
  }

  /** Forgets the oldest id; the floor rises to its time, so it can never be accepted again. */
  private dropOldest(): void {
    const t = this.times[this.head]!;
    if (t > this.floor_) this.floor_ = t;
    this.seen.delete(this.ids[this.head]!);
    this.head = (this.head + 1) % this.cap;
    this.count--;
  }

  private grow(): void {
    const cap = Math.min(this.cap * 2, this.maxEntries);
    const ids = new Float64Array(cap);
    const times = new Float64Array(cap);
    const seen = new NumberSet(cap);
    for (let k = 0; k < this.count; k++) {
      const j = (this.head + k) % this.cap;
      ids[k] = this.ids[j]!;
      times[k] = this.times[j]!;
      seen.add(ids[k]!);
    }
    this.cap = cap;
    this.ids = ids;
    this.times = times;
    this.seen = seen;
    this.head = 0;
  }
}
