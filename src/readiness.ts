import type { Readiness } from "./api/index.ts";
import { describeSubnets } from "./lease/families.ts";
import type { Cluster, Lease } from "./lease/types.ts";
import type { Notifier } from "./sys/sdnotify.ts";

/**
 * What /readyz and systemd STATUS= say about the node, kept in one place so the two never
 * disagree: every change is also sent as STATUS= ("ready: <subnet> via <backend>" or
 * "not ready: <reason>"). Ready means the dataplane serves the committed own lease and
 * the lease layer is not renumbering it; a renumber (or its back-off after a failure)
 * makes the node not ready with the lease layer's reason until the new subnet is
 * programmed, or the old one turns out to stand.
 */
export class LeaseReadiness {
  private current: Readiness = { ready: false, reason: "waiting for a subnet lease to be committed" };
  /** The own subnets the bridge, backend and subnet.env are programmed for (describeSubnets: "10.244.3.0/24 + fd00:…/64"). */
  private served: string | undefined;
  /** A condition only a restart clears (name taken over, failed reprogram). */
  private stuck = false;
  /** A condition of the node itself (its underlay) that holds it not ready until it clears. */
  private held: string | undefined;
  /** Why not ready when nothing else says: the last start-up step or blocked claim. */
  private waiting = this.current.reason!;
  private cluster: Pick<Cluster, "renumbering" | "ownLease"> | undefined;

  constructor(private readonly o: { notifier?: Notifier | null; backend: string }) {}

  readiness(): Readiness {
    return this.current;
  }

  /** Not ready while a start-up step or a blocked claim holds the node. */
  notReady(reason: string): void {
    this.waiting = reason;
    this.refresh();
  }

  /**
   * Not ready for `reason` until called with undefined (the underlay is down, its address
   * is gone): it outranks the lease layer's state, which takes over again once it clears.
   */
  hold(reason: string | undefined): void {
    this.held = reason;
    this.refresh();
  }

  /** The dataplane now serves `lease`'s subnets (undefined: it is being reprogrammed, for `reason`). */
  serving(lease: Pick<Lease, "subnet" | "ipv6Subnet"> | undefined, reason = "programming the dataplane"): void {
    this.served = lease && describeSubnets(lease);
    if (lease === undefined) this.notReady(reason);
  }

  /** Not ready until a restart. */
  fail(reason: string): void {
    this.set({ ready: false, reason });
    this.stuck = true;
  }

  /**
   * Follows `cluster`: readiness on every lease change, and after a renumber not ready
   * until `reprogram(old, now)` has moved the dataplane to the new subnet. A failed
   * reprogram is final (`onFail` hears it).
   */
  follow(cluster: Pick<Cluster, "renumbering" | "ownLease" | "onChange" | "onRenumber">, reprogram: (old: Lease, now: Lease) => Promise<void>, onFail: (e: Error) => void): void {
    this.cluster = cluster;
    cluster.onChange(() => this.update(cluster));
    cluster.onRenumber((old, now) => {
      this.serving(undefined, `renumbering from ${describeSubnets(old)} to ${describeSubnets(now)}`);
      reprogram(old, now).then(
        () => {
          this.serving(now);
          this.update(cluster);
        },
        (e: Error) => {
          this.fail(`renumber failed: ${e.message}`);
          onFail(e);
        },
      );
    });
  }

  /** Re-derives readiness from the lease layer (follow() calls it on every lease change). */
  update(cluster: Pick<Cluster, "renumbering" | "ownLease">): void {
    this.cluster = cluster;
    this.refresh();
  }

  private refresh(): void {
    if (this.stuck) return;
    if (this.held) return this.set({ ready: false, reason: this.held });
    const why = this.cluster?.renumbering();
    if (why) return this.set({ ready: false, reason: why });
    const own = this.cluster?.ownLease();
    if (own && describeSubnets(own) === this.served) return this.set({ ready: true });
    this.set({ ready: false, reason: this.waiting });
  }

  private set(r: Readiness): void {
    if (r.ready === this.current.ready && r.reason === this.current.reason) return;
    this.current = r;
    this.o.notifier?.status(r.ready ? `ready: ${this.served} via ${this.o.backend}` : `not ready: ${r.reason}`);
  }
}
