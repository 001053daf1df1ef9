/**
 * Time as a dependency: gossip, leases and the reconciler take a Clock so tests can
 * drive time by hand (sim/fake-clock.ts) instead of sleeping.
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch (fake clocks may start anywhere). */
  now(): number;
  /** Runs `fn` once after `ms` milliseconds. */
  after(ms: number, fn: () => void): TimerHandle;
}

export const realClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

/** Resolves after `ms` on the given clock. */
/**
 * The largest disagreement between two nodes' clocks the cluster tolerates, ms (30 s).
 * Both layers derive their time bounds from this one value:
 * - gossip accepts a sealed message only if its sent-at time (the sender's clock when it
 *   sealed it) is within ± this of the receiver's clock: GossipConfig.maxClockSkewMs.
 * - the lease layer dates its own claims at most this far ahead of its clock (after the
 *   newest claim it knows), and refuses records dated more than twice this ahead: a claim
 *   dated up to one skew ahead, made by a node whose clock runs up to one skew ahead of
 *   the receiver's, must still be accepted (ClusterCoreOptions.maxClockSkewMs).
 * createCluster (src/lease/cluster.ts) sets both from its `clockSkewMs` option.
 */
export const CLOCK_SKEW_MS = 30_000;

export const sleep = (clock: Clock, ms: number): Promise<void> => new Promise((r) => clock.after(ms, r));
