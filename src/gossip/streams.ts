/**
 * Sealed request/reply exchanges over the transport's streams: one place that seals,
 * opens, checks freshness (anti-replay.ts), decodes, validates and counts stream
 * traffic, and bounds each exchange by a deadline on the clock (and by shutdown). A
 * request is sealed as a request, its reply as a reply naming the request's nonce, so
 * an old reply cannot answer a new request.
 */
import type { AntiReplay } from "./anti-replay.ts";
import { type Checker } from "./message-check.ts";
import { decode, encode } from "./codec.ts";
import { type Runtime, errText } from "./runtime.ts";
import { type MsgClass, Opened, REPLY, REQUEST, type ReplyTo, type Sealer } from "./security.ts";
import type { Transport } from "./transport.ts";

export class Streams {
  constructor(
    private readonly rt: Runtime,
    private transport: Transport,
    private readonly sealer: Sealer,
    private readonly maxBytes: number,
    private readonly antiReplay: AntiReplay,
  ) {}

  /** Streams go through `transport` from now on (the node re-bound to a new address). */
  setTransport(transport: Transport): void {
    this.transport = transport;
  }

  /** Seals an encoded message for sending, counting it; throws if it exceeds the stream limit. */
  private sealEncoded(plain: Uint8Array, cls: MsgClass, replyTo?: ReplyTo): Uint8Array {
    const data = this.sealer.seal(plain, cls, replyTo);
    if (data.length > this.maxBytes) throw new Error(`stream message of ${data.length} bytes exceeds maxStreamBytes ${this.maxBytes}`);
    this.rt.metrics.bytesOut += data.length;
    this.rt.metrics.messagesOut++;
    return data;
  }

  /** The reply to the request `to` (opened by openRequest()): sealed to answer it. */
  sealReply(plain: Uint8Array, to: Opened): Uint8Array {
    return this.sealEncoded(plain, REPLY, to);
  }

  /**
   * Sends `msg` to `addr` and returns the reply validated by `schema` (a zod schema or a hand-written equivalent). Rejects with
   * "<what> with <addr>: …" on timeout ("no reply within N ms"), shutdown, transport
   * errors or a reply that does not open, answer this request or validate.
   */
  async request<T>(what: string, addr: string, msg: unknown, schema: Checker<T>, timeoutMs: number, maxReply = this.maxBytes): Promise<T> {
    return this.requestEncoded(what, addr, encode(msg), (plain) => this.check(schema, this.decode(plain, addr), addr), timeoutMs, maxReply);
  }

  /**
   * request() for a message already encoded, with the reply's plaintext handed to `read`
   * (which throws, e.g. via check(), on a malformed reply).
   */
  async requestEncoded<T>(what: string, addr: string, plain: Uint8Array, read: (plain: Uint8Array) => T, timeoutMs: number, maxReply = this.maxBytes): Promise<T> {
    if (this.rt.stopped) throw new Error(`${what} with ${addr}: gossip stopped`);
    const req = this.sealEncoded(plain, REQUEST);
    const dl = this.rt.deadline(timeoutMs);
    let reply: Uint8Array;
    try {
      reply = await this.transport.stream(addr, req, { signal: dl.signal, maxBytes: maxReply });
    } catch (err) {
      const why = this.rt.stopped ? "gossip stopped" : dl.signal.aborted ? `no reply within ${timeoutMs} ms` : errText(err);
      throw new Error(`${what} with ${addr}: ${why}`, { cause: err });
    } finally {
      dl.done();
    }
    if (this.rt.stopped) throw new Error(`${what} with ${addr}: gossip stopped`);
    const opened = new Opened();
    const body = this.open(reply, REPLY, opened, addr);
    if (!this.antiReplay.reply(opened, this.sealer.nonceOf(req), addr)) throw new Error(`${what} with ${addr}: reply refused (replayed or stale)`);
    return read(body);
  }

  /**
   * Opens an incoming request into `into` (which a reply then answers): its plaintext.
   * Throws, counted, when it does not open or is not fresh (anti-replay.ts).
   */
  openRequest(data: Uint8Array, from: string, into: Opened): Uint8Array {
    const body = this.open(data, REQUEST, into, from);
    if (!this.antiReplay.request(into, from)) throw new Error(`stream from ${from}: request refused (replayed, stale or from another sender)`);
    return body;
  }

  /** Opens a stream message of class `cls`; counts and throws on failure. */
  private open(data: Uint8Array, cls: MsgClass, into: Opened, from: string): Uint8Array {
    this.rt.metrics.bytesIn += data.length;
    const plain = this.sealer.open(data, cls, into);
    if (!plain) {
      this.rt.metrics.decryptFailures++;
      this.rt.logLimited("decrypt", "dropped stream that failed to decrypt (wrong key or cluster name?)", { from });
      throw new Error(`stream from ${from}: message failed to decrypt (wrong key or cluster name?)`);
    }
    return plain;
  }

  /** msgpack-decodes an opened stream message; counts and throws on failure. */
  decode(plain: Uint8Array, from: string): unknown {
    try {
      return decode(plain);
    } catch {
      return this.malformed(from);
    }
  }

  /** Validates a decoded stream message; counts and throws on failure. */
  check<T>(schema: Checker<T>, v: unknown, from: string): T {
    const r = schema.safeParse(v);
    if (!r.success) return this.malformed(from);
    this.rt.metrics.messagesIn++;
    return r.data;
  }

  /** Counts a malformed stream message and throws. */
  malformed(from: string): never {
    this.rt.metrics.decodeFailures++;
    this.rt.logLimited("decode", "dropped malformed stream message", { from });
    throw new Error(`stream from ${from}: malformed message`);
  }
}
