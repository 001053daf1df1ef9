/**
 * The lease layer's timers: every timer it starts is cancelled by stop(), and a periodic
 * task that throws is logged, not lost. `sleep` is the abortable wait of the claim
 * procedure (an aborted start rejects with an AbortError).
 */
import type { Clock, TimerHandle } from "../clock.ts";

export class Aborted extends Error {
  override name = "AbortError";
}

export class Scheduler {
  /** Set by the owner's stop(): periodic tasks end, pending ones see it. */
  stopped = false;
  private readonly timers = new Set<TimerHandle>();

  constructor(private readonly clock: Clock) {}

  /** A timer that cancelAll() cancels; forgotten once it fired. */
  later(ms: number, fn: () => void): TimerHandle {
    const h = this.clock.after(ms, () => {
      this.timers.delete(h);
      fn();
    });
    this.timers.add(h);
    return h;
  }

  /** Runs `fn` every `ms` until stopped; `onError` hears what a run threw. */
  every(ms: number, fn: () => void, onError: (e: Error) => void): void {
    const tick = () => {
      if (this.stopped) return;
      try {
        fn();
      } catch (e) {
        onError(e as Error);
      }
      this.later(ms, tick);
    };
    this.later(ms, tick);
  }

  /** Resolves after `ms`; rejects with {@link Aborted} when `signal` aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(new Aborted("start aborted"));
      const t = this.clock.after(ms, () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      });
      const onAbort = () => {
        t.cancel();
        reject(new Aborted("start aborted"));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  cancelAll(): void {
    for (const t of this.timers) t.cancel();
  }
}
