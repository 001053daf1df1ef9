/**
 * A simulated cluster for gossip tests: N gossip nodes on one MemNetwork driven by a
 * FakeClock. `run`/`runUntil` advance fake time in small steps and let promise
 * continuations (push-pull, join) run between steps; nothing sleeps in real time.
 */
import { createHash } from "node:crypto";
import type { Clock } from "../src/clock.ts";
import { type Logger, silentLogger } from "../src/log.ts";
import { type GossipConfig, localConfig } from "../src/gossip/config.ts";
import { createGossip, type GossipNode } from "../src/gossip/index.ts";
import { MemNetwork, type MemNetworkOptions } from "./mem-network.ts";
import type { GossipDelegate, Keyring, Member, MemberState } from "../src/gossip/types.ts";
import { FakeClock } from "./fake-clock.ts";
import { flush } from "./run.ts";


/** Records what the gossip layer hands its user; state is a key→value map merged on push-pull. */
export class RecordingDelegate implements GossipDelegate {
  messages: { payload: string; from: string }[] = [];
  state = new Map<string, string>();
  merges: { from: string; join: boolean }[] = [];
  events: string[] = [];

  notifyMessage(payload: Uint8Array, from: string): void {
    this.messages.push({ payload: new TextDecoder().decode(payload), from });
  }
  localState(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify([...this.state]));
  }
  mergeRemoteState(payload: Uint8Array, join: boolean, from: string): void {
    this.merges.push({ from, join });
    for (const [k, v] of JSON.parse(new TextDecoder().decode(payload)) as [string, string][]) if (!this.state.has(k)) this.state.set(k, v);
  }
}

/** A RecordingDelegate whose state has a digest, so periodic push-pulls go digest-first. */
export class DigestDelegate extends RecordingDelegate {
  stateDigest(): Uint8Array {
    return new Uint8Array(createHash("sha256").update(JSON.stringify([...this.state].sort())).digest());
  }
}

export interface SimNode {
  name: string;
  addr: string;
  gossip: GossipNode;
  delegate: RecordingDelegate;
}

export interface SimOptions {
  seed?: number;
  net?: Partial<Omit<MemNetworkOptions, "clock" | "seed">>;
  config?: Partial<GossipConfig>;
  keyring?: Keyring | null;
  clusterName?: string;
  /** Delegates with a state digest (digest-first periodic push-pull). */
  digest?: boolean;
}

export class Sim {
  readonly clock = new FakeClock();
  readonly net: MemNetwork;
  readonly nodes: SimNode[] = [];
  private seed: number;

  constructor(readonly opts: SimOptions = {}) {
    this.seed = opts.seed ?? 1;
    this.net = new MemNetwork({ clock: this.clock, seed: this.seed, ...opts.net });
  }

  static addr(i: number): string {
    return `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}:7946`;
  }

  /**
   * Creates (and starts) a node; `i` picks its address, so a restart can reuse it.
   * `clockOffsetMs`: the node's clock reads the simulation's plus this (a function: read
   * at every reading, so a test can move it); timers are unchanged.
   */
  async add(
    name: string,
    i: number,
    opts: { keyring?: Keyring | null; clusterName?: string; meta?: Uint8Array; digest?: boolean; clockOffsetMs?: number | (() => number); logger?: Logger; config?: Partial<GossipConfig>; addr?: string } = {},
  ): Promise<SimNode> {
    const addr = opts.addr ?? Sim.addr(i);
    const delegate = opts.digest ?? this.opts.digest ? new DigestDelegate() : new RecordingDelegate();
    const gossip = createGossip({
      name,
      advertiseAddr: addr,
      ...(opts.meta ? { meta: opts.meta } : {}),
      transport: this.net.transport(addr),
      config: localConfig({ ...this.opts.config, ...opts.config }),
      seed: this.seed * 1000 + i + this.nodes.length * 7919,
      deps: {
        clock: opts.clockOffsetMs ? offsetClock(this.clock, opts.clockOffsetMs) : this.clock,
        logger: opts.logger ?? silentLogger,
        delegate,
        listener: {
          onJoin: (m) => delegate.events.push(`join ${m.name}`),
          onUpdate: (m) => delegate.events.push(`update ${m.name} ${m.state}`),
          onLeave: (m) => delegate.events.push(`leave ${m.name} ${m.state}`),
        },
        keyring: opts.keyring !== undefined ? opts.keyring : (this.opts.keyring ?? null),
        clusterName: opts.clusterName ?? this.opts.clusterName ?? "test",
      },
    });
    await gossip.start();
    const node = { name, addr, gossip, delegate };
    this.nodes.push(node);
    return node;
  }

  /** Starts n nodes named n0..n{n-1}; each joins through n0. Resolves once all joins resolved. */
  async cluster(n: number): Promise<SimNode[]> {
    const out: SimNode[] = [];
    for (let i = 0; i < n; i++) out.push(await this.add(`n${i}`, i));
    const joins = out.slice(1).map((nd) => nd.gossip.join([out[0]!.addr]));
    await this.runUntilSettled(Promise.all(joins), 30_000);
    return out;
  }

  async run(ms: number, step = 10): Promise<void> {
    const end = this.clock.now() + ms;
    while (this.clock.now() < end) {
      this.clock.advance(Math.min(step, end - this.clock.now()));
      await flush();
    }
  }

  /** Advances until cond() holds; returns the fake ms it took, or -1 after maxMs. */
  async runUntil(cond: () => boolean, maxMs: number, step = 10): Promise<number> {
    const start = this.clock.now();
    while (!cond()) {
      if (this.clock.now() - start >= maxMs) return -1;
      this.clock.advance(step);
      await flush();
    }
    return this.clock.now() - start;
  }

  /** Drives the clock until `p` settles (or maxMs passes, then throws). */
  async runUntilSettled<T>(p: Promise<T>, maxMs: number): Promise<T> {
    let done = false;
    const q = p.finally(() => void (done = true));
    q.catch(() => {});
    const took = await this.runUntil(() => done, maxMs);
    if (took < 0) throw new Error(`promise did not settle within ${maxMs} fake ms`);
    return q;
  }
}

/** `clock` read `offsetMs` off: a node whose wall clock is wrong. */
export function offsetClock(clock: Clock, offsetMs: number | (() => number)): Clock {
  const off = typeof offsetMs === "number" ? () => offsetMs : offsetMs;
  return { now: () => clock.now() + off(), after: (ms, fn) => clock.after(ms, fn) };
}

/** name → state as `node` sees its members. */
export function view(node: SimNode): Map<string, MemberState> {
  return new Map(node.gossip.members().map((m: Member) => [m.name, m.state]));
}

/** True if every node in `observers` sees every name in `names` in `state`. */
export function allSee(observers: SimNode[], names: string[], state: MemberState): boolean {
  return observers.every((o) => {
    const v = view(o);
    return names.every((n) => v.get(n) === state);
  });
}
