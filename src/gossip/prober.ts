/**
 * SWIM failure detection (memberlist state.go probeNode): each probe pings one member;
 * no ack within the probe timeout → `indirectChecks` peers ping it for us (and a TCP
 * ping is tried, in case only UDP is lost); no ack by the end of the probe interval →
 * the member becomes suspect. Indirect requests from peers are served here too. Local
 * health (awareness) scales the timeouts and learns from missing nacks. What a request
 * makes us send (an ack, the ping relayed for an indirect probe, its ack or nack) is
 * bounded by the request's size (ReplyBudget), so no request is worth more bytes back.
 */
import type { TimerHandle } from "../clock.ts";
import type { Awareness } from "./awareness.ts";
import { type IndirectMsg, type Message, type PingMsg, T, streamAckSchema, streamPingSchema } from "./messages.ts";
import { encode } from "./codec.ts";
import type { GossipConfig } from "./config.ts";
import type { Membership } from "./membership.ts";
import type { Runtime } from "./runtime.ts";
import type { Opened } from "./security.ts";
import type { Streams } from "./streams.ts";

/** What a received packet may still make us send in reply, and in which format. */
export interface ReplyBudget {
  /** Bytes (sealed) left: the packet's size, less the replies it caused so far. */
  left: number;
  /** It came in the legacy (or insecure) format: replies use it too. */
  legacy: boolean;
}

interface AckWaiter {
  /** `from`: the address the ack came from (its sealed sender). */
  onAck(from: string): void;
  onNack(): void;
}

export interface ProberOptions {
  name: string;
  config: GossipConfig;
  rt: Runtime;
  members: Membership;
  awareness: Awareness;
  streams: Streams;
  /** Sends messages in one packet (with piggybacked broadcasts). */
  send(addr: string, msgs: Message[]): void;
  /** send() for a reply: sealed at most `to.left` bytes (less piggyback), taken from it; not sent if even `msgs` alone do not fit. */
  reply(addr: string, msgs: Message[], to: ReplyBudget): void;
}

export class Prober {
  private readonly acks = new Map<number, AckWaiter>();
  private seq = 0;

  constructor(private readonly o: ProberOptions) {}

  onAck(seq: number, from: string): void {
    this.acks.get(seq)?.onAck(from);
  }

  onNack(seq: number): void {
    this.acks.get(seq)?.onNack();
  }

  clear(): void {
    this.acks.clear();
  }

  /** A ping from `from` (the packet's source, which is its sealed sender). */
  onPing(msg: PingMsg, from: string, budget: ReplyBudget): void {
    // A ping meant for a previous owner of this address: stay silent so they look dead.
    if (msg.target !== this.o.name) return;
    this.o.members.markSeen(msg.from, budget.legacy ? undefined : from);
    this.o.reply(from, [{ t: T.ack, seq: msg.seq }], budget);
  }

  /** Answers a TCP fallback ping (a stream whose request, opened into `req`, is a ping). */
  answerStreamPing(v: unknown, from: string, req: Opened): Uint8Array {
    const ping = this.o.streams.check(streamPingSchema, v, from);
    if (ping.target !== this.o.name) throw new Error(`stream ping for ${ping.target}, not us`);
    this.o.members.markSeen(ping.from, req.legacy ? undefined : req.sender());
    return this.o.streams.sealReply(encode({ t: T.ack, seq: ping.seq }), req);
  }

  onIndirect(msg: IndirectMsg, from: string, budget: ReplyBudget): void {
    const { rt } = this.o;
    const seq = this.nextSeq();
    let answered = false;
    // The ack or nack goes back to the requester later: as much as the request allowed.
    const back: ReplyBudget = { left: budget.left, legacy: budget.legacy };
    const timer = rt.after(this.o.config.probeTimeoutMs, () => {
      this.acks.delete(seq);
      if (!answered) this.o.reply(from, [{ t: T.nack, seq: msg.seq }], back);
    });
    this.acks.set(seq, {
      onAck: () => {
        if (answered) return;
        answered = true;
        this.acks.delete(seq);
        rt.cancel(timer);
        this.o.reply(from, [{ t: T.ack, seq: msg.seq }], back);
      },
      onNack: () => {},
    });
    this.o.reply(msg.targetAddr, [{ t: T.ping, seq, target: msg.target, from: this.o.name }], budget);
  }

  /** One probe of the next member in the round-robin order. */
  probe(): void {
    const { rt, members, awareness, config: c } = this.o;
    const target = members.nextProbeTarget();
    if (!target) return;
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
        timers.forEach((t) => rt.cancel(t));
        awareness.applyDelta(-1);
        members.markSeen(target.name);
      },
      onNack: () => void nacks++,
    });
    this.o.send(target.addr, [{ t: T.ping, seq, target: target.name, from: this.o.name }]);
    const probeTimeout = awareness.scale(c.probeTimeoutMs);
    const probeInterval = awareness.scale(c.probeIntervalMs);
    timers.push(
      rt.after(probeTimeout, () => {
        const peers = members.randomMembers(c.indirectChecks, (s) => s.state === "alive", target.name);
        expectedNacks = peers.length;
        for (const p of peers) this.o.send(p.addr, [{ t: T.indirect, seq, target: target.name, targetAddr: target.addr, from: this.o.name }]);
        if (c.tcpFallbackPing) {
          this.tcpPing(target.addr, target.name, seq, probeInterval - probeTimeout).then((ok) => {
            if (!ok || acked) return;
            rt.logLimited("tcp-ping", "member answered over TCP but not over UDP: is UDP blocked?", { member: target.name });
            this.acks.get(seq)?.onAck(target.addr);
          });
        }
      }),
    );
    timers.push(
      rt.after(probeInterval, () => {
        this.acks.delete(seq);
        if (acked) return;
        // Peers that could not even send a nack hint that our own network is the problem.
        awareness.applyDelta(expectedNacks > 0 ? Math.max(0, expectedNacks - nacks) : 1);
        rt.log.debug("probe failed, suspecting member", { member: target.name, nacks, expectedNacks });
        members.suspectNode({ t: T.suspect, name: target.name, inc, from: this.o.name });
      }),
    );
  }

  /**
   * Pings `addr` naming `name` and calls `done(true)` on an ack from that address within
   * `timeoutMs`, `done(false)` otherwise. A node acks only pings naming it (onPing), so
   * an ack means a node of that name answers there.
   */
  checkAddress(name: string, addr: string, timeoutMs: number, done: (answered: boolean) => void): void {
    const { rt } = this.o;
    const seq = this.nextSeq();
    const timer = rt.after(timeoutMs, () => {
      this.acks.delete(seq);
      done(false);
    });
    this.acks.set(seq, {
      onAck: (from) => {
        if (from !== addr) return;
        this.acks.delete(seq);
        rt.cancel(timer);
        done(true);
      },
      onNack: () => {},
    });
    this.o.send(addr, [{ t: T.ping, seq, target: name, from: this.o.name }]);
  }

  /** Resolves true on the matching ack over TCP, false on anything else. */
  private async tcpPing(addr: string, target: string, seq: number, deadlineMs: number): Promise<boolean> {
    try {
      const ack = await this.o.streams.request("tcp ping", addr, { t: T.ping, seq, target, from: this.o.name }, streamAckSchema, deadlineMs, 1024);
      return ack.seq === seq;
    } catch {
      return false;
    }
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }
}
