/**
 * The member table and its SWIM state machine (memberlist state.go): alive, suspect,
 * dead and left transitions ordered by incarnation number, suspicion timers, refutation
 * of rumours about ourselves, the shuffled probe order and reaping of long-dead members.
 * It changes state and queues broadcasts; it never touches the network.
 *
 * Longer than most files on purpose: the transitions between states are one state
 * machine whose rules (incarnation order, refutation, suspicion) must be read together,
 * as in memberlist's state.go; suspicion timers live in suspicion.ts.
 */
import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { Awareness } from "./awareness.ts";
import type { AliveMsg, DeadMsg, Message, SuspectMsg } from "./messages.ts";
import { T } from "./messages.ts";
import type { GossipConfig } from "./config.ts";
import { suspicionTimeout } from "./config.ts";
import { type Random, pick, shuffle } from "./prng.ts";
import { encodeMemberEntry } from "./push-pull-codec.ts";
import { sharedCopy } from "./shared-copies.ts";
import { Suspicion } from "./suspicion.ts";
import type { Member, MemberState, MembershipListener } from "./types.ts";

export interface NodeState {
  name: string;
  addr: string;
  state: MemberState;
  incarnation: number;
  /** Clock ms of the last state change. */
  stateChange: number;
  lastSeen: number;
  meta?: Uint8Array;
  /** This member's push-pull entry, encoded once per change (Membership.entry()). */
  wire?: Uint8Array | undefined;
}

export interface MembershipOptions {
  name: string;
  addr: string;
  meta?: Uint8Array;
  clock: Clock;
  config: GossipConfig;
  awareness: Awareness;
  rnd: Random;
  logger: Logger;
  listener?: MembershipListener;
  /** Queues a membership broadcast under `key` (newer replaces older); `wire`: msg's bytes as received, to relay instead of re-encoding. */
  broadcast(key: string, msg: Message, onDone?: () => void, wire?: Uint8Array): void;
  /**
   * Asks whether a node named `name` answers at `addr` (a ping naming it) within
   * `timeoutMs`, calling `done(answered)` later. Without it a live member never moves to
   * another address, and news of ourselves at another address is refuted.
   */
  checkAddress?(name: string, addr: string, timeoutMs: number, done: (answered: boolean) => void): void;
}

export class Membership {
  private readonly nodes = new Map<string, NodeState>();
  private readonly suspicions = new Map<string, Suspicion>();
  /** Dead (not left) members' last addresses, for reconnect attempts after a partition. */
  private readonly failed = new Map<string, { addr: string; since: number }>();
  private probeOrder: string[] = [];
  private probeIndex = 0;
  // Both caches are kept up to date incrementally on the frequent changes (a member joins,
  // changes state) and only rebuilt after the rare removals: during a join storm every
  // packet asks for liveCount() and every gossip round samples the list.
  private live = -1; // cached liveCount(); -1 = recount
  private list: NodeState[] | null = null; // cached nodes.values() (same order) for random sampling
  /** Bumped whenever a member's name, address, incarnation, state or meta changes (the push-pull digest's cache key). */
  private rev = 0;
  private removals_ = 0;
  /** Members forgotten so far (reaped or evicted): a forgotten member's old news is news again. */
  removals(): number {
    return this.removals_;
  }

  /**
   * True if aliveNode(a) would change nothing now: the member is known at a's address at
   * a's incarnation or newer. (Stays true until the member is forgotten, see removals().)
   */
  covers(a: AliveMsg): boolean {
    const st = this.nodes.get(a.name);
    return a.name !== this.o.name && st !== undefined && st.addr === a.addr && a.inc <= st.incarnation;
  }

  /** Set by leave(): rumours about us are no longer refuted. */
  leaving = false;
  /** Address checks in flight (checkAddress), by name and address: the newest alive waiting on each. */
  private readonly pendingChecks = new Map<string, { inc: number; a: AliveMsg }>();

  constructor(private readonly o: MembershipOptions) {
    const now = o.clock.now();
    this.nodes.set(o.name, { name: o.name, addr: o.addr, state: "alive", incarnation: 0, stateChange: now, lastSeen: now, ...(o.meta ? { meta: o.meta } : {}) });
  }

  self(): NodeState {
    return this.nodes.get(this.o.name)!;
  }

  get(name: string): NodeState | undefined {
    return this.nodes.get(name);
  }

  revision(): number {
    return this.rev;
  }

  /**
   * `s`'s push-pull entry (name, address, incarnation, state, meta), cached until one of
   * them changes; equal entries of all nodes in the process share one copy (sharedCopy).
   */
  entry(s: NodeState): Uint8Array {
    return (s.wire ??= sharedCopy(encodeMemberEntry(s)));
  }

  /** Records a change of `s`'s name, address, incarnation, state or meta. */
  private changed(s: NodeState): void {
    this.rev++;
    s.wire = undefined;
  }

  all(): NodeState[] {
    return [...this.nodes.values()];
  }

  /** Members believed alive or suspect, self included: the N of the scaling formulas. */
  liveCount(): number {
    if (this.live < 0) {
      this.live = 0;
      for (const s of this.nodes.values()) if (isLive(s)) this.live++;
    }
    return this.live;
  }

  /** Up to k random members other than self (and `exclude`) that pass `filter`. */
  randomMembers(k: number, filter: (s: NodeState) => boolean, exclude?: string): NodeState[] {
    if (k <= 0) return [];
    const list = this.list ??= [...this.nodes.values()];
    const ok = (s: NodeState) => s.name !== this.o.name && s.name !== exclude && filter(s);
    // Usually most members pass: sample random slots (O(k)) instead of scanning all N.
    if (list.length > 4 * k + 8) {
      // k is small (gossipNodes, indirectChecks): a linear duplicate check beats a Set.
      const got: NodeState[] = [];
      for (let tries = 0; tries < 4 * k + 8 && got.length < k; tries++) {
        const s = list[Math.floor(this.o.rnd() * list.length)]!;
        if (!got.includes(s) && ok(s)) got.push(s);
      }
      if (got.length === k) return got;
    }
    return pick(list.filter(ok), k, this.o.rnd);
  }

  /** Live members plus dead/left ones still inside the gossip-to-the-dead window. */
  gossipTargets(k: number): NodeState[] {
    const now = this.o.clock.now();
    return this.randomMembers(k, (s) => isLive(s) || now - s.stateChange <= this.o.config.gossipToTheDeadMs);
  }

  /**
   * Fresh evidence that `name` is alive, from a message sealed by `addr` (or a stream we
   * opened to it). Counts only if that is the member's address: a message from one
   * member is no evidence about another. `addr` undefined: a legacy or insecure message,
   * which names no sender.
   */
  markSeen(name: string, addr?: string): void {
    const s = this.nodes.get(name);
    if (s && name !== this.o.name && (addr === undefined || s.addr === addr)) s.lastSeen = this.o.clock.now();
  }

  /** Next member to probe, round-robin over a list reshuffled (and reaped) every round. */
  nextProbeTarget(): NodeState | undefined {
    for (let tries = 0; tries < 2; tries++) {
      while (this.probeIndex < this.probeOrder.length) {
        const s = this.nodes.get(this.probeOrder[this.probeIndex++]!);
        if (s && s.name !== this.o.name && isLive(s)) return s;
      }
      this.reap();
      this.probeOrder = shuffle([...this.nodes.keys()], this.o.rnd);
      this.probeIndex = 0;
    }
    return undefined;
  }

  /** A random failed member to try to reconnect to (expired ones are forgotten first). */
  reconnectCandidate(): { name: string; addr: string } | undefined {
    const now = this.o.clock.now();
    for (const [name, f] of this.failed) if (now - f.since > this.o.config.reconnectTimeoutMs) this.failed.delete(name);
    const names = [...this.failed.keys()];
    if (names.length === 0) return undefined;
    const name = names[Math.floor(this.o.rnd() * names.length)]!;
    return { name, addr: this.failed.get(name)!.addr };
  }

  /** Table full: drops the longest-dead (or left) member early to make room; false if none. */
  private evictDeadest(): boolean {
    let victim: NodeState | undefined;
    for (const s of this.nodes.values()) if (!isLive(s) && s.name !== this.o.name && (!victim || s.stateChange < victim.stateChange)) victim = s;
    if (!victim) return false;
    this.nodes.delete(victim.name);
    this.rev++;
    this.removals_++;
    this.list = null;
    return true;
  }

  /** Removes dead/left members past the gossip-to-the-dead window. */
  reap(): void {
    const now = this.o.clock.now();
    for (const s of this.nodes.values()) {
      if (!isLive(s) && s.name !== this.o.name && now - s.stateChange > this.o.config.gossipToTheDeadMs) {
        this.nodes.delete(s.name);
        this.rev++;
        this.removals_++;
        this.list = null;
        this.o.logger.debug("reaped member", { member: s.name, state: s.state });
      }
    }
  }

  /**
   * `wire`: a's bytes as received, if it came in a packet (relayed as they are). `via`:
   * the gossip address the message came from directly (the sealed sender of a packet,
   * or of a push-pull for its own entry): a member announcing its new address from
   * there needs no ping to show it answers there (see moved()).
   */
  aliveNode(a: AliveMsg, wire?: Uint8Array, via?: string): void {
    const now = this.o.clock.now();
    if (a.name === this.o.name) {
      const me = this.self();
      if (this.leaving) return;
      if (a.addr !== me.addr && a.inc >= me.incarnation) return this.selfElsewhere(a);
      // A rumour of us at a newer incarnation, or at ours with other meta: a previous
      // life of this node. Out-bid it.
      if (a.inc > me.incarnation || (a.inc === me.incarnation && !sameBytes(a.meta, me.meta))) this.refute(a.inc);
      return;
    }
    const st = this.nodes.get(a.name);
    if (!st) {
      if (this.nodes.size >= this.o.config.maxMembers && !this.evictDeadest()) {
        this.o.logger.debug("ignored new member: member table full", { member: a.name, max: this.o.config.maxMembers });
        return;
      }
      const s: NodeState = { name: a.name, addr: a.addr, state: "alive", incarnation: a.inc, stateChange: now, lastSeen: now };
      if (a.meta) s.meta = a.meta;
      this.nodes.set(a.name, s);
      this.rev++;
      if (this.live >= 0) this.live++;
      this.list?.push(s);
      this.failed.delete(a.name);
      // Random slot in the current round so new members are probed soon but unpredictably.
      // (append, then swap with a random not-yet-probed slot: O(1), unlike a splice).
      const order = this.probeOrder;
      order.push(a.name);
      const at = this.probeIndex + Math.floor(this.o.rnd() * (order.length - this.probeIndex));
      [order[at], order[order.length - 1]] = [order[order.length - 1]!, order[at]!];
      this.o.broadcast(memberKey(a.name), a, undefined, wire);
      this.o.listener?.onJoin?.(toMember(s));
      return;
    }
    if (st.addr !== a.addr) {
      const reclaim = st.state === "left" || (st.state === "dead" && now - st.stateChange >= this.o.config.deadNodeReclaimMs);
      if (!reclaim) return this.moved(st, a, via);
    } else if (a.inc <= st.incarnation) {
      return;
    }
    this.update(st, a, wire);
  }

  /** Takes `a` (newer, or a new address) for known member `st`. */
  private update(st: NodeState, a: AliveMsg, wire?: Uint8Array): void {
    const now = this.o.clock.now();
    this.suspicions.get(a.name)?.cancel();
    this.suspicions.delete(a.name);
    this.failed.delete(a.name);
    const before = { state: st.state, addr: st.addr, meta: st.meta };
    this.changed(st);
    st.addr = a.addr;
    st.incarnation = a.inc;
    if (a.meta) st.meta = a.meta;
    else delete st.meta;
    st.lastSeen = now;
    if (st.state !== "alive") {
      if (!isLive(st) && this.live >= 0) this.live++;
      st.state = "alive";
      st.stateChange = now;
    }
    this.o.broadcast(memberKey(a.name), a, undefined, wire);
    if (before.state === "dead" || before.state === "left") this.o.listener?.onJoin?.(toMember(st));
    else if (before.state !== st.state || before.addr !== st.addr || !sameBytes(before.meta, st.meta)) this.o.listener?.onUpdate?.(toMember(st));
  }

  suspectNode(s: SuspectMsg): void {
    const st = this.nodes.get(s.name);
    if (!st || s.inc < st.incarnation) return;
    const timer = this.suspicions.get(s.name);
    if (timer) {
      // Another peer's independent suspicion: shortens the timer and is worth passing on.
      if (timer.confirm(s.from)) this.o.broadcast(memberKey(s.name), s);
      return;
    }
    if (st.state !== "alive") return;
    if (s.name === this.o.name) {
      if (!this.leaving) this.refute(s.inc);
      return;
    }
    const now = this.o.clock.now();
    this.changed(st);
    st.incarnation = s.inc;
    st.state = "suspect"; // from alive: liveCount() unchanged
    st.stateChange = now;
    this.o.broadcast(memberKey(s.name), s);
    const { config: c } = this.o;
    const n = this.liveCount();
    // Confirmations can only come from members other than the suspect and ourselves.
    const k = n - 2 < c.indirectChecks ? 0 : c.indirectChecks;
    const min = suspicionTimeout(c.suspicionMult, n, c.probeIntervalMs);
    const max = c.suspicionMaxTimeoutMult * min;
    const inc = s.inc;
    this.suspicions.set(
      s.name,
      new Suspicion(this.o.clock, s.from, k, min, max, () => {
        this.suspicions.delete(s.name);
        const cur = this.nodes.get(s.name);
        if (cur && cur.state === "suspect" && cur.incarnation === inc) {
          this.o.logger.info("member declared dead: suspicion timed out", { member: s.name });
          this.deadNode({ t: T.dead, name: s.name, inc, from: this.o.name });
        }
      }),
    );
    this.o.listener?.onUpdate?.(toMember(st));
  }

  deadNode(d: DeadMsg, onDone?: () => void): void {
    const st = this.nodes.get(d.name);
    if (!st || d.inc < st.incarnation) return;
    this.suspicions.get(d.name)?.cancel();
    this.suspicions.delete(d.name);
    if (st.state === "dead" || st.state === "left") return;
    if (d.name === this.o.name && !this.leaving) {
      this.refute(d.inc);
      return;
    }
    this.changed(st);
    st.incarnation = d.inc;
    st.state = d.from === d.name ? "left" : "dead"; // from alive or suspect
    if (this.live >= 0) this.live--;
    st.stateChange = this.o.clock.now();
    if (st.state === "dead" && d.name !== this.o.name) {
      this.failed.set(d.name, { addr: st.addr, since: st.stateChange });
      if (this.failed.size > this.o.config.maxMembers) this.failed.delete(this.failed.keys().next().value!);
    } else this.failed.delete(d.name);
    this.o.broadcast(memberKey(d.name), d, onDone);
    if (d.name !== this.o.name) this.o.listener?.onLeave?.(toMember(st));
  }

  /** Graceful leave: marks us left and queues the news; `onDone` when it has been sent enough. */
  leave(onDone: () => void): void {
    this.leaving = true;
    const me = this.self();
    this.deadNode({ t: T.dead, name: me.name, inc: me.incarnation, from: me.name }, onDone);
  }

  /**
   * `a` puts live member `st` at another address. It is a move — taken — when `a` is
   * newer, a node of that name answers at the new address (`via`: the message came from
   * there itself; else a ping naming it is answered there) and none answers at the old
   * one any more (a ping naming it goes unanswered for the probe timeout): the old
   * address is gone, as after a DHCP change. While the member still answers where it
   * is, another node announcing itself under its name elsewhere — a clone, or a key
   * holder — is a name in use twice and moves nothing. Without `checkAddress` a live
   * member never moves.
   */
  private moved(st: NodeState, a: AliveMsg, via: string | undefined): void {
    const check = this.o.checkAddress;
    if (a.inc <= st.incarnation || !check) {
      this.o.logger.debug("ignored alive message: name in use at another address", { member: a.name, addr: st.addr, other: a.addr });
      return;
    }
    const key = `${a.name}\0${a.addr}`;
    const pending = this.pendingChecks.get(key);
    if (pending) {
      if (a.inc > pending.inc) this.pendingChecks.set(key, { inc: a.inc, a });
      return;
    }
    if (this.pendingChecks.size >= MAX_PENDING_CHECKS) return;
    // The packet's bytes are not ours to keep past this call: the message is re-encoded if taken.
    this.pendingChecks.set(key, { inc: a.inc, a });
    const from = st.addr;
    let waiting = 2;
    let atNew = via === a.addr;
    let atOld = false;
    const done = () => {
      if (--waiting > 0) return;
      const p = this.pendingChecks.get(key);
      this.pendingChecks.delete(key);
      const cur = this.nodes.get(a.name);
      if (!p || !cur || cur.addr !== from || p.inc <= cur.incarnation) return;
      if (!atNew || atOld) {
        this.o.logger.debug("ignored alive message: not a move", { member: a.name, addr: from, other: a.addr, answersThere: atNew, stillAnswersHere: atOld });
        return;
      }
      this.o.logger.info("member moved to a new address", { member: a.name, from, to: a.addr });
      this.update(cur, p.a);
    };
    check(a.name, from, this.o.config.probeTimeoutMs, (answered) => {
      atOld = answered;
      done();
    });
    if (atNew) done();
    else
      check(a.name, a.addr, this.o.config.probeIntervalMs, (answered) => {
        atNew = answered;
        done();
      });
  }

  /**
   * News of ourselves at another address, as new as our own: a previous life of this
   * node (before a restart or a move; then nobody answers there, and we out-bid it) or
   * another machine running under our name (it answers; out-bidding each other would
   * flap every member's view of the name, so we leave it be and say so).
   */
  private selfElsewhere(a: AliveMsg): void {
    const check = this.o.checkAddress;
    if (!check) return this.refute(a.inc);
    const key = `${a.name}\0${a.addr}`;
    if (this.pendingChecks.has(key)) return;
    this.pendingChecks.set(key, { inc: a.inc, a });
    check(a.name, a.addr, this.o.config.probeIntervalMs, (answered) => {
      const p = this.pendingChecks.get(key);
      this.pendingChecks.delete(key);
      if (this.leaving || !p) return;
      if (answered) {
        this.o.logger.error("Another node answers under this node's name at another address: fix the duplicate node name", { name: a.name, addr: a.addr, ours: this.self().addr });
        return;
      }
      if (p.inc >= this.self().incarnation) this.refute(p.inc);
    });
  }

  /**
   * Our gossip address changed (the node re-bound to a new underlay address): a new
   * incarnation carrying it, so peers take it over their view of the old one.
   */
  moveSelf(addr: string): void {
    const me = this.self();
    this.changed(me);
    me.addr = addr;
    me.incarnation++;
    this.broadcastSelf();
  }

  /** New meta for ourselves: a new incarnation so it wins everywhere. */
  updateMeta(meta: Uint8Array | undefined): void {
    const me = this.self();
    this.changed(me);
    if (meta) me.meta = meta;
    else delete me.meta;
    me.incarnation++;
    this.broadcastSelf();
  }

  stop(): void {
    for (const s of this.suspicions.values()) s.cancel();
    this.suspicions.clear();
    this.pendingChecks.clear();
  }

  private refute(accused: number): void {
    const me = this.self();
    this.changed(me);
    me.incarnation = Math.max(me.incarnation, accused) + 1;
    // Having to refute hints that we were slow to answer: probe and time out more gently.
    this.o.awareness.applyDelta(1);
    this.o.logger.debug("refuting suspicion of ourselves", { incarnation: me.incarnation });
    this.broadcastSelf();
  }

  private broadcastSelf(): void {
    const me = this.self();
    this.o.broadcast(memberKey(me.name), { t: T.alive, name: me.name, addr: me.addr, inc: me.incarnation, ...(me.meta ? { meta: me.meta } : {}) });
  }
}

export const memberKey = (name: string) => `m:${name}`;

/** Address checks in flight at most: each costs a ping, and only a key holder can ask for many. */
const MAX_PENDING_CHECKS = 32;

export function isLive(s: { state: MemberState }): boolean {
  return s.state === "alive" || s.state === "suspect";
}

export function toMember(s: NodeState): Member {
  // No conditional spread: this runs for every member on every members() call, and an
  // object spread is several times slower than a property store.
  const m: Member = { name: s.name, addr: s.addr, state: s.state, incarnation: s.incarnation, lastSeen: s.lastSeen };
  if (s.meta) m.meta = s.meta;
  return m;
}

/** Equal bytes; an absent array equals an empty one. */
export function sameBytes(a?: Uint8Array, b?: Uint8Array): boolean {
  if (!a || !b) return !a === !b || (a?.length ?? 0) === (b?.length ?? 0);
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
