/**
 * Keeps the kernel matching the leases. A run = one Backend.apply over the current
 * peers; runs happen
 *  - at start (which also removes weft routes/ARP/FDB that no lease justifies any more,
 *    left over from before a restart),
 *  - shortly after a lease change (debounced, so a burst of gossip updates is one run),
 *  - shortly after a netlink event (an outsider deleted a route or the device),
 *  - every `periodMs` regardless, and after `retryMs` when a run had errors (doubling
 *    while errors persist, up to `periodMs`, so a lasting failure is not retried and
 *    logged every second).
 * Kernel events only say what kind of object changed, and pods' ARP entries on cni0
 * change state all the time: by default new/changed neighbours are left to the periodic
 * pass (outsiders deleting things is what needs the fast path), and event-driven runs are
 * at least `eventMinIntervalMs` apart.
 * Leases, not liveness, decide routes: the caller hands in every valid lease.
 */
import type { Clock, TimerHandle } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { ApplyResult, Backend, PeerLease } from "./backend.ts";

export interface ReconcilerOptions {
  backend: Pick<Backend, "apply">;
  /** The peers that justify routes right now (own lease may be included; it is skipped). */
  peers: () => PeerLease[];
  clock: Clock;
  logger: Logger;
  /** Subscribes to lease changes (Cluster.onChange); returns an unsubscribe function. */
  onLeasesChange?: (fn: () => void) => () => void;
  /** Subscribes to kernel change events (watchNetlinkEvents); returns a stop function or a handle with close()/stop(). */
  watchEvents?: (onEvent: (e?: unknown) => void) => (() => void) | { close(): void } | { stop(): void } | void;
  /** Full reconcile period, ms. flannel has none; 10 s repairs outsider damage quickly at ~1 ms a run. */
  periodMs?: number;
  /** Delay from a change notification to the run, ms; coalesces bursts. */
  debounceMs?: number;
  /** Delay before retrying a run that had errors, ms; doubles per failed run up to periodMs. */
  retryMs?: number;
  /** Minimum spacing of runs caused by kernel events, ms. */
  eventMinIntervalMs?: number;
  /** Which kernel events deserve a run; default: all but {kind:"neigh",action:"new"}. */
  eventFilter?: (e: unknown) => boolean;
  /** Monotonic ms for measuring run duration (performance.now by default). */
  monotonicMs?: () => number;
}

export interface ReconcilerMetrics {
  runs: number;
  /** Runs that threw or had at least one failed operation. */
  errors: number;
  /** Kernel mutations made over all runs. */
  changes: number;
  lastDurationSeconds: number;
  durationSecondsSum: number;
  /** Problems of the last run (for status), errors of the last run. */
  lastProblems: string[];
  lastErrors: string[];
}

export interface Reconciler {
  /** Runs the first reconcile now (synchronously) and starts watching; returns its result. */
  start(): ApplyResult;
  /** Asks for a run soon (debounced). */
  trigger(reason: string): void;
  /** Runs immediately, outside the schedule; returns the result. */
  runNow(reason?: string): ApplyResult;
  /** Stops timers and subscriptions; leaves the kernel as it is. */
  stop(): void;
  metrics(): ReconcilerMetrics;
}

/** Drops neighbour creations/updates (pods' ARP churn on cni0); everything else counts. */
export function defaultEventFilter(e: unknown): boolean {
  if (e && typeof e === "object" && "kind" in e && "action" in e) return !((e as { kind: unknown }).kind === "neigh" && (e as { action: unknown }).action === "new");
  return true;
}

export function createReconciler({
  backend,
  peers,
  clock,
  logger,
  onLeasesChange,
  watchEvents,
  periodMs = 10_000,
  debounceMs = 100,
  retryMs = 1_000,
  eventMinIntervalMs = 500,
  eventFilter = defaultEventFilter,
  monotonicMs = () => performance.now(),
}: ReconcilerOptions): Reconciler {
  for (const [k, v] of Object.entries({ periodMs, debounceMs, retryMs, eventMinIntervalMs })) {
    if (!Number.isFinite(v) || v < 0) throw new Error(`create reconciler: ${k} must be a non-negative number, got ${v}`);
  }
  const log = logger.child("reconcile");
  const m: ReconcilerMetrics = { runs: 0, errors: 0, changes: 0, lastDurationSeconds: 0, durationSecondsSum: 0, lastProblems: [], lastErrors: [] };
  let timer: TimerHandle | undefined;
  let timerAt = Infinity;
  let stopped = true;
  let pendingReason: string | undefined;
  let failedRuns = 0; // consecutive
  let lastRunAt = -Infinity;
  const unsubs: (() => void)[] = [];

  function schedule(delay: number, reason: string): void {
    if (stopped) return;
    const at = clock.now() + delay;
    if (timer && timerAt <= at) return; // an earlier run is already due
    timer?.cancel();
    timerAt = at;
    pendingReason = reason;
    timer = clock.after(delay, () => {
      timer = undefined;
      timerAt = Infinity;
      run(pendingReason ?? "timer");
    });
  }

  function run(reason: string): ApplyResult {
    const t0 = monotonicMs();
    let result: ApplyResult;
    try {
      result = backend.apply(peers());
    } catch (e) {
      result = { changes: 0, errors: [(e as Error).message], problems: [] };
    }
    const dt = Math.max(0, monotonicMs() - t0) / 1000;
    m.runs++;
    m.changes += result.changes;
    m.lastDurationSeconds = dt;
    m.durationSecondsSum += dt;
    m.lastProblems = result.problems;
    m.lastErrors = result.errors;
    lastRunAt = clock.now();
    if (result.errors.length) {
      m.errors++;
      const delay = Math.min(retryMs * 2 ** failedRuns, Math.max(retryMs, periodMs));
      failedRuns++;
      log.warn(`reconcile (${reason}) had ${result.errors.length} error(s); retrying in ${delay} ms`, { errors: result.errors.join("; ") });
      schedule(delay, "retry");
    } else if (result.changes) {
      failedRuns = 0;
      log.info(`reconcile (${reason}) made ${result.changes} change(s)`, { ms: +(dt * 1000).toFixed(2) });
    } else {
      failedRuns = 0;
      log.debug(`reconcile (${reason}): no changes`);
    }
    // The periodic pass is measured from the last run of any kind.
    if (!result.errors.length && !stopped) {
      timer?.cancel();
      timer = undefined;
      timerAt = Infinity;
      schedule(periodMs, "periodic");
    }
    return result;
  }

  return {
    start() {
      if (!stopped) throw new Error("start reconciler: already started");
      stopped = false;
      if (onLeasesChange) unsubs.push(onLeasesChange(() => schedule(debounceMs, "lease change")));
      if (watchEvents) {
        const h = watchEvents((e) => {
          if (!eventFilter(e)) return;
          schedule(Math.max(debounceMs, lastRunAt + eventMinIntervalMs - clock.now()), "netlink event");
        });
        if (typeof h === "function") unsubs.push(h);
        else if (h && "close" in h) unsubs.push(() => h.close());
        else if (h && "stop" in h) unsubs.push(() => h.stop());
      }
      return run("start");
    },
    trigger(reason) {
      schedule(debounceMs, reason);
    },
    runNow(reason = "manual") {
      return run(reason);
    },
    stop() {
      stopped = true;
      timer?.cancel();
      timer = undefined;
      timerAt = Infinity;
      for (const u of unsubs.splice(0)) {
        try {
          u();
        } catch (e) {
          log.warn(`stop reconciler: unsubscribe failed: ${(e as Error).message}`);
        }
      }
    },
    metrics: () => ({ ...m, lastProblems: [...m.lastProblems], lastErrors: [...m.lastErrors] }),
  };
}
