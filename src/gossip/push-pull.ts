/**
 * Full-state anti-entropy over streams (memberlist net.go pushPullNode/mergeState):
 * both sides send their member list and the delegate's localState(), both merge. Also
 * the periodic exchange with a random member and the reconnect attempts to failed
 * members that heal partitions after both sides reaped each other.
 */
import { createHash } from "node:crypto";
import { type AliveMsg, type PushPullMember, type PushPullMsg, STATE_CODE, STATE_NAME, T, encode, pushPullChecker } from "./codec.ts";
import { type GossipConfig } from "./config.ts";
import { type Membership, sameBytes } from "./membership.ts";
import { type Runtime, errText } from "./runtime.ts";
import type { Streams } from "./streams.ts";
import type { GossipDelegate } from "./types.ts";

export interface PushPullOptions {
  name: string;
  config: GossipConfig;
  rt: Runtime;
  members: Membership;
  streams: Streams;
  delegate: GossipDelegate;
}

export class PushPull {
  private readonly schema;
  private memberHash: { rev: number; hash: Uint8Array } | undefined;

  constructor(private readonly o: PushPullOptions) {
    this.schema = pushPullChecker(o.config.maxMembers, o.config.maxStreamBytes);
  }

  /** One exchange with `addr`; resolves to the remote's name once both sides merged. */
  async exchange(addr: string, join: boolean): Promise<string> {
    const msg = await this.o.streams.request("push-pull", addr, this.localState(join), this.schema, this.o.config.streamTimeoutMs);
    this.merge(msg);
    return msg.from;
  }

  /** Serves an incoming push-pull (already opened): our state back, then merge theirs. */
  serve(v: unknown, from: string): Uint8Array {
    const msg = this.o.streams.check(this.schema, v, from);
    // A digest probe: a full request always lists at least its sender. Answer with our
    // digest only; the prober follows with a full exchange if they differ.
    if (msg.members.length === 0 && msg.digest) {
      this.o.members.markSeen(msg.from);
      return this.o.streams.seal(this.probeMsg());
    }
    // Reply with our view before merging theirs, as memberlist does.
    const reply = this.o.streams.seal(this.localState(msg.join));
    this.merge(msg);
    return reply;
  }

  periodic(): void {
    const [peer] = this.o.members.randomMembers(1, (s) => s.state === "alive");
    if (!peer) return;
    this.sync(peer.addr).catch((err) => this.o.rt.logLimited("pushpull", "periodic push-pull failed", { peer: peer.name, err: errText(err) }));
  }

  /**
   * A non-join exchange with `addr`: digest-first when the delegate offers a digest (equal
   * digests mean the exchange would change nothing on either side), else a full exchange.
   */
  async sync(addr: string): Promise<void> {
    if (this.o.delegate.stateDigest) await this.digestFirst(addr);
    else await this.exchange(addr, false);
  }

  /**
   * Compares digests first and exchanges full state only if they differ, so a settled
   * cluster's periodic anti-entropy costs two hashes instead of two whole tables.
   */
  private async digestFirst(addr: string): Promise<void> {
    const probe = this.probeMsg();
    const reply = await this.o.streams.request("push-pull", addr, probe, this.schema, this.o.config.streamTimeoutMs);
    if (reply.members.length === 0 && reply.digest && sameBytes(reply.digest, probe.digest!)) {
      this.o.members.markSeen(reply.from);
      return;
    }
    // Different, or a peer that does not know probes and answered with its full state.
    await this.exchange(addr, false);
  }

  private probeMsg(): PushPullMsg {
    return { join: false, from: this.o.name, members: [], user: EMPTY, digest: this.digest() };
  }

  /** SHA-256 over the member list's hash and the delegate's state digest. */
  digest(): Uint8Array {
    const h = createHash("sha256");
    h.update(this.memberDigest());
    h.update(this.o.delegate.stateDigest?.() ?? EMPTY);
    return new Uint8Array(h.digest());
  }

  /**
   * SHA-256 over the member list sorted by name; cached until membership changes, since a
   * join storm asks for it in every settle and catch-up exchange.
   */
  private memberDigest(): Uint8Array {
    const rev = this.o.members.revision();
    if (this.memberHash?.rev === rev) return this.memberHash.hash;
    const members = this.o.members.all().map((s) => [s.name, s.addr, s.incarnation, STATE_CODE[s.state], s.meta ?? null] as const);
    members.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const hash = new Uint8Array(createHash("sha256").update(encode(members)).digest());
    this.memberHash = { rev, hash };
    return hash;
  }

  /**
   * Tries to reach one failed member (serf's reconnect): after a partition both sides
   * may hold each other dead — or have reaped each other — and nothing else would ever
   * make them talk again. If the first exchange revealed a disagreement (it told us we
   * were dead, or we still hold it dead at its incarnation), both sides have refuted
   * by now and a second exchange carries the new incarnations.
   */
  reconnect(): void {
    const { members, rt } = this.o;
    const cand = members.reconnectCandidate();
    if (!cand) return;
    const incBefore = members.self().incarnation;
    this.exchange(cand.addr, false)
      .then((remote) => {
        const st = members.get(remote);
        if (members.self().incarnation !== incBefore || !st || st.state !== "alive") return this.exchange(cand.addr, false);
      })
      .then(
        () => rt.log.debug("reconnected to failed member", { member: cand.name }),
        (err) => rt.logLimited("reconnect", "reconnect to failed member failed", { member: cand.name, err: errText(err) }),
      );
  }

  private localState(join: boolean): PushPullMsg {
    const members = this.o.members.all().map((s) => {
      const m: PushPullMember = { name: s.name, addr: s.addr, inc: s.incarnation, state: STATE_CODE[s.state] };
      if (s.meta) m.meta = s.meta; // last, so the encoding keeps the schema's key order
      return m;
    });
    return { join, from: this.o.name, members, user: this.o.delegate.localState(join) };
  }

  private merge(msg: PushPullMsg): void {
    const { members, rt } = this.o;
    for (const r of msg.members) {
      try {
        const state = STATE_NAME[r.state]!;
        if (state === "alive") {
          const a: AliveMsg = { t: T.alive, name: r.name, addr: r.addr, inc: r.inc };
          if (r.meta) a.meta = r.meta;
          members.aliveNode(a);
        }
        else if (state === "left") members.deadNode({ t: T.dead, name: r.name, inc: r.inc, from: r.name });
        // A remote "dead" is only a suspicion here: we give the member a chance to refute.
        else members.suspectNode({ t: T.suspect, name: r.name, inc: r.inc, from: msg.from });
      } catch (err) {
        rt.logLimited("handler", "merging member failed", { member: r.name, err: errText(err) });
      }
    }
    members.markSeen(msg.from);
    try {
      this.o.delegate.mergeRemoteState(msg.user, msg.join, msg.from);
    } catch (err) {
      rt.logLimited("delegate", "delegate mergeRemoteState threw", { from: msg.from, err: errText(err) });
    }
  }
}

const EMPTY = new Uint8Array(0);
