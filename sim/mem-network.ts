/**
 * An in-memory network for simulations (memberlist mock_transport.go, made hostile):
 * every packet and stream hop is a timer on the injected Clock, so with a FakeClock a
 * whole cluster runs deterministically and as fast as the CPU allows. Loss, delay,
 * duplication, reordering and partitions are decided by a seeded PRNG.
 *
 * Partitions: each address listed in `partition(groups)` belongs to its group; all
 * unlisted addresses form one further group. Nodes only reach their own group. A stream
 * to an unreachable peer never completes (like a SYN into a black hole), so the
 * caller's timeout decides; a stream to an address nobody listens on is refused.
 *
 * Parts: a simulation can be split over several MemNetworks (one per worker thread,
 * bench/convergence.ts). Each part's `link` says which addresses live elsewhere and
 * carries packets and stream legs to them as {@link CrossItem}s with their arrival
 * time; the owner hands them to `receive()`. Loss, delay and order are decided by the
 * sender's part, partitions are checked on both sides, as within one network.
 *
 * Buffers are handed over, not copied: a sender must not change a packet or stream
 * message after sending it (gossip never does: each is a freshly sealed buffer), and
 * receivers only read them. A copy per packet would cost a large simulation noticeable
 * time for nothing.
 */
import type { Clock } from "../src/clock.ts";
import { type Random, seededRandom } from "../src/gossip/prng.ts";
import type { PacketHandler, StreamHandler, Transport } from "../src/gossip/transport.ts";

export interface MemNetworkOptions {
  clock: Clock;
  /** Seed of the PRNG that decides loss, delay, duplication. */
  seed: number;
  /** Probability a packet is dropped (0..1). Streams are not lossy (TCP), only partitionable. */
  loss?: number;
  /** One-way delay range [min, max] in ms, uniform. Default [1, 1]. */
  delayMs?: [number, number];
  /** Probability a delivered packet is delivered twice (0..1). */
  duplicate?: number;
  /** When false (default), packets between one pair of nodes arrive in send order. */
  reorder?: boolean;
  /** Set when this network is one part of a split simulation. */
  link?: MemLink;
}

/** A packet or stream leg on its way to another part, arriving at clock time `at`. */
export type CrossItem =
  | { k: "packet"; at: number; from: string; to: string; data: Uint8Array }
  | { k: "request"; at: number; from: string; to: string; id: number; req: Uint8Array }
  /** The answer to request `id`, travelling back to its caller `from`. */
  | { k: "reply"; at: number; from: string; to: string; id: number; reply?: Uint8Array; err?: string };

export interface MemLink {
  /** True when `addr` belongs to another part. */
  isRemote(addr: string): boolean;
  /** Hands an item to the part that owns its destination (`to`, or `from` for a reply). */
  send(item: CrossItem): void;
}

export interface MemNetworkStats {
  packets: number;
  bytes: number;
  dropped: number;
  streams: number;
}

export class MemNetwork {
  private readonly clock: Clock;
  private readonly rnd: Random;
  private loss: number;
  private readonly delay: [number, number];
  private readonly duplicate: number;
  private readonly reorder: boolean;
  private readonly nodes = new Map<string, MemTransport>();
  private groupOf: Map<string, number> | null = null;
  // Per (from,to) pair: latest scheduled delivery time, to keep FIFO when reorder is off.
  // Nested by sender, not keyed by a joined string, which would be a new string per packet.
  private readonly lastArrival = new Map<string, Map<string, number>>();
  private readonly counters: MemNetworkStats = { packets: 0, bytes: 0, dropped: 0, streams: 0 };
  private readonly link: MemLink | undefined;
  /** Our streams into other parts, by request id, waiting for their reply. */
  private readonly calls = new Map<number, { finish: (err: Error | null, reply?: Uint8Array) => void; maxBytes: number }>();
  private nextCall = 0;

  constructor({ clock, seed, loss = 0, delayMs = [1, 1], duplicate = 0, reorder = false, link }: MemNetworkOptions) {
    if (!(delayMs[0] >= 0 && delayMs[1] >= delayMs[0])) throw new RangeError(`MemNetwork delayMs: need 0 ≤ min ≤ max, got [${delayMs}]`);
    this.clock = clock;
    this.rnd = seededRandom(seed);
    this.loss = checkProb("loss", loss);
    this.delay = delayMs;
    this.duplicate = checkProb("duplicate", duplicate);
    this.reorder = reorder;
    this.link = link;
  }

  /** A transport bound to `addr` ("ip:port"); rebinding an address whose transport was closed is allowed. */
  transport(addr: string): Transport {
    const old = this.nodes.get(addr);
    if (old && !old.closed) throw new Error(`bind ${addr}: address already in use`);
    const t = new MemTransport(this, addr);
    this.nodes.set(addr, t);
    return t;
  }

  /** Splits the network into groups of addresses that only reach each other. */
  partition(groups: string[][]): void {
    const g = new Map<string, number>();
    groups.forEach((addrs, i) => addrs.forEach((a) => g.set(a, i)));
    this.groupOf = g;
  }

  heal(): void {
    this.groupOf = null;
  }

  setLoss(p: number): void {
    this.loss = checkProb("loss", p);
  }

  stats(): MemNetworkStats {
    return { ...this.counters };
  }

  reachable(a: string, b: string): boolean {
    if (!this.groupOf) return true;
    return (this.groupOf.get(a) ?? -1) === (this.groupOf.get(b) ?? -1);
  }

  private hopDelay(): number {
    const [lo, hi] = this.delay;
    return lo + this.rnd() * (hi - lo);
  }

  /** @internal */
  sendPacket(from: string, to: string, data: Uint8Array): void {
    this.counters.packets++;
    this.counters.bytes += data.length;
    if (!this.reachable(from, to) || this.rnd() < this.loss) {
      this.counters.dropped++;
      return;
    }
    const copies = this.rnd() < this.duplicate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      let at = this.clock.now() + this.hopDelay();
      if (!this.reorder) {
        let last = this.lastArrival.get(from);
        if (!last) this.lastArrival.set(from, (last = new Map()));
        at = Math.max(at, last.get(to) ?? 0);
        last.set(to, at);
      }
      if (this.link?.isRemote(to)) this.link.send({ k: "packet", at, from, to, data });
      else this.clock.after(at - this.clock.now(), () => this.arrive(from, to, data));
    }
  }

  private arrive(from: string, to: string, data: Uint8Array): void {
    const dst = this.nodes.get(to);
    // Partition checked again on arrival: a partition cuts packets already in flight.
    if (!dst || dst.closed || !this.reachable(from, to)) {
      this.counters.dropped++;
      return;
    }
    dst.deliverPacket(data, from);
  }

  /** An item from another part: handled at its arrival time (at once if that has passed). */
  receive(item: CrossItem): void {
    this.clock.after(Math.max(0, item.at - this.clock.now()), () => {
      if (item.k === "packet") return this.arrive(item.from, item.to, item.data);
      if (item.k === "request") {
        const answer = (reply: Uint8Array | undefined, err?: string) =>
          this.link!.send({ k: "reply", at: this.clock.now() + this.hopDelay(), from: item.from, to: item.to, id: item.id, ...(reply ? { reply } : {}), ...(err ? { err } : {}) });
        return this.serve(item.from, item.to, item.req, answer);
      }
      const call = this.calls.get(item.id);
      if (!call || !this.reachable(item.from, item.to)) return;
      this.calls.delete(item.id);
      if (item.err) return call.finish(new Error(`stream to ${item.to}: ${item.err}`));
      if (item.reply!.length > call.maxBytes) return call.finish(new Error(`stream to ${item.to}: reply of ${item.reply!.length} bytes exceeds ${call.maxBytes}`));
      call.finish(null, item.reply);
    });
  }

  /**
   * The listening side of a stream, once the request has arrived: `answer` gets the reply
   * or an error text; nothing happens across a partition (a black hole).
   */
  private serve(from: string, to: string, req: Uint8Array, answer: (reply: Uint8Array | undefined, err?: string) => void): void {
    if (!this.reachable(from, to)) return;
    const dst = this.nodes.get(to);
    if (!dst || dst.closed || !dst.streamHandler) return answer(undefined, "connection refused");
    if (req.length > dst.streamMax) return answer(undefined, "connection reset (request too large)");
    dst.streamHandler(req, from).then(
      (reply) => {
        this.counters.bytes += reply.length;
        answer(reply);
      },
      () => answer(undefined, "closed by peer"),
    );
  }

  /** @internal */
  stream(from: string, to: string, request: Uint8Array, signal: AbortSignal, maxBytes: number): Promise<Uint8Array> {
    this.counters.streams++;
    this.counters.bytes += request.length;
    return new Promise<Uint8Array>((resolve, reject) => {
      let done = false;
      const finish = (err: Error | null, reply?: Uint8Array) => {
        if (done) return;
        done = true;
        signal.removeEventListener("abort", onAbort);
        if (err) reject(err);
        else resolve(reply!);
      };
      const onAbort = () => finish(new Error(`stream to ${to}: aborted`));
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort);
      if (this.link?.isRemote(to)) {
        const id = this.nextCall++;
        this.calls.set(id, { finish, maxBytes });
        signal.addEventListener("abort", () => this.calls.delete(id));
        this.link.send({ k: "request", at: this.clock.now() + this.hopDelay(), from, to, id, req: request });
        return;
      }
      this.clock.after(this.hopDelay(), () => {
        if (done) return;
        this.serve(from, to, request, (reply, err) =>
          this.clock.after(this.hopDelay(), () => {
            // Black hole on the way back too: the caller's timeout decides.
            if (!this.reachable(from, to)) return;
            if (err) return finish(new Error(`stream to ${to}: ${err}`));
            if (reply!.length > maxBytes) return finish(new Error(`stream to ${to}: reply of ${reply!.length} bytes exceeds ${maxBytes}`));
            finish(null, reply!);
          }),
        );
      });
    });
  }
}

class MemTransport implements Transport {
  closed = false;
  packetHandler: PacketHandler | null = null;
  streamHandler: StreamHandler | null = null;
  streamMax = Infinity;

  constructor(
    private readonly net: MemNetwork,
    private readonly addr: string,
  ) {}

  localAddr(): string {
    return this.addr;
  }

  sendPacket(to: string, data: Uint8Array): void {
    if (this.closed) return;
    this.net.sendPacket(this.addr, to, data);
  }

  onPacket(handler: PacketHandler): void {
    this.packetHandler = handler;
  }

  stream(to: string, request: Uint8Array, { signal, maxBytes }: { signal: AbortSignal; maxBytes: number }): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new Error(`stream to ${to}: transport closed`));
    return this.net.stream(this.addr, to, request, signal, maxBytes);
  }

  onStream(handler: StreamHandler, { maxBytes }: { maxBytes: number }): void {
    this.streamHandler = handler;
    this.streamMax = maxBytes;
  }

  deliverPacket(data: Uint8Array, from: string): void {
    this.packetHandler?.(data, from);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

function checkProb(name: string, p: number): number {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`MemNetwork ${name}: must be a probability in 0..1, got ${p}`);
  return p;
}
