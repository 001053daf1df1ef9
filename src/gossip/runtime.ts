/**
 * The services every part of one gossip node shares: its timers on the injected
 * Clock (all cancelled at shutdown), things to end at shutdown (in-flight streams,
 * sleeps), metrics counters, and a logger that says each kind of complaint at most
 * once per 10 s so a hostile or broken peer cannot flood the log.
 */
import type { Clock, TimerHandle } from "../clock.ts";
import type { Logger } from "../log.ts";
import { type GossipMetrics, emptyGossipMetrics } from "./types.ts";

const LOG_EVERY_MS = 10_000;

export class Runtime {
  readonly metrics: GossipMetrics = emptyGossipMetrics();
  private readonly timers = new Set<TimerHandle>();
  private readonly onStop = new Set<() => void>();
  private readonly lastLog = new Map<string, number>();
  private stoppedFlag = false;

  constructor(
    readonly clock: Clock,
    readonly log: Logger,
  ) {}

  get stopped(): boolean {
    return this.stoppedFlag;
  }

  /** Cancels every timer and runs every registered stop hook; idempotent. */
  stop(): void {
    if (this.stoppedFlag) return;
    this.stoppedFlag = true;
    for (const t of this.timers) t.cancel();
    this.timers.clear();
    for (const f of [...this.onStop]) f();
    this.onStop.clear();
  }

  /** A clock timer that never fires after stop(). */
  after(ms: number, fn: () => void): TimerHandle {
    const h: TimerHandle = this.clock.after(ms, () => {
      this.timers.delete(h);
      if (!this.stoppedFlag) fn();
    });
    this.timers.add(h);
    return h;
  }

  cancel(h: TimerHandle): void {
    h.cancel();
    this.timers.delete(h);
  }

  /** Runs `fn` first after `firstMs`, then every `every()` ms until stop(). */
  loop(every: () => number, fn: () => void, firstMs: number): void {
    const tick = () => {
      try {
        fn();
      } catch (err) {
        this.log.error("gossip timer task failed", { err: errText(err) });
      }
      this.after(every(), tick);
    };
    this.after(firstMs, tick);
  }

  /** Registers `f` to run at stop(); returns its unregistration. */
  onStopped(f: () => void): () => void {
    this.onStop.add(f);
    return () => this.onStop.delete(f);
  }

  /** An AbortSignal that fires after `ms` on the clock or at stop(); `done()` releases it. */
  deadline(ms: number): { signal: AbortSignal; done(): void } {
    const ac = new AbortController();
    const t = this.after(ms, () => ac.abort());
    const off = this.onStopped(() => ac.abort());
    return {
      signal: ac.signal,
      done: () => {
        this.cancel(t);
        off();
      },
    };
  }

  /** Resolves true after `ms` on the clock, false early if `signal` aborts or we stop. */
  sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.stoppedFlag || signal?.aborted) return resolve(false);
      const end = (v: boolean) => {
        this.cancel(t);
        signal?.removeEventListener("abort", onAbort);
        off();
        resolve(v);
      };
      const onAbort = () => end(false);
      const t = this.after(ms, () => end(true));
      signal?.addEventListener("abort", onAbort, { once: true });
      const off = this.onStopped(onAbort);
    });
  }

  logLimited(kind: string, msg: string, fields: Record<string, unknown>, level: "debug" | "warn" = "debug"): void {
    const now = this.clock.now();
    const last = this.lastLog.get(kind);
    if (last !== undefined && now - last < LOG_EVERY_MS) return;
    this.lastLog.set(kind, now);
    this.log[level](msg, fields);
  }
}

export function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
