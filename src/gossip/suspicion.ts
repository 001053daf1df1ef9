/**
 * A suspicion timer (memberlist suspicion.go, after Lifeguard): starts at `max` and
 * shrinks towards `min` as independent peers confirm the suspicion, since each
 * confirmation makes a false positive less likely:
 *
 *   timeout(c) = max − (max − min) · log(c + 1) / log(k + 1)
 *
 * with c confirmations so far and k expected. Fires `onTimeout` once.
 */
import type { Clock, TimerHandle } from "../clock.ts";

export class Suspicion {
  private confirmations = new Set<string>();
  private readonly start: number;
  private timer: TimerHandle;
  private fired = false;

  constructor(
    private readonly clock: Clock,
    /** The member that raised the suspicion first: its confirmation does not count again. */
    from: string,
    private readonly k: number,
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly onTimeout: () => void,
  ) {
    this.start = clock.now();
    this.confirmations.add(from);
    // With no confirmations expected, waiting for them is pointless: use the minimum.
    const initial = k < 1 ? minMs : maxMs;
    this.timer = clock.after(initial, () => this.fire());
  }

  /** Records an independent confirmation; true if it was new and shortened the timer. */
  confirm(from: string): boolean {
    if (this.fired || this.confirmations.size > this.k || this.confirmations.has(from)) return false;
    this.confirmations.add(from);
    const c = this.confirmations.size - 1;
    const timeout = remainingTimeout(c, this.k, this.minMs, this.maxMs);
    this.timer.cancel();
    const remaining = this.start + timeout - this.clock.now();
    this.timer = this.clock.after(Math.max(0, remaining), () => this.fire());
    return true;
  }

  cancel(): void {
    this.fired = true;
    this.timer.cancel();
  }

  private fire(): void {
    if (this.fired) return;
    this.fired = true;
    this.onTimeout();
  }
}

/** Total suspicion timeout after `c` of `k` expected confirmations, ms (≥ min). */
export function remainingTimeout(c: number, k: number, minMs: number, maxMs: number): number {
  if (k < 1) return minMs;
  const frac = Math.log(c + 1) / Math.log(k + 1);
  return Math.max(minMs, Math.floor(maxMs - frac * (maxMs - minMs)));
}
