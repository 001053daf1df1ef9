/**
 * A fake gossip layer for lease-logic simulations: far cheaper than SWIM over MemNetwork,
 * so hundreds of randomized seeds fit in a test run. It keeps the Gossip contract's
 * semantics that the lease layer relies on — broadcasts arrive late, duplicated, or not
 * at all (loss after retransmits); push-pull is a full two-way state exchange that fails
 * across a partition; periodic anti-entropy; members seen as dead across a partition —
 * and nothing else (no probes, no encryption). The real layer is covered separately.
 */
import type { Clock } from "../../src/clock.ts";
import { type Gossip, type GossipDelegate, type Member, emptyGossipMetrics } from "../../src/gossip/types.ts";

interface Node {
  name: string;
  addr: string;
  delegate: GossipDelegate;
  up: boolean;
  joined: boolean;
  lastSeen: Map<string, number>;
}

export interface FakeHubOptions {
  clock: Clock;
  random: () => number;
  /** Probability one broadcast never reaches one peer (after the real layer's retransmits). */
  loss?: number;
  delayMs?: [number, number];
  /** Periodic anti-entropy push-pull with one random peer, ms (0 = off). */
  pushPullMs?: number;
}

export class FakeGossipHub {
  readonly nodes = new Map<string, Node>();
  private readonly byAddr = new Map<string, Node>();
  private group: Map<string, number> | null = null;
  bytes = 0;
  /** Push-pull exchanges by initiator name. */
  readonly pushPulls = new Map<string, number>();

  constructor(private readonly o: FakeHubOptions) {}

  partition(groups: string[][]): void {
    this.group = new Map();
    groups.forEach((g, i) => g.forEach((n) => this.group!.set(n, i)));
  }
  heal(): void {
    this.group = null;
  }
  /** `inFlight`: a's message already left it, so a may have stopped since (b must be up). */
  reach(a: string, b: string, inFlight = false): boolean {
    const na = this.nodes.get(a);
    const nb = this.nodes.get(b);
    if (!na || (!na.up && !inFlight) || !nb?.up) return false;
    if (!this.group) return true;
    return (this.group.get(a) ?? -1) === (this.group.get(b) ?? -1);
  }
  private delay(): number {
    const [lo, hi] = this.o.delayMs ?? [5, 50];
    return lo + this.o.random() * (hi - lo);
  }

  gossip(name: string, addr: string, delegate: GossipDelegate): Gossip {
    const hub = this;
    const { clock } = this.o;
    const self: Node = { name, addr, delegate, up: false, joined: false, lastSeen: new Map() };
    const exchange = (peer: Node, join: boolean): boolean => {
      if (!hub.reach(name, peer.name)) return false;
      hub.pushPulls.set(name, (hub.pushPulls.get(name) ?? 0) + 1);
      const mine = self.delegate.localState(join);
      const theirs = peer.delegate.localState(join);
      hub.bytes += mine.length + theirs.length;
      peer.delegate.mergeRemoteState(mine, join, name);
      self.delegate.mergeRemoteState(theirs, join, peer.name);
      const now = clock.now();
      self.lastSeen.set(peer.name, now);
      peer.lastSeen.set(name, now);
      return true;
    };
    const antiEntropy = () => {
      if (!self.up) return;
      const peers = [...hub.nodes.values()].filter((n) => n !== self && n.joined && n.up);
      const p = peers[Math.floor(hub.o.random() * peers.length)];
      if (p && self.joined) exchange(p, false);
      clock.after(hub.o.pushPullMs!, antiEntropy);
    };
    const g: Gossip = {
      async start() {
        self.up = true;
        hub.nodes.set(name, self);
        hub.byAddr.set(addr, self);
        if (hub.o.pushPullMs) clock.after(hub.o.pushPullMs * (0.5 + hub.o.random()), antiEntropy);
      },
      join(seeds, signal) {
        return new Promise((resolve, reject) => {
          const attempt = () => {
            if (signal?.aborted) return resolve(0); // like the real layer: 0 answered
            for (const s of seeds) {
              const peer = hub.byAddr.get(s);
              if (peer && peer !== self && exchange(peer, true)) {
                self.joined = true;
                peer.joined = true;
                return resolve(1);
              }
            }
            clock.after(500, attempt);
          };
          clock.after(hub.delay(), attempt);
        });
      },
      broadcast(_key, payload) {
        self.joined = true;
        if (!self.up) return;
        for (const peer of hub.nodes.values()) {
          if (peer === self || !peer.joined) continue;
          if (hub.o.random() < (hub.o.loss ?? 0)) continue;
          const dup = hub.o.random() < 0.05;
          for (let i = 0; i < (dup ? 2 : 1); i++) {
            clock.after(hub.delay(), () => {
              if (!hub.reach(name, peer.name, true)) return;
              hub.bytes += payload.length;
              peer.delegate.notifyMessage(payload, name);
            });
          }
        }
      },
      pushPull(member) {
        return new Promise((resolve, reject) => {
          clock.after(hub.delay() * 2, () => {
            const peer = hub.nodes.get(member);
            if (peer && exchange(peer, false)) resolve();
            else reject(new Error(`push-pull with ${member}: unreachable`));
          });
        });
      },
      members() {
        const now = clock.now();
        const out: Member[] = [];
        for (const n of hub.nodes.values()) {
          if (!n.joined && n !== self) continue;
          const alive = n === self || hub.reach(name, n.name);
          if (alive) self.lastSeen.set(n.name, now);
          out.push({ name: n.name, addr: n.addr, state: alive ? "alive" : "dead", incarnation: 0, lastSeen: self.lastSeen.get(n.name) ?? 0 });
        }
        return out;
      },
      localName: () => name,
      async leave() {
        self.up = false;
      },
      async shutdown() {
        self.up = false;
      },
      metrics: () => emptyGossipMetrics(),
    };
    return g;
  }
}
