/**
 * One gossip node (memberlist.go): wires membership, failure detection (prober.ts),
 * dissemination (the broadcast queue, piggybacked on every packet plus gossip rounds)
 * and push-pull (push-pull.ts) over a Transport, and implements join/leave and user
 * broadcasts. All time comes from the injected Clock; packet handling is synchronous,
 * so a simulation on a FakeClock is deterministic. Nothing a peer sends can throw out
 * of a handler: bad input is dropped and counted.
 *
 * Longer than most files on purpose: the send path (packet budget, compound packets into
 * one scratch buffer, relay limits) and the receive path (duplicate filter, user-message
 * dedupe, dispatch) share this node's state. Every part with state of its own has its own
 * file: membership, prober, push-pull, streams, broadcast queue, security, anti-replay.
 */
import { Awareness } from "./awareness.ts";
import { BroadcastQueue } from "./broadcast-queue.ts";
import { COMPOUND_HEADER, compound, decodeMessageAt, encode, leadingTag, packetBounds, userIdentityEnd } from "./codec.ts";
import { MAX_META, MAX_MSGS_PER_PACKET, type Message, T, type UserMsg } from "./messages.ts";
import { isGossipAddr } from "./addr.ts";
import { hash53 } from "../wire/hash.ts";
import { RecentHashes } from "./recent-hashes.ts";
import { sharedCopy } from "./shared-copies.ts";
import { type GossipConfig, pushPullScale, retransmitLimit } from "./config.ts";
import { Membership, isLive, toMember } from "./membership.ts";
import { type Random, seededRandom } from "./prng.ts";
import { Prober, type ReplyBudget } from "./prober.ts";
import { PushPull } from "./push-pull.ts";
import { Runtime, errText } from "./runtime.ts";
import { AntiReplay } from "./anti-replay.ts";
import { Opened, PACKET, Sealer } from "./security.ts";
import { Streams } from "./streams.ts";
import type { Transport } from "./transport.ts";
import type { Gossip, GossipDeps, GossipMetrics, Keyring, Member } from "./types.ts";

export interface CreateGossipOptions {
  /** Unique node name (≤ 128 chars). */
  name: string;
  /**
   * "ip:port" peers use to reach us, and the address our packets come from (receivers
   * drop a packet whose sealed sender is not its source): the transport's local address.
   */
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
  rebind(transport: Transport): Promise<void>;
  setKeyring(keyring: Keyring | null): void;
  /** Changes our advertised meta (new incarnation, gossiped). */
  updateMeta(meta: Uint8Array | undefined): void;
  /** Local health score, 0 = healthy (awareness). */
  health(): number;
  /** Broadcasts still queued for retransmission. */
  queuedBroadcasts(): number;
}

const USER_SEEN_MAX = 65_536;
/** Broadcast copies remembered for dropping undecoded: a join storm's worth of news is a few thousand. */
const RECENT_HASHES = 4096;
/** Queued broadcasts beyond which relays use the relay limit (about four full packets). */
const STORM_BACKLOG = 64;

export class GossipImpl implements GossipNode {
  private readonly o: CreateGossipOptions;
  private readonly rt: Runtime;
  private readonly m: Required<GossipMetrics>;
  private readonly sealer: Sealer;
  private readonly antiReplay: AntiReplay;
  /** What open() learned about the packet being handled (reused: packets are handled one at a time). */
  private readonly opened = new Opened();
  /** The packet being handled: its size, and what it may still make us send in reply (made on first use). */
  private packetSize = 0;
  private budget: ReplyBudget | undefined;
  private readonly queue: BroadcastQueue;
  private readonly awareness: Awareness;
  private readonly rnd: Random;
  private readonly members_: Membership;
  private readonly streams: Streams;
  private readonly prober: Prober;
  private readonly pushPull_: PushPull;
  /** Highest version of each user broadcast seen, by `u:${origin}\0${key}` (also its broadcast queue key), oldest first (LRU cap). */
  private readonly userSeen = new Map<string, number>();
  private readonly recent = new RecentHashes(RECENT_HASHES);
  /** members_.removals() when `recent` was last valid (a forgotten member's alive is news again). */
  private recentRemovals = 0;
  /** The queue held a backlog (relays at the relay limit) since the last catch-up push-pull. */
  private hadBacklog = false;
  private userSeq = 0;
  private started = false;
  private readonly packetScratch: Uint8Array;

  constructor(o: CreateGossipOptions) {
    if (!o.name || o.name.length > 128) throw new RangeError(`gossip name: 1..128 characters, got ${JSON.stringify(o.name)}`);
    if (o.meta && o.meta.length > MAX_META) throw new RangeError(`gossip meta: at most ${MAX_META} bytes, got ${o.meta.length}`);
    if (!isGossipAddr(o.advertiseAddr)) throw new RangeError(`gossip advertiseAddr: expected "ip:port" or "[ipv6]:port", got ${JSON.stringify(o.advertiseAddr)}`);
    this.o = { ...o }; // rebind() changes transport and advertiseAddr
    const { config, deps } = o;
    this.rt = new Runtime(deps.clock, deps.logger.child("gossip"));
    this.m = this.rt.metrics;
    this.sealer = new Sealer({ keyring: deps.keyring, clusterName: deps.clusterName, addr: o.advertiseAddr, clock: deps.clock, legacyWire: config.legacyWire });
    this.antiReplay = new AntiReplay(this.rt, config.maxClockSkewMs, config.replayCacheMax);
    this.packetScratch = new Uint8Array(config.udpBufferSize);
    this.queue = new BroadcastQueue(config.broadcastQueueMax);
    this.awareness = new Awareness(config.awarenessMaxMultiplier);
    this.rnd = seededRandom(o.seed ?? crypto.getRandomValues(new Uint32Array(1))[0]!);
    this.members_ = new Membership({
      name: o.name,
      addr: o.advertiseAddr,
      ...(o.meta ? { meta: o.meta } : {}),
      clock: deps.clock,
      config,
      awareness: this.awareness,
      rnd: this.rnd,
      logger: this.rt.log,
      ...(deps.listener ? { listener: deps.listener } : {}),
      broadcast: (key, msg, onDone, wire) => this.queue.enqueue(key, wire ? sharedCopy(wire) : encode(msg), onDone, this.isRelay(msg)),
      checkAddress: (name, addr, timeoutMs, done) => this.prober.checkAddress(name, addr, timeoutMs, done),
    });
    this.streams = new Streams(this.rt, o.transport, this.sealer, config.maxStreamBytes, this.antiReplay);
    const parts = { name: o.name, config, rt: this.rt, members: this.members_, streams: this.streams };
    this.prober = new Prober({ ...parts, awareness: this.awareness, send: (addr, msgs) => this.send(addr, msgs), reply: (addr, msgs, to) => this.send(addr, msgs, to) });
    this.pushPull_ = new PushPull({ ...parts, delegate: deps.delegate });
  }

  // ---- lifecycle -------------------------------------------------------------------

  async start(): Promise<void> {
    if (this.started || this.rt.stopped) return;
    this.started = true;
    const { transport, config: c } = this.o;
    this.listen(transport);
    // Random first offsets so nodes started together do not probe in lockstep.
    const jitter = this.rnd;
    this.rt.loop(() => this.awareness.scale(c.probeIntervalMs), () => this.prober.probe(), jitter() * c.probeIntervalMs);
    this.rt.loop(() => c.gossipIntervalMs, () => this.gossipRound(), jitter() * c.gossipIntervalMs);
    if (c.pushPullIntervalMs > 0) {
      this.rt.loop(() => pushPullScale(c.pushPullIntervalMs, this.members_.liveCount()), () => this.pushPull_.periodic(), jitter() * c.pushPullIntervalMs);
    }
    if (c.reconnectIntervalMs > 0) this.rt.loop(() => c.reconnectIntervalMs, () => this.pushPull_.reconnect(), jitter() * c.reconnectIntervalMs);
    this.rt.log.debug("gossip started", { name: this.o.name, addr: this.o.advertiseAddr });
  }

  private listen(transport: Transport): void {
    transport.onPacket((data, from) => this.onPacket(data, from));
    transport.onStream((req, from) => this.onStream(req, from), { maxBytes: this.o.config.maxStreamBytes });
  }

  async join(seeds: string[], signal?: AbortSignal): Promise<number> {
    await this.start();
    const self = new Set([this.o.advertiseAddr, this.o.transport.localAddr()]);
    const targets = [...new Set(seeds)].filter((s) => !self.has(s));
    if (targets.length === 0) return 0;
    let delay = this.o.config.joinRetryMinMs;
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted || this.rt.stopped) return 0;
      const { ok, errors } = await this.joinRound(targets);
      if (ok > 0) {
        this.rt.log.info("joined cluster", { answered: ok, seeds: targets.length, members: this.members_.liveCount() });
        return ok;
      }
      this.rt.log.warn("join: no seed answered, retrying", { attempt, retryInMs: delay, errors: errors.join("; ") });
      if (!(await this.rt.sleep(delay, signal))) return 0;
      delay = Math.min(delay * 2, this.o.config.joinRetryMaxMs);
    }
  }

  /**
   * Push-pulls with every seed at once. Settles when all have answered or failed, or one
   * probe interval after the first answer: a black-holed seed must not hold up a join
   * that already succeeded (its exchange still completes, or fails, in the background).
   */
  private joinRound(targets: string[]): Promise<{ ok: number; errors: string[] }> {
    return new Promise((resolve) => {
      let ok = 0;
      let pending = targets.length;
      let done = false;
      const errors: string[] = [];
      const finish = () => {
        if (done) return;
        done = true;
        resolve({ ok, errors });
      };
      for (const s of targets) {
        this.pushPull_.exchange(s, true).then(
          () => {
            if (++ok === 1 && !done) this.rt.after(this.o.config.probeIntervalMs, finish);
          },
          (err) => void errors.push(errText(err)),
        ).finally(() => {
          if (--pending === 0) finish();
        });
      }
    });
  }

  async leave(timeoutMs: number): Promise<void> {
    if (this.rt.stopped) return;
    const spread = new Promise<void>((resolve) => this.members_.leave(resolve));
    const others = this.members_.randomMembers(1, isLive).length > 0;
    if (this.started && others) {
      this.gossipRound();
      await Promise.race([spread, this.rt.sleep(timeoutMs)]);
    }
    await this.shutdown();
  }

  async shutdown(): Promise<void> {
    if (this.rt.stopped) return;
    this.rt.stop();
    this.prober.clear();
    this.members_.stop();
    this.queue.clear();
    await this.o.transport.close();
  }

  // ---- queries ---------------------------------------------------------------------

  members(): Member[] {
    const now = this.o.deps.clock.now();
    const out: Member[] = [];
    for (const s of this.members_.all()) {
      const m = toMember(s);
      if (s.name === this.o.name) m.lastSeen = now;
      out.push(m);
    }
    return out;
  }

  member(name: string): Member | undefined {
    const s = this.members_.get(name);
    if (!s) return undefined;
    const m = toMember(s);
    if (name === this.o.name) m.lastSeen = this.o.deps.clock.now();
    return m;
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

  /**
   * Moves this node to `transport` (bound to the node's new address): from now on we
   * send from it and seal its address into every message, and members learn the new
   * address from a new incarnation of our alive message (membership.ts, moved()). The
   * old transport is closed.
   */
  async rebind(transport: Transport): Promise<void> {
    const old = this.o.transport;
    if (transport === old) return;
    const addr = transport.localAddr();
    if (!isGossipAddr(addr)) throw new RangeError(`gossip rebind: expected "ip:port" or "[ipv6]:port", got ${JSON.stringify(addr)}`);
    const from = this.o.advertiseAddr;
    this.o.transport = transport;
    this.o.advertiseAddr = addr;
    this.sealer.setAddr(addr);
    this.streams.setTransport(transport);
    if (this.started && !this.rt.stopped) this.listen(transport);
    this.members_.moveSelf(addr);
    this.rt.log.info("gossip moved to a new address", { from, to: addr, incarnation: this.members_.self().incarnation });
    await old.close();
  }

  /** Seals with the new keyring's primary key and opens with all of its keys from now on. */
  setKeyring(keyring: Keyring | null): void {
    this.sealer.setKeyring(keyring);
  }

  updateMeta(meta: Uint8Array | undefined): void {
    if (meta && meta.length > MAX_META) throw new RangeError(`gossip meta: at most ${MAX_META} bytes, got ${meta.length}`);
    this.members_.updateMeta(meta);
  }

  async pushPull(memberName: string): Promise<void> {
    if (memberName === this.o.name) return;
    const st = this.members_.get(memberName);
    if (!st) throw new Error(`push-pull with ${memberName}: unknown member`);
    await this.pushPull_.sync(st.addr);
  }

  // ---- user broadcasts ---------------------------------------------------------------

  broadcast(key: string, payload: Uint8Array): void {
    // Clock-based versions survive restarts: a restarted node's news is newer.
    this.userSeq = Math.max(this.userSeq + 1, Math.floor(this.o.deps.clock.now()));
    const msg: UserMsg = { t: T.user, origin: this.o.name, key, seq: this.userSeq, payload };
    const bytes = encode(msg);
    const max = this.packetBudget();
    if (bytes.length > max) throw new RangeError(`gossip broadcast ${JSON.stringify(key)}: ${bytes.length} bytes encoded exceeds the ${max}-byte packet budget`);
    const id = `u:${this.o.name}\0${key}`;
    this.rememberUser(id, this.userSeq);
    this.queue.enqueue(id, bytes);
  }

  /** `wire`: the message's bytes as received (a view into the packet), relayed as they are (no re-encode). */
  private onUser(m: UserMsg, wire: Uint8Array): void {
    // Echoes of our own broadcasts stop here by seq (ours only grow). A newer
    // message under our name is another machine using it (a clash or a clone): it must be
    // delivered, or the lease layer never learns that its name was taken over.
    if (m.origin === this.o.name && m.seq <= this.userSeq) return;
    const id = `u:${m.origin}\0${m.key}`;
    const seen = this.userSeen.get(id);
    if (seen !== undefined && m.seq <= seen) return;
    this.rememberUser(id, m.seq, seen !== undefined);
    // Re-gossip each new broadcast once, so it spreads epidemically, not only from its origin.
    this.queue.enqueue(id, sharedCopy(wire), undefined, true);
    try {
      this.o.deps.delegate.notifyMessage(m.payload, m.origin);
    } catch (err) {
      this.rt.logLimited("delegate", "delegate notifyMessage threw", { err: errText(err) });
    }
  }

  /** `known`: id is in userSeen (moved to the newest end); false saves a delete that would miss. */
  private rememberUser(id: string, seq: number, known = true): void {
    if (known) this.userSeen.delete(id);
    this.userSeen.set(id, seq);
    if (this.userSeen.size > USER_SEEN_MAX) this.userSeen.delete(this.userSeen.keys().next().value!);
  }

  // ---- packets -----------------------------------------------------------------------

  /** Room for messages in a packet of our own (not a reply). */
  private packetBudget(): number {
    return this.o.config.udpBufferSize - this.sealer.overhead(PACKET) - COMPOUND_HEADER;
  }

  /**
   * Sends `primary` messages to `addr` with as many queued broadcasts as still fit. A
   * reply (`to`) is sealed in the request's format and at most `to.left` bytes, which it
   * then takes from `to`: broadcasts only fill what the request allows, and a reply that
   * does not fit at all is not sent.
   */
  private send(addr: string, primary: Message[], to?: ReplyBudget): void {
    if (this.rt.stopped) return;
    const parts = primary.map(encode);
    let budget = to ? Math.min(this.o.config.udpBufferSize, to.left) - this.sealer.overhead(PACKET, to) - COMPOUND_HEADER : this.packetBudget();
    for (const p of parts) budget -= p.length;
    if (budget < 0) {
      this.rt.logLimited("reply-size", "reply not sent: larger than the request that asked for it", { to: addr, left: to?.left });
      return;
    }
    const [limit, relayLimit] = this.limits();
    parts.push(...this.queue.take(budget, limit, MAX_MSGS_PER_PACKET - parts.length, 0, relayLimit));
    const sent = this.sendParts(addr, parts, to);
    if (to) to.left -= sent;
  }

  /** Seals and sends one packet; its size. */
  private sendParts(addr: string, parts: Uint8Array[], to?: ReplyBudget): number {
    if (parts.length === 0) return 0;
    // seal() copies the plaintext into its output, so one scratch buffer serves every packet.
    const data = this.sealer.seal(compound(parts, this.packetScratch), PACKET, to);
    this.m.packetsOut++;
    this.m.bytesOut += data.length;
    this.m.messagesOut += parts.length;
    this.o.transport.sendPacket(addr, data);
    return data.length;
  }

  /**
   * Retransmit limits now: for broadcasts we originate, and for news we relay. Relays get
   * the smaller relayRetransmitMult only while the queue holds a backlog (a join storm):
   * then every node re-sending everything the full number of times is what keeps the
   * queues full; otherwise (small clusters, lossy links) relays keep the full limit.
   */
  private limits(): [number, number] {
    const n = this.members_.liveCount();
    const limit = retransmitLimit(this.o.config.retransmitMult, n);
    return [limit, this.queue.size() > STORM_BACKLOG ? retransmitLimit(this.o.config.relayRetransmitMult, n) : limit];
  }

  /** News about another node that another node started (we only pass it on). */
  private isRelay(msg: Message): boolean {
    if (msg.t === T.alive) return msg.name !== this.o.name;
    if (msg.t === T.suspect || msg.t === T.dead) return msg.from !== this.o.name;
    return false;
  }

  private gossipRound(): void {
    const { config: c } = this.o;
    const queued = this.queue.size();
    if (queued > STORM_BACKLOG) this.hadBacklog = true;
    else if (queued === 0 && this.hadBacklog) {
      // The backlog has drained. Relays ran at the smaller relay limit meanwhile, so
      // repair what they missed with one full-state exchange now, not at the next
      // periodic push-pull (minutes away in a large cluster).
      this.hadBacklog = false;
      this.rt.log.debug("broadcast backlog drained: catch-up push-pull");
      this.pushPull_.periodic();
    }
    if (queued === 0) return; // nothing to gossip: skip picking targets
    const [limit, relayLimit] = this.limits();
    for (const target of this.members_.gossipTargets(c.gossipNodes)) {
      // A backlog (a join storm) goes out in up to gossipBurstPackets packets per target,
      // each broadcast at most once per target and round.
      const packets = this.queue.takePackets(c.gossipBurstPackets, this.packetBudget(), limit, MAX_MSGS_PER_PACKET, 0, relayLimit);
      if (packets.length === 0) return;
      for (const parts of packets) this.sendParts(target.addr, parts);
    }
  }

  private onPacket(data: Uint8Array, from: string): void {
    if (this.rt.stopped) return;
    this.m.packetsIn++;
    this.m.bytesIn += data.length;
    if (data.length > this.o.config.udpBufferSize) {
      this.m.decodeFailures++;
      this.rt.logLimited("oversize", "dropped oversized packet", { from, bytes: data.length });
      return;
    }
    const plain = this.sealer.open(data, PACKET, this.opened);
    if (!plain) {
      this.m.decryptFailures++;
      this.rt.logLimited("decrypt", "dropped packet that failed to decrypt (wrong key or cluster name?)", { from, failures: this.m.decryptFailures });
      return;
    }
    // A replay, a stale packet or a copy sent from elsewhere stops here: no reply, no state.
    if (!this.antiReplay.packet(this.opened, from)) return;
    let bounds: number[];
    try {
      bounds = packetBounds(plain);
    } catch (err) {
      this.m.decodeFailures++;
      this.rt.logLimited("decode", "dropped undecodable packet", { from, err: errText(err) });
      return;
    }
    if (this.members_.removals() !== this.recentRemovals) {
      this.recent.clear();
      this.recentRemovals = this.members_.removals();
    }
    this.packetSize = data.length;
    this.budget = undefined;
    let invalid = 0;
    for (let i = 0; i + 1 < bounds.length; i++) {
      const start = bounds[i]!;
      const end = bounds[i + 1]!;
      this.m.messagesIn++;
      // A copy of a broadcast we already handled (an alive with the same bytes, a user
      // message with the same origin, key and seq): drop it undecoded.
      const tag = leadingTag(plain, start, end);
      const hash = tag === T.user ? hash53(plain, start, userIdentityEnd(plain, start, end)) : tag === T.alive ? hash53(plain, start, end) : -1;
      if (hash >= 0 && this.recent.has(hash)) {
        this.m.duplicatesSkipped++;
        continue;
      }
      const msg = decodeMessageAt(plain, start, end);
      if (!msg) {
        invalid++;
        continue;
      }
      try {
        this.handle(msg, from, plain.subarray(start, end));
      } catch (err) {
        this.rt.logLimited("handler", "message handler failed", { from, type: msg.t, err: errText(err) });
        continue;
      }
      if (hash >= 0 && msg.t === tag && this.covered(msg)) this.recent.add(hash);
    }
    if (invalid > 0) {
      this.m.decodeFailures += invalid;
      this.rt.logLimited("decode", "dropped malformed messages", { from, count: invalid });
    }
  }

  /**
   * True if handling `msg` again would change nothing, now and later: then its copies may
   * be dropped undecoded. A user broadcast is remembered by (origin, key, seq) once
   * handled; an alive message once the member is known at its address at that incarnation
   * or newer (an alive the member table had to turn away may be accepted later).
   */
  private covered(msg: Message): boolean {
    if (msg.t === T.user) return true;
    if (msg.t === T.alive) return this.members_.covers(msg);
    return false;
  }

  private handle(msg: Message, from: string, wire: Uint8Array): void {
    switch (msg.t) {
      case T.ping:
        return this.prober.onPing(msg, from, this.replyBudget());
      case T.indirect:
        return this.prober.onIndirect(msg, from, this.replyBudget());
      case T.ack:
        return this.prober.onAck(msg.seq, from);
      case T.nack:
        return this.prober.onNack(msg.seq);
      case T.alive:
        return this.members_.aliveNode(msg, wire, from);
      case T.suspect:
        return this.members_.suspectNode(msg);
      case T.dead:
        return this.members_.deadNode(msg);
      case T.user:
        return this.onUser(msg, wire);
    }
  }

  /**
   * The reply budget of the packet being handled: every reply it causes shares its size,
   * plus the bytes by which our sealed address is longer than the sender's. Each sealed
   * message carries its sender's address; two IPv4 gossip addresses differ by at most 12
   * bytes, which a ping's own fields outweigh, but IPv6 ones by up to 40 (a node at
   * [2001:db8::1]:7946 pinging one at a full-length address), and without the excess such
   * a node would never get its acks. The excess is bounded by the address format, so a
   * reply still never outgrows its request by more than a constant.
   */
  private replyBudget(): ReplyBudget {
    const legacy = this.opened.legacy;
    return (this.budget ??= { left: this.packetSize + this.sealer.addressExcess(this.opened.senderLength, { legacy }), legacy });
  }

  /** A stream carries either a push-pull or a TCP fallback ping. */
  private async onStream(req: Uint8Array, from: string): Promise<Uint8Array> {
    if (this.rt.stopped) throw new Error("gossip stopped");
    const opened = new Opened();
    const plain = this.streams.openRequest(req, from, opened);
    // A ping is `{t: 1, …}` as encode() writes it; anything else must be a push-pull.
    if (leadingTag(plain, 0, plain.length) === T.ping) return this.prober.answerStreamPing(this.streams.decode(plain, from), from, opened);
    return this.pushPull_.serve(plain, from, opened);
  }
}
