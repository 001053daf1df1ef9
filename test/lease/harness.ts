/** Shared pieces for cluster tests: an in-memory state store and a fake-gossip cluster. */
import type { NetConf } from "../../src/config.ts";
import { parseNetConf } from "../../src/config.ts";
import { createClusterCore, type ClusterCore, type ClusterCoreOptions } from "../../src/lease/cluster-core.ts";
import type { NodeIdentity, StateStore } from "../../src/lease/state-store.ts";
import type { Lease } from "../../src/lease/types.ts";
import { silentLogger, type Logger } from "../../src/log.ts";
import { seededRandom } from "../../src/gossip/prng.ts";
import { FakeClock } from "../fakes/clock.ts";
import { FakeGossipHub } from "./fake-gossip.ts";

export class MemStore implements StateStore {
  readonly dir = "(memory)";
  identity?: NodeIdentity;
  lease?: Lease;
  writes = 0;
  load() {
    return { ...(this.identity ? { identity: { ...this.identity } } : {}), ...(this.lease ? { lease: { ...this.lease } } : {}), problems: [] };
  }
  saveIdentity(id: NodeIdentity) {
    this.writes++;
    this.identity = { ...id };
  }
  saveLease(l: Lease) {
    this.writes++;
    this.lease = { ...l };
  }
}

/** The gossip layer's seeded PRNG (mulberry32), so every simulation is reproducible from its seed. */
export const seeded = seededRandom;

/** Network 10.244.0.0/24 cut into /30s, SubnetMin..Max chosen to give exactly 50. */
export const net50: NetConf = parseNetConf({ Network: "10.244.0.0/24", SubnetLen: 30, SubnetMin: "10.244.0.4", SubnetMax: "10.244.0.200", Backend: { Type: "host-gw" } });

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

export class FakeSim {
  readonly clock = new FakeClock();
  readonly random: () => number;
  readonly hub: FakeGossipHub;
  readonly nodes = new Map<string, { cluster: ClusterCore; store: MemStore; addr: string; started?: Promise<Lease>; error?: Error; lease?: Lease }>();
  constructor(readonly o: SimOptions) {
    this.random = seeded(o.seed);
    this.hub = new FakeGossipHub({ clock: this.clock, random: this.random, loss: o.loss ?? 0, delayMs: [2, 40], pushPullMs: o.pushPullMs ?? 5000 });
  }

  /** Each name's public IP (distinct per node: a peer record naming our own IP is not routed). */
  private readonly ips = new Map<string, string>();

  addNode(name: string, seeds: string[], store = this.nodes.get(name)?.store ?? new MemStore()) {
    const addr = `${name}:7946`;
    let publicIp = this.ips.get(name);
    if (!publicIp) {
      const k = this.ips.size + 1;
      this.ips.set(name, (publicIp = `198.51.${100 + (k >> 8)}.${k & 255}`));
    }
    const cluster = createClusterCore(
      {
        net: this.o.net ?? net50,
        nodeName: name,
        publicIp,
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
    const entry: { cluster: ClusterCore; store: MemStore; addr: string; started?: Promise<Lease>; error?: Error; lease?: Lease } = { cluster, store, addr };
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

  /** Subnets held by more than one up node's committed lease. */
  duplicates(): string[] {
    const seen = new Map<string, string>();
    const dup: string[] = [];
    for (const [name, e] of this.nodes) {
      const own = e.cluster.ownLease();
      if (!own || !this.hub.nodes.get(name)?.up) continue;
      if (seen.has(own.subnet)) dup.push(`${own.subnet} (${seen.get(own.subnet)}, ${name})`);
      else seen.set(own.subnet, name);
    }
    return dup;
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
