/**
 * Driving a FakeClock: advance simulated time in steps and let promise continuations
 * (push-pull, join, claim) run between timer batches. Nothing sleeps in real time.
 */
import type { FakeClock } from "./fake-clock.ts";

/** Lets pending promise continuations (several hops deep) run. */
export const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Advances `clock` by `ms` in steps, letting promise continuations run between timer batches. */
export async function runClock(clock: FakeClock, ms: number, step = 20): Promise<void> {
  const end = clock.now() + ms;
  while (clock.now() < end) {
    clock.advance(Math.min(step, end - clock.now()));
    await flush();
  }
}

/** Like {@link runClock} until `cond()` holds; false if `maxMs` passed first. */
export async function runClockUntil(clock: FakeClock, cond: () => boolean, maxMs: number, step = 20): Promise<boolean> {
  const end = clock.now() + maxMs;
  while (!cond()) {
    if (clock.now() >= end) return false;
    clock.advance(step);
    await flush();
  }
  return true;
}
