/**
 * Waiting on real time in tests: poll a condition with a deadline instead of sleeping
 * a fixed amount (for simulated time use FakeClock and sim/run.ts).
 */

/** Resolves with `probe`'s first value that is not undefined/false; throws naming `what` after `timeoutMs`. */
export async function until<T>(what: string, timeoutMs: number, probe: () => T | undefined | false | Promise<T | undefined | false>, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(everyMs);
  }
}

/** True as soon as `cond()` holds, false if it still does not after `deadlineMs`. */
export async function poll(cond: () => boolean, deadlineMs: number, everyMs = 20): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    if (cond()) return true;
    await Bun.sleep(everyMs);
  }
  return cond();
}
