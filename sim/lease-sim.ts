/**
 * N lease nodes on the real gossip layer over one MemNetwork, driven by a FakeClock:
 * what the randomized lease simulations and bench/convergence.ts run. Nothing sleeps in
 * real time; `run`/`runUntil` advance fake time and let promise continuations run.
 */
import type { NetConf } from "../src/net-conf.ts";
import { type GossipConfig, lanConfig } from "../src/gossip/config.ts";
import { type MemLink, MemNetwork } from "./mem-network.ts";
import type { Keyring } from "../src/gossip/types.ts";
import { createCluster } from "../src/lease/cluster.ts";
import type { ClusterCore } from "../src/lease/cluster-options.ts";
import type { ClusterCoreOptions } from "../src/lease/cluster-options.ts";
import type { Lease } from "../src/lease/types.ts";
import { silentLogger, type Logger } from "../src/log.ts";
import { FakeClock } from "./fake-clock.ts";
import { seededRandom as seeded } from "../src/gossip/prng.ts";
import { MemStore } from "./mem-store.ts";
import { ObservedTable } from "./observed-table.ts";
import { duplicateSubnets, viewText } from "./duplicates.ts";
import { hostOfAddr } from "../src/lease/families.ts";
import { runClock, runClockUntil } from "./run.ts";

export interface LeaseSimOptions {
  seed: number;
  net: NetConf;
  loss?: number;
  delayMs?: [number, number];
  gossip?: Partial<GossipConfig>;
  keyring?: Keyring | null;
  settleMs?: number;
  /** The cluster's tolerated clock skew (createCluster clockSkewMs); its default otherwise. */
  clockSkewMs?: number;
  logger?: Logger;
  extra?: Partial<ClusterCoreOptions>;
  /** This simulation is one part of a split one (see MemNetwork). */
  link?: MemLink;
}

export interface LeaseSimNode {
  name: string;
  addr: string;
  cluster: ClusterCore;
  store: MemStore;
  /** Every record that changed this node's table (its own included), as it happens. */
  onRecord(fn: (l: Lease) => void): void;
  lease?: Lease;
  error?: Error;
  up: boolean;
}

export class LeaseSim {
  readonly clock = new FakeClock();
  readonly network: MemNetwork;
  readonly nodes = new Map<string, LeaseSimNode>();
  readonly random: () => number;
  private readonly config: GossipConfig;

  constructor(readonly o: LeaseSimOptions) {
    this.network = new MemNetwork({ clock: this.clock, seed: o.seed, loss: o.loss ?? 0, delayMs: o.delayMs ?? [1, 5], ...(o.link ? { link: o.link } : {}) });
    this.random = seeded(o.seed * 7919);
    this.config = lanConfig(o.gossip);
  }

  static addr(i: number): string {
    return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:7946`;
  }

  /** Node i's gossip address in an IPv6-only cluster (its IPv6 public address, port 7946). */
  static addr6(i: number): string {
    return `[2001:db8::${i.toString(16)}]:7946`;
  }

  add(name: string, addr: string, seeds: string[], opts: { store?: MemStore; keyring?: Keyring | null } = {}): LeaseSimNode {
    const store = opts.store ?? this.nodes.get(name)?.store ?? new MemStore();
    const table = new ObservedTable();
    // The gossip address is the node's IPv4 public address, or its IPv6 one when it has
    // no IPv4 (as the agent does). A dual-stack node's IPv6 address is derived from its IPv4.
    const host = hostOfAddr(addr);
    const v6 = host.includes(":");
    const publicIpv6 = v6 ? host : this.o.net.enableIPv6 ? `2001:db8::${host.split(".").map((x) => Number(x).toString(16)).join(":")}` : undefined;
    const cluster = createCluster({
      net: this.o.net,
      nodeName: name,
      ...(v6 ? {} : { publicIp: host }),
      ...(publicIpv6 ? { publicIpv6 } : {}),
      advertiseAddr: addr,
      seeds,
      backend: (nodeId) => ({ type: "vxlan", vtepMac: `0e:${nodeId.slice(0, 10).replace(/(..)(?!$)/g, "$1:")}` }),
      stateDir: "(memory)",
      store,
      transport: this.network.transport(addr),
      gossipConfig: this.config,
      keyring: opts.keyring === undefined ? (this.o.keyring ?? null) : opts.keyring,
      clock: this.clock,
      logger: this.o.logger ?? silentLogger,
      settleMs: this.o.settleMs ?? 1000,
      random: this.random,
      seed: Math.floor(this.random() * 2 ** 31),
      table,
      ...(this.o.clockSkewMs !== undefined ? { clockSkewMs: this.o.clockSkewMs } : {}),
      ...this.o.extra,
    });
    const node: LeaseSimNode = { name, addr, cluster, store, up: true, onRecord: (fn) => table.observers.push(fn) };
    this.nodes.set(name, node);
    return node;
  }

  start(name: string): Promise<Lease> {
    const n = this.nodes.get(name)!;
    const p = n.cluster.start();
    p.then(
      (l) => void (n.lease = l),
      (e) => void (n.error = e as Error),
    );
    return p;
  }

  async kill(name: string): Promise<void> {
    const n = this.nodes.get(name)!;
    n.up = false;
    await n.cluster.stop({ leave: false });
  }

  run(ms: number, step = 20): Promise<void> {
    return runClock(this.clock, ms, step);
  }

  runUntil(cond: () => boolean, maxMs: number, step = 20): Promise<boolean> {
    return runClockUntil(this.clock, cond, maxMs, step);
  }

  upNodes(): LeaseSimNode[] {
    return [...this.nodes.values()].filter((n) => n.up);
  }

  /** Subnets (either family) held by more than one up node's committed lease. */
  duplicates(): string[] {
    return duplicateSubnets(this.upNodes().flatMap((n): [string, Lease][] => {
      const own = n.cluster.ownLease();
      return own ? [[n.name, own]] : [];
    }));
  }

  /** Distinct views (name=subnets lists) among up nodes; 1 = agreement. */
  views(): number {
    return new Set(this.upNodes().map((n) => viewText(n.cluster.leases()))).size;
  }

  async stopAll(): Promise<void> {
    for (const n of this.upNodes()) await n.cluster.stop({ leave: false });
  }
}
