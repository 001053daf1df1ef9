/**
 * Full-state anti-entropy over streams (memberlist net.go pushPullNode/mergeState):
 * both sides send their member list and the delegate's localState(), both merge. Also
 * the periodic exchange with a random member and the reconnect attempts to failed
 * members that heal partitions after both sides reaped each other.
 */
import { createHash } from "node:crypto";
import { type AliveMsg, type PushPullMsg, STATE_NAME, T } from "./messages.ts";
import { pushPullChecker } from "./message-check.ts";
import { type GossipConfig } from "./config.ts";
import { type Membership, sameBytes } from "./membership.ts";
import { encodePushPull, readPushPull } from "./push-pull-codec.ts";
import { RECORD_HASH_BYTES, xorRecordHash } from "../wire/record-hash.ts";
import { type Runtime, errText } from "./runtime.ts";
import type { Opened } from "./security.ts";
import type { Streams } from "./streams.ts";
import type { GossipDelegate } from "./types.ts";

/** A received push-pull message; `skipped` member entries were identical to ours and left out of `members`. */
type Received = PushPullMsg & { skipped: number };

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
    const msg = await this.o.streams.requestEncoded("push-pull", addr, this.localState(join), (p) => this.read(p, addr), this.o.config.streamTimeoutMs);
    // The reply answered our request on a stream we opened to `addr`: evidence about the member there.
    this.merge(msg, addr);
    return msg.from;
  }

  /**
   * Serves an incoming push-pull (opened into `req`, not yet decoded): our state back,
   * sealed to answer `req`, then merge theirs.
   */
  serve(plain: Uint8Array, from: string, req: Opened): Uint8Array {
    const msg = this.read(plain, from);
    const sender = req.legacy ? undefined : req.sender();
    // A digest probe: a full request always lists at least its sender. Answer with our
    // digest only; the prober follows with a full exchange if they differ.
    if (msg.members.length + msg.skipped === 0 && msg.digest) {
      this.o.members.markSeen(msg.from, sender);
      return this.o.streams.sealReply(this.probeMsg(), req);
    }
    // Reply with our view before merging theirs, as memberlist does.
    const reply = this.o.streams.sealReply(this.localState(msg.join), req);
    this.merge(msg, sender);
    return reply;
  }

  /**
   * Decodes and checks a push-pull message, leaving out the member entries that merging
   * would ignore: byte-identical to ours and not a suspicion (merging a suspect entry
   * confirms our own suspicion of that member, see merge()).
   */
  private read(plain: Uint8Array, from: string): Received {
    const { members, streams, config } = this.o;
    let r: { value: unknown; skipped: number };
    try {
      r = readPushPull(plain, (name) => {
        const s = members.get(name);
        return s && s.state !== "suspect" ? members.entry(s) : undefined;
      }, config.maxMembers);
    } catch {
      return streams.malformed(from);
    }
    // readPushPull skips only within maxMembers entries, so the check's bound still holds.
    const msg = streams.check(this.schema, r.value, from) as Received;
    msg.skipped = r.skipped;
    return msg;
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
    const digest = this.digest();
    const reply = await this.o.streams.requestEncoded("push-pull", addr, this.probeMsg(digest), (p) => this.read(p, addr), this.o.config.streamTimeoutMs);
    if (reply.members.length + reply.skipped === 0 && reply.digest && sameBytes(reply.digest, digest)) {
      this.o.members.markSeen(reply.from, addr);
      return;
    }
    // Different, or a peer that does not know probes and answered with its full state.
    await this.exchange(addr, false);
  }

  private probeMsg(digest = this.digest()): Uint8Array {
    return encodePushPull({ join: false, from: this.o.name, digest }, [], EMPTY);
  }

  /** SHA-256 over the member list's digest and the delegate's state digest. */
  digest(): Uint8Array {
    const h = createHash("sha256");
    h.update(this.memberDigest());
    h.update(this.o.delegate.stateDigest?.() ?? EMPTY);
    return new Uint8Array(h.digest());
  }

  /**
   * XOR of the hashes of every member's push-pull entry (record-hash.ts): equal exactly
   * when two lists hold the same entries, in any order. Cached until membership changes.
   */
  private memberDigest(): Uint8Array {
    const { members } = this.o;
    const rev = members.revision();
    if (this.memberHash?.rev === rev) return this.memberHash.hash;
    const hash = new Uint8Array(RECORD_HASH_BYTES);
    for (const s of members.all()) xorRecordHash(hash, members.entry(s));
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

  private localState(join: boolean): Uint8Array {
    const { members } = this.o;
    const entries = members.all().map((s) => members.entry(s));
    return encodePushPull({ join, from: this.o.name }, entries, this.o.delegate.localState(join));
  }

  /** Merges a received push-pull message; `sender`: the address it came from (undefined: legacy, unchecked). */
  private merge(msg: PushPullMsg, sender: string | undefined): void {
    const { members, rt } = this.o;
    for (const r of msg.members) {
      try {
        const state = STATE_NAME[r.state]!;
        if (state === "alive") {
          const a: AliveMsg = { t: T.alive, name: r.name, addr: r.addr, inc: r.inc };
          if (r.meta) a.meta = r.meta;
          // The sender's own entry came from the sender itself: it may announce a new address.
          members.aliveNode(a, undefined, r.name === msg.from ? sender : undefined);
        }
        else if (state === "left") members.deadNode({ t: T.dead, name: r.name, inc: r.inc, from: r.name });
        // A remote "dead" is only a suspicion here: we give the member a chance to refute.
        else members.suspectNode({ t: T.suspect, name: r.name, inc: r.inc, from: msg.from });
      } catch (err) {
        rt.logLimited("handler", "merging member failed", { member: r.name, err: errText(err) });
      }
    }
    members.markSeen(msg.from, sender);
    try {
      this.o.delegate.mergeRemoteState(msg.user, msg.join, msg.from);
    } catch (err) {
      rt.logLimited("delegate", "delegate mergeRemoteState threw", { from: msg.from, err: errText(err) });
    }
  }
}

const EMPTY = new Uint8Array(0);
