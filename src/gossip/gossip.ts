/**
 * One gossip node: SWIM failure detection (probe → indirect probes → suspicion),
 * piggybacked dissemination of membership and user broadcasts, and TCP push-pull
 * anti-entropy, wired over a Transport (memberlist.go + net.go + state.go's loops).
 * All time comes from the injected Clock; packet handling is synchronous, so a
 * simulation on a FakeClock is deterministic. Nothing a peer sends can throw out of a
 * handler: bad input is dropped and counted.
 */
import type { TimerHandle } from "../clock.ts";
import type { Logger } from "../log.ts";
import { Awareness } from "./awareness.ts";
import { BroadcastQueue } from "./broadcast-queue.ts";
import {
  COMPOUND_HEADER, MAX_MSGS_PER_PACKET, MAX_META, type IndirectMsg, type Message, type PingMsg, type PushPullMsg, STATE_CODE, STATE_NAME,
  T, type UserMsg, compound, decode, decodePacket, encode, pushPullSchema, streamAckSchema, streamPingSchema,
} from "./codec.ts";
import type { z } from "zod";
import { type GossipConfig, pushPullScale, retransmitLimit } from "./config.ts";
import { Membership, isLive, memberKey, toMember } from "./membership.ts";
import { type Random, seededRandom } from "./prng.ts";
import { Sealer } from "./security.ts";
import type { Transport } from "./transport.ts";
import type { Gossip, GossipDeps, GossipMetrics, Member } from "./types.ts";

export interface CreateGossipOptions {
  /** Unique node name (≤ 128 chars). */
  name: string;
  /** "ip:port" peers use to reach us; usually the transport's local address. */
  advertiseAddr: string;
  /** Small opaque metadata advertised with our alive messages (≤ 256 bytes). */
  meta?: Uint8Array;
  transport: Transport;
  config: GossipConfig;
  deps: GossipDeps;
  /** PRNG seed for peer selection and shuffles; random by default. Simulations pass one. */
  seed?: number;
}

/** The Gossip surface plus a few extras the agent and tests use. */
export interface GossipNode extends Gossip {
  /** Changes our advertised meta (new incarnation, gossiped). */
  updateMeta(meta: Uint8Array | undefined): void;
  /** Local health score, 0 = healthy (awareness). */
  health(): number;
  /** Broadcasts still queued for retransmission. */
  queuedBroadcasts(): number;
}

const USER_SEEN_MAX = 65_536;
const LOG_EVERY_MS = 10_000;

interface AckWaiter {
  onAck(): void;
  onNack(): void;
}

export class GossipImpl implements GossipNode {
  private readonly o: CreateGossipOptions;
  private readonly log: Logger;
  private readonly sealer: Sealer;
  private readonly queue: BroadcastQueue;
  private readonly awareness: Awareness;
  private readonly members_: Membership;
  private readonly rnd: Random;
  private readonly m: GossipMetrics = { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, decryptFailures: 0, decodeFailures: 0 };
  private readonly acks = new Map<number, AckWaiter>();
  private readonly timers = new Set<TimerHandle>();
  /** Things to end on shutdown: in-flight streams' aborts and pending sleeps. */
  private readonly onStop = new Set<() => void>();
  private readonly userSeen = new Map<string, number>();
  private readonly lastLog = new Map<string, number>();
  private readonly ppSchema;
  private seq = 0;
  private userSeq = 0;
  private started = false;
  private stopped = false;

  constructor(o: CreateGossipOptions) {
    if (!o.name || o.name.length > 128) throw new RangeError(`gossip name: 1..128 characters, got ${JSON.stringify(o.name)}`);
    if (o.meta && o.meta.length > MAX_META) throw new RangeError(`gossip meta: at most ${MAX_META} bytes, got ${o.meta.length}`);
    if (!/^.+:\d+$/.test(o.advertiseAddr)) throw new RangeError(`gossip advertiseAddr: expected "ip:port", got ${JSON.stringify(o.advertiseAddr)}`);
    this.o = o;
    this.log = o.deps.logger.child("gossip");
    this.sealer = new Sealer(o.deps.keyring, o.deps.clusterName);
    this.queue = new BroadcastQueue(o.config.broadcastQueueMax);
    this.awareness = new Awareness(o.config.awarenessMaxMultiplier);
    this.rnd = seededRandom(o.seed ?? crypto.getRandomValues(new Uint32Array(1))[0]!);
    this.ppSchema = pushPullSchema(o.config.maxMembers, o.config.maxStreamBytes);
    this.members_ = new Membership({
      name: o.name,
      addr: o.advertiseAddr,
      ...(o.meta ? { meta: o.meta } : {}),
      clock: o.deps.clock,
      config: o.config,
      awareness: this.awareness,
      rnd: this.rnd,
      logger: this.log,
      ...(o.deps.listener ? { listener: o.deps.listener } : {}),
      broadcast: (key, msg, onDone) => this.queue.enqueue(key, encode(msg), onDone),
    });
  }

  // ---- lifecycle -------------------------------------------------------------------

  async start(): Promise<void> {
    if (this.started || this.stopped) return;
    this.started = true;
    const { transport, config: c } = this.o;
    transport.onPacket((data, from) => this.onPacket(data, from));
    transport.onStream((req, from) => this.onStream(req, from), { maxBytes: c.maxStreamBytes });
    // Random first offsets so nodes started together do not probe in lockstep.
    this.loop(() => this.awareness.scale(c.probeIntervalMs), () => this.probe(), this.rnd() * c.probeIntervalMs);
    this.loop(() => c.gossipIntervalMs, () => this.gossipRound(), this.rnd() * c.gossipIntervalMs);
    if (c.pushPullIntervalMs > 0) {
      const every = () => pushPullScale(c.pushPullIntervalMs, this.members_.liveCount());
      this.loop(every, () => this.periodicPushPull(), this.rnd() * c.pushPullIntervalMs);
    }
    if (c.reconnectIntervalMs > 0) this.loop(() => c.reconnectIntervalMs, () => this.reconnect(), this.rnd() * c.reconnectIntervalMs);
    this.log.debug("gossip started", { name: this.o.name, addr: this.o.advertiseAddr });
  }

  async join(seeds: string[], signal?: AbortSignal): Promise<number> {
    await this.start();
    const self = new Set([this.o.advertiseAddr, this.o.transport.localAddr()]);
    const targets = [...new Set(seeds)].filter((s) => !self.has(s));
    if (targets.length === 0) return 0;
    let delay = this.o.config.joinRetryMinMs;
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted || this.stopped) return 0;
      const results = await Promise.allSettled(targets.map((s) => this.pushPullAddr(s, true)));
      const ok = results.filter((r) => r.status === "fulfilled").length;
      if (ok > 0) {
        this.log.info("joined cluster", { answered: ok, seeds: targets.length, members: this.members_.liveCount() });
        return ok;
      }
      const reasons = results.map((r, i) => `${targets[i]}: ${r.status === "rejected" ? errText(r.reason) : "ok"}`);
      this.log.warn("join: no seed answered, retrying", { attempt, retryInMs: delay, errors: reasons.join("; ") });
      if (!(await this.sleep(delay, signal))) return 0;
      delay = Math.min(delay * 2, this.o.config.joinRetryMaxMs);
    }
  }

  async leave(timeoutMs: number): Promise<void> {
    if (this.stopped) return;
    const spread = new Promise<void>((resolve) => this.members_.leave(resolve));
    const others = this.members_.randomMembers(1, isLive).length > 0;
    if (this.started && others) {
      this.gossipRound();
      await Promise.race([spread, this.sleep(timeoutMs)]);
    }
    await this.shutdown();
  }

  async shutdown(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) t.cancel();
    this.timers.clear();
    for (const f of [...this.onStop]) f();
    this.onStop.clear();
    this.acks.clear();
    this.members_.stop();
    this.queue.clear();
    await this.o.transport.close();
  }

  // ---- queries ---------------------------------------------------------------------

  members(): Member[] {
    const now = this.o.deps.clock.now();
    return this.members_.all().map((s) => (s.name === this.o.name ? { ...toMember(s), lastSeen: now } : toMember(s)));
  }

  localName(): string {
    return this.o.name;
  }

  metrics(): GossipMetrics {
    return { ...this.m };
  }

  health(): number {
    return this.awareness.health();
  }

  queuedBroadcasts(): number {
    return this.queue.size();
  }

  updateMeta(meta: Uint8Array | undefined): void {
    if (meta && meta.length > MAX_META) throw new RangeError(`gossip meta: at most ${MAX_META} bytes, got ${meta.length}`);
    this.members_.updateMeta(meta);
  }

  // ---- user broadcasts ---------------------------------------------------------------

  broadcast(key: string, payload: Uint8Array): void {
    // Clock-based sequence numbers survive restarts: a restarted node's news is newer.
    this.userSeq = Math.max(this.userSeq + 1, Math.floor(this.o.deps.clock.now()));
    const msg: UserMsg = { t: T.user, origin: this.o.name, key, seq: this.userSeq, payload };
    const bytes = encode(msg);
    const max = this.packetBudget();
    if (bytes.length > max) throw new RangeError(`gossip broadcast ${JSON.stringify(key)}: ${bytes.length} bytes encoded exceeds the ${max}-byte packet budget`);
    this.rememberUser(`${this.o.name}\0${key}`, this.userSeq);
    this.queue.enqueue(userKey(this.o.name, key), bytes);
  }

  private onUser(m: UserMsg): void {
    if (m.origin === this.o.name) return;
    const id = `${m.origin}\0${m.key}`;
    const seen = this.userSeen.get(id);
    if (seen !== undefined && m.seq <= seen) return;
    this.rememberUser(id, m.seq);
    // Re-gossip each new broadcast once, so it spreads epidemically, not only from its origin.
    this.queue.enqueue(userKey(m.origin, m.key), encode(m));
    try {
      this.o.deps.delegate.notifyMessage(m.payload, m.origin);
    } catch (err) {
      this.logLimited("delegate", "delegate notifyMessage threw", { err: errText(err) });
    }
  }

  private rememberUser(id: string, seq: number): void {
    this.userSeen.delete(id);
    this.userSeen.set(id, seq);
    if (this.userSeen.size > USER_SEEN_MAX) this.userSeen.delete(this.userSeen.keys().next().value!);
  }

  // ---- packets -----------------------------------------------------------------------

  private packetBudget(): number {
    return this.o.config.udpBufferSize - this.sealer.overhead() - COMPOUND_HEADER;
  }

  /** Sends `primary` messages to `addr` with as many queued broadcasts as still fit. */
  private send(addr: string, primary: Message[]): void {
    if (this.stopped) return;
    const parts = primary.map(encode);
    let budget = this.packetBudget();
    for (const p of parts) budget -= p.length;
    const limit = retransmitLimit(this.o.config.retransmitMult, this.members_.liveCount());
    parts.push(...this.queue.take(budget, limit, MAX_MSGS_PER_PACKET - parts.length));
    this.sendParts(addr, parts);
  }

  private sendParts(addr: string, parts: Uint8Array[]): void {
    if (parts.length === 0) return;
    const data = this.sealer.seal(compound(parts));
    this.m.packetsOut++;
    this.m.bytesOut += data.length;
    this.m.messagesOut += parts.length;
    this.o.transport.sendPacket(addr, data);
  }

  private onPacket(data: Uint8Array, from: string): void {
    if (this.stopped) return;
    this.m.packetsIn++;
    this.m.bytesIn += data.length;
    if (data.length > this.o.config.udpBufferSize) {
      this.m.decodeFailures++;
      this.logLimited("oversize", "dropped oversized packet", { from, bytes: data.length });
      return;
    }
    const plain = this.sealer.open(data);
    if (!plain) {
      this.m.decryptFailures++;
      this.logLimited("decrypt", "dropped packet that failed to decrypt (wrong key or cluster name?)", { from, failures: this.m.decryptFailures });
      return;
    }
    let msgs: Message[];
    try {
      const r = decodePacket(plain);
      msgs = r.messages;
      if (r.invalid > 0) {
        this.m.decodeFailures += r.invalid;
        this.logLimited("decode", "dropped malformed messages", { from, count: r.invalid });
      }
    } catch (err) {
      this.m.decodeFailures++;
      this.logLimited("decode", "dropped undecodable packet", { from, err: errText(err) });
      return;
    }
    for (const msg of msgs) {
      this.m.messagesIn++;
      try {
        this.handle(msg, from);
      } catch (err) {
        this.logLimited("handler", "message handler failed", { from, type: msg.t, err: errText(err) });
      }
    }
  }

  private handle(msg: Message, from: string): void {
    switch (msg.t) {
      case T.ping:
        return this.onPing(msg, from);
      case T.indirect:
        return this.onIndirect(msg, from);
      case T.ack:
        return this.acks.get(msg.seq)?.onAck();
      case T.nack:
        return this.acks.get(msg.seq)?.onNack();
      case T.alive:
        return this.members_.aliveNode(msg);
      case T.suspect:
        return this.members_.suspectNode(msg);
      case T.dead:
        return this.members_.deadNode(msg);
      case T.user:
        return this.onUser(msg);
    }
  }

  // ---- failure detection -----------------------------------------------------------

  private onPing(msg: PingMsg, from: string): void {
    // A ping meant for a previous owner of this address: stay silent so they look dead.
    if (msg.target !== this.o.name) return;
    this.members_.markSeen(msg.from);
    this.send(from, [{ t: T.ack, seq: msg.seq }]);
  }

  private onIndirect(msg: IndirectMsg, from: string): void {
    const seq = this.nextSeq();
    let answered = false;
    const timer = this.after(this.o.config.probeTimeoutMs, () => {
      this.acks.delete(seq);
      if (!answered) this.send(from, [{ t: T.nack, seq: msg.seq }]);
    });
    this.acks.set(seq, {
      onAck: () => {
        if (answered) return;
        answered = true;
        this.acks.delete(seq);
        this.cancel(timer);
        this.send(from, [{ t: T.ack, seq: msg.seq }]);
      },
      onNack: () => {},
    });
    this.send(msg.targetAddr, [{ t: T.ping, seq, target: msg.target, from: this.o.name }]);
  }

  /** One SWIM probe: direct ping, then indirect pings, then suspicion. */
  private probe(): void {
    const target = this.members_.nextProbeTarget();
    if (!target) return;
    const { config: c } = this.o;
    const seq = this.nextSeq();
    const inc = target.incarnation;
    let acked = false;
    let nacks = 0;
    let expectedNacks = 0;
    const timers: TimerHandle[] = [];
    this.acks.set(seq, {
      onAck: () => {
        if (acked) return;
        acked = true;
        this.acks.delete(seq);
        timers.forEach((t) => this.cancel(t));
        this.awareness.applyDelta(-1);
        this.members_.markSeen(target.name);
      },
      onNack: () => void nacks++,
    });
    this.send(target.addr, [{ t: T.ping, seq, target: target.name, from: this.o.name }]);
    const probeTimeout = this.awareness.scale(c.probeTimeoutMs);
    const probeInterval = this.awareness.scale(c.probeIntervalMs);
    timers.push(
      this.after(probeTimeout, () => {
        const peers = this.members_.randomMembers(c.indirectChecks, (s) => s.state === "alive", target.name);
        expectedNacks = peers.length;
        for (const p of peers) this.send(p.addr, [{ t: T.indirect, seq, target: target.name, targetAddr: target.addr, from: this.o.name }]);
        if (c.tcpFallbackPing) {
          this.tcpPing(target.addr, target.name, seq, probeInterval - probeTimeout).then((ok) => {
            if (!ok || acked) return;
            this.logLimited("tcp-ping", "member answered over TCP but not over UDP: is UDP blocked?", { member: target.name });
            this.acks.get(seq)?.onAck();
          });
        }
      }),
    );
    timers.push(
      this.after(probeInterval, () => {
        this.acks.delete(seq);
        if (acked) return;
        // Peers that could not even send a nack hint that our own network is the problem.
        this.awareness.applyDelta(expectedNacks > 0 ? Math.max(0, expectedNacks - nacks) : 1);
        this.log.debug("probe failed, suspecting member", { member: target.name, nacks, expectedNacks });
        this.members_.suspectNode({ t: T.suspect, name: target.name, inc, from: this.o.name });
      }),
    );
  }

  private gossipRound(): void {
    const { config: c } = this.o;
    const limit = retransmitLimit(c.retransmitMult, this.members_.liveCount());
    for (const target of this.members_.gossipTargets(c.gossipNodes)) {
      const parts = this.queue.take(this.packetBudget(), limit, MAX_MSGS_PER_PACKET);
      if (parts.length === 0) return;
      this.sendParts(target.addr, parts);
    }
  }

  // ---- push-pull ---------------------------------------------------------------------

  async pushPull(memberName: string): Promise<void> {
    if (memberName === this.o.name) return;
    const st = this.members_.get(memberName);
    if (!st) throw new Error(`push-pull with ${memberName}: unknown member`);
    await this.pushPullAddr(st.addr, false);
  }

  private periodicPushPull(): void {
    const [peer] = this.members_.randomMembers(1, (s) => s.state === "alive");
    if (!peer) return;
    this.pushPullAddr(peer.addr, false).catch((err) => this.logLimited("pushpull", "periodic push-pull failed", { peer: peer.name, err: errText(err) }));
  }

  /**
   * Tries to reach one failed member (serf's reconnect): after a partition both sides
   * may hold each other dead — or have reaped each other — and nothing else would ever
   * make them talk again. If the first exchange revealed a disagreement (it told us we
   * were dead, or we still hold it dead at its incarnation), both sides have refuted
   * by now and a second exchange carries the new incarnations.
   */
  private reconnect(): void {
    const cand = this.members_.reconnectCandidate();
    if (!cand) return;
    const incBefore = this.members_.self().incarnation;
    this.pushPullAddr(cand.addr, false)
      .then((remote) => {
        const st = this.members_.get(remote);
        if (this.members_.self().incarnation !== incBefore || !st || st.state !== "alive") return this.pushPullAddr(cand.addr, false);
      })
      .then(
        () => this.log.debug("reconnected to failed member", { member: cand.name }),
        (err) => this.logLimited("reconnect", "reconnect to failed member failed", { member: cand.name, err: errText(err) }),
      );
  }

  private localStateMsg(join: boolean): Uint8Array {
    const members = this.members_.all().map((s) => ({
      name: s.name,
      addr: s.addr,
      inc: s.incarnation,
      state: STATE_CODE[s.state],
      ...(s.meta ? { meta: s.meta } : {}),
    }));
    const user = this.o.deps.delegate.localState(join);
    const msg: PushPullMsg = { join, from: this.o.name, members, user };
    const sealed = this.sealer.seal(encode(msg));
    if (sealed.length > this.o.config.maxStreamBytes) throw new Error(`push-pull state of ${sealed.length} bytes exceeds maxStreamBytes ${this.o.config.maxStreamBytes}`);
    return sealed;
  }

  /** Opens and msgpack-decodes a stream message; counts and throws on failure. */
  private openStream(data: Uint8Array, from: string): unknown {
    this.m.bytesIn += data.length;
    const plain = this.sealer.open(data);
    if (!plain) {
      this.m.decryptFailures++;
      this.logLimited("decrypt", "dropped stream that failed to decrypt (wrong key or cluster name?)", { from });
      throw new Error(`stream from ${from}: message failed to decrypt (wrong key or cluster name?)`);
    }
    try {
      return decode(plain);
    } catch {
      return this.malformed(from);
    }
  }

  /** Validates a decoded stream message; counts and throws on failure. */
  private check<S extends z.ZodType>(schema: S, v: unknown, from: string): z.infer<S> {
    const r = schema.safeParse(v);
    if (!r.success) return this.malformed(from);
    this.m.messagesIn++;
    return r.data;
  }

  private malformed(from: string): never {
    this.m.decodeFailures++;
    this.logLimited("decode", "dropped malformed stream message", { from });
    throw new Error(`stream from ${from}: malformed message`);
  }

  /** Pings over a stream; resolves true on the matching ack, false on anything else. */
  private async tcpPing(addr: string, target: string, seq: number, deadlineMs: number): Promise<boolean> {
    const ac = new AbortController();
    const timer = this.after(deadlineMs, () => ac.abort());
    const stop = () => ac.abort();
    this.onStop.add(stop);
    try {
      const req = this.sealer.seal(encode({ t: T.ping, seq, target, from: this.o.name }));
      this.m.bytesOut += req.length;
      this.m.messagesOut++;
      const reply = await this.o.transport.stream(addr, req, { signal: ac.signal, maxBytes: 1024 });
      return this.check(streamAckSchema, this.openStream(reply, addr), addr).seq === seq;
    } catch {
      return false;
    } finally {
      this.cancel(timer);
      this.onStop.delete(stop);
    }
  }

  private async pushPullAddr(addr: string, join: boolean): Promise<string> {
    if (this.stopped) throw new Error(`push-pull with ${addr}: gossip stopped`);
    const req = this.localStateMsg(join);
    this.m.bytesOut += req.length;
    this.m.messagesOut++;
    const ac = new AbortController();
    const timer = this.after(this.o.config.streamTimeoutMs, () => ac.abort());
    const stop = () => ac.abort();
    this.onStop.add(stop);
    let reply: Uint8Array;
    try {
      reply = await this.o.transport.stream(addr, req, { signal: ac.signal, maxBytes: this.o.config.maxStreamBytes });
    } catch (err) {
      const why = this.stopped ? "gossip stopped" : ac.signal.aborted ? `no reply within ${this.o.config.streamTimeoutMs} ms` : errText(err);
      throw new Error(`push-pull with ${addr}: ${why}`, { cause: err });
    } finally {
      this.cancel(timer);
      this.onStop.delete(stop);
    }
    if (this.stopped) throw new Error(`push-pull with ${addr}: gossip stopped`);
    const msg = this.check(this.ppSchema, this.openStream(reply, addr), addr);
    this.merge(msg);
    return msg.from;
  }

  private async onStream(req: Uint8Array, from: string): Promise<Uint8Array> {
    if (this.stopped) throw new Error("gossip stopped");
    const v = this.openStream(req, from);
    if (typeof v === "object" && v !== null && (v as { t?: unknown }).t === T.ping) {
      const ping = this.check(streamPingSchema, v, from);
      if (ping.target !== this.o.name) throw new Error(`stream ping for ${ping.target}, not us`);
      this.members_.markSeen(ping.from);
      const ack = this.sealer.seal(encode({ t: T.ack, seq: ping.seq }));
      this.m.bytesOut += ack.length;
      this.m.messagesOut++;
      return ack;
    }
    const msg = this.check(this.ppSchema, v, from);
    // Reply with our view before merging theirs, as memberlist does.
    const reply = this.localStateMsg(msg.join);
    this.m.bytesOut += reply.length;
    this.m.messagesOut++;
    this.merge(msg);
    return reply;
  }

  private merge(msg: PushPullMsg): void {
    for (const r of msg.members) {
      try {
        const state = STATE_NAME[r.state]!;
        if (state === "alive") this.members_.aliveNode({ t: T.alive, name: r.name, addr: r.addr, inc: r.inc, ...(r.meta ? { meta: r.meta } : {}) });
        else if (state === "left") this.members_.deadNode({ t: T.dead, name: r.name, inc: r.inc, from: r.name });
        // A remote "dead" is only a suspicion here: we give the member a chance to refute.
        else this.members_.suspectNode({ t: T.suspect, name: r.name, inc: r.inc, from: msg.from });
      } catch (err) {
        this.logLimited("handler", "merging member failed", { member: r.name, err: errText(err) });
      }
    }
    this.members_.markSeen(msg.from);
    try {
      this.o.deps.delegate.mergeRemoteState(msg.user, msg.join, msg.from);
    } catch (err) {
      this.logLimited("delegate", "delegate mergeRemoteState threw", { from: msg.from, err: errText(err) });
    }
  }

  // ---- helpers -----------------------------------------------------------------------

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }

  private after(ms: number, fn: () => void): TimerHandle {
    const h: TimerHandle = this.o.deps.clock.after(ms, () => {
      this.timers.delete(h);
      if (!this.stopped) fn();
    });
    this.timers.add(h);
    return h;
  }

  private cancel(h: TimerHandle): void {
    h.cancel();
    this.timers.delete(h);
  }

  private loop(every: () => number, fn: () => void, firstMs: number): void {
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

  /** Resolves true after `ms` on the clock, false early if `signal` aborts or we stop. */
  private sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.stopped || signal?.aborted) return resolve(false);
      const end = (v: boolean) => {
        this.cancel(t);
        signal?.removeEventListener("abort", onAbort);
        this.onStop.delete(onAbort);
        resolve(v);
      };
      const onAbort = () => end(false);
      const t = this.after(ms, () => end(true));
      signal?.addEventListener("abort", onAbort, { once: true });
      this.onStop.add(onAbort);
    });
  }

  private logLimited(kind: string, msg: string, fields: Record<string, unknown>): void {
    const now = this.o.deps.clock.now();
    const last = this.lastLog.get(kind);
    if (last !== undefined && now - last < LOG_EVERY_MS) return;
    this.lastLog.set(kind, now);
    this.log.debug(msg, fields);
  }
}

const userKey = (origin: string, key: string) => `u:${origin}\0${key}`;

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export { memberKey };
