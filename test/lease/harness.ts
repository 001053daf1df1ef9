/** Shared pieces for cluster tests: a lease cluster on the fake gossip layer (fake-gossip.ts). */
import type { NetConf } from "../../src/net-conf.ts";
import { parseNetConf } from "../../src/net-conf.ts";
import { createClusterCore } from "../../src/lease/cluster-core.ts";
import type { ClusterCore, ClusterCoreOptions } from "../../src/lease/cluster-options.ts";
import type { Lease } from "../../src/lease/types.ts";
import { silentLogger, type Logger } from "../../src/log.ts";
import { seededRandom } from "../../src/gossip/prng.ts";
import { FakeClock } from "../../sim/fake-clock.ts";
import { MemStore } from "../../sim/mem-store.ts";
import { ObservedTable } from "../../sim/observed-table.ts";
import { duplicateSubnets } from "../../sim/duplicates.ts";
import { runClock, runClockUntil } from "../../sim/run.ts";
import { FakeGossipHub } from "./fake-gossip.ts";

/** Network 10.244.0.0/24 cut into /30s, SubnetMin..Max chosen to give exactly 50. */
export const net50: NetConf = parseNetConf({ Network: "10.244.0.0/24", SubnetLen: 30, SubnetMin: "10.244.0.4", SubnetMax: "10.244.0.200", Backend: { Type: "host-gw" } });
/** The same 50 IPv4 subnets plus exactly 50 IPv6 ones: fd00:10:244::/120 cut into /126s. */
const v6Range50 = { EnableIPv6: true, IPv6Network: "fd00:10:244::/120", IPv6SubnetLen: 126, IPv6SubnetMin: "fd00:10:244::4", IPv6SubnetMax: "fd00:10:244::c8" };
export const netDual50: NetConf = parseNetConf({ Network: "10.244.0.0/24", SubnetLen: 30, SubnetMin: "10.244.0.4", SubnetMax: "10.244.0.200", ...v6Range50, Backend: { Type: "host-gw" } });
/** IPv6 only: exactly 50 IPv6 subnets, no IPv4. */
export const netV6only50: NetConf = parseNetConf({ EnableIPv4: false, ...v6Range50, Backend: { Type: "host-gw" } });
/**
 * Dual-stack where the families' ranges differ in size (62 IPv4 subnets, exactly 50 IPv6
 * ones): a name hashes to different positions in the two ranges, so conflicts in one
 * family do not mirror those in the other.
 */
export const netDualSkewed: NetConf = parseNetConf({ Network: "10.244.0.0/24", SubnetLen: 30, SubnetMin: "10.244.0.4", SubnetMax: "10.244.0.248", ...v6Range50, Backend: { Type: "host-gw" } });

export interface SimOptions {
  seed: number;
  net?: NetConf;
  loss?: number;
  settleMs?: number;
  /** Fake anti-entropy period (0 = off). */
  pushPullMs?: number;
  logger?: Logger;
  extra?: Partial<ClusterCoreOptions>;
}

export interface FakeSimNode {
  cluster: ClusterCore;
  store: MemStore;
  addr: string;
  /** Every record that changed this node's table (its own included), as it happens. */
  onRecord(fn: (l: Lease) => void): void;
  started?: Promise<Lease>;
  error?: Error;
  lease?: Lease;
}

export class FakeSim {
  readonly clock = new FakeClock();
  readonly random: () => number;
  readonly hub: FakeGossipHub;
  readonly nodes = new Map<string, FakeSimNode>();
  constructor(readonly o: SimOptions) {
    this.random = seededRandom(o.seed);
    this.hub = new FakeGossipHub({ clock: this.clock, random: this.random, loss: o.loss ?? 0, delayMs: [2, 40], pushPullMs: o.pushPullMs ?? 5000 });
  }

  /** Each name's number, from which its public IPs derive (distinct per node: a peer record naming our own IP is not routed). */
  private readonly ips = new Map<string, number>();

  addNode(name: string, seeds: string[], store = this.nodes.get(name)?.store ?? new MemStore()) {
    const addr = `${name}:7946`;
    let k = this.ips.get(name);
    if (k === undefined) this.ips.set(name, (k = this.ips.size + 1));
    const publicIp = `198.51.${100 + (k >> 8)}.${k & 255}`;
    // A node running IPv6 pods has an IPv6 underlay address too; an IPv6-only cluster's nodes only that one.
    const net = this.o.net ?? net50;
    const publicIpv6 = net.enableIPv6 ? `2001:db8::${k.toString(16)}` : undefined;
    const table = new ObservedTable();
    const cluster = createClusterCore(
      {
        table,
        net,
        nodeName: name,
        ...(net.enableIPv4 ? { publicIp } : {}),
        ...(publicIpv6 ? { publicIpv6 } : {}),
        advertiseAddr: addr,
        seeds,
        backend: { type: "host-gw" },
        store,
        clock: this.clock,
        logger: this.o.logger ?? silentLogger,
        settleMs: this.o.settleMs ?? 500,
        random: this.random,
        resolveHost: async (h) => [h], // fake names ("n3") are not DNS names
        ...this.o.extra,
      },
      (d) => this.hub.gossip(name, addr, d),
    );
    const entry: FakeSimNode = { cluster, store, addr, onRecord: (fn) => table.observers.push(fn) };
    this.nodes.set(name, entry);
    return entry;
  }

  start(name: string, signal?: AbortSignal) {
    const e = this.nodes.get(name)!;
    e.started = e.cluster.start(signal);
    e.started.then(
      (l) => void (e.lease = l),
      (err) => void (e.error = err as Error),
    );
    return e.started;
  }

  /**
   * The usual two-node start: seed "a", then "b" joining it once a holds a lease (each
   * waited for up to 5 s). True if b committed.
   */
  async startPair(): Promise<boolean> {
    this.addNode("a", []);
    this.addNode("b", ["a:7946"]);
    this.start("a");
    await this.runUntil(() => !!this.nodes.get("a")!.lease, 5000);
    this.start("b");
    return this.runUntil(() => !!this.nodes.get("b")!.lease, 5000);
  }

  /** Runs the clock in steps, letting promise continuations run between timer batches. */
  run(ms: number, step = 20): Promise<void> {
    return runClock(this.clock, ms, step);
  }

  runUntil(cond: () => boolean, maxMs: number, step = 20): Promise<boolean> {
    return runClockUntil(this.clock, cond, maxMs, step);
  }

  /** Subnets (either family) held by more than one up node's committed lease. */
  duplicates(): string[] {
    return duplicateSubnets(
      [...this.nodes].flatMap(([name, e]): [string, Lease][] => {
        const own = e.cluster.ownLease();
        return own && this.hub.nodes.get(name)?.up ? [[name, own]] : [];
      }),
    );
  }
}

/** A fictitious node's host-gw claim on `lease`'s subnet, one millisecond earlier: it wins the subnet. */
export const earlierClaim = (lease: Lease, now: number): Lease => ({
  nodeName: "early",
  nodeId: "e".repeat(32),
  generation: 1,
  version: 0,
  subnet: lease.subnet,
  publicIp: "192.0.2.200",
  backend: { type: "host-gw" },
  claimedAt: lease.claimedAt - 1,
  renewedAt: now,
});
