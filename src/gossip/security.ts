/**
 * Sealing of every packet and stream (memberlist security.go and label.go, with
 * WireGuard's idea of a sealed timestamp): AES-256-GCM under the keyring's primary key
 * with a fresh random 12-byte nonce; opening tries every key.
 *
 * Current:  [0x02][nonce 12][AES-256-GCM(envelope ‖ body)][tag 16]
 *   envelope = sent-at (u64 big-endian, ms on the sender's clock)
 *              ‖ sender address length (u8) ‖ sender's gossip address ("ip:port", ASCII)
 *              ‖ for a stream reply only: the nonce of the request it answers (12 bytes)
 *   associated data = 0x02 ‖ class (1 packet, 2 stream request, 3 stream reply) ‖ cluster name
 * Legacy:   [0x01][nonce 12][ciphertext][tag 16], associated data 0x01 ‖ cluster name
 * Insecure: [0x00][name length][cluster name][plaintext]  (keyring null, --insecure)
 *
 * The class and cluster name in the associated data mean a message opens only as what it
 * was sealed as (a request is no packet, a reply no request) and only in its cluster.
 * The envelope lets the receiver refuse replays (anti-replay.ts): the nonce is the
 * message id — 96 fresh random bits per message, and covered by the tag (GCM derives
 * keystream and tag from it), so a copy with another nonce fails to open; the sent-at
 * time bounds how long an id must be remembered; the sender address must match where
 * the message came from; a reply must name the request it answers. Which formats are
 * sent and accepted is GossipConfig.legacyWire; the insecure format carries none of this.
 */
import { createCipheriv, createDecipheriv, randomFillSync } from "node:crypto";
import type { Clock } from "../clock.ts";
import { MAX_ADDR, isGossipAddr } from "./addr.ts";
import { readU32 } from "../wire/bytes.ts";
import type { LegacyWire } from "./config.ts";
import type { Keyring } from "./types.ts";

export const PACKET = 1;
export const REQUEST = 2;
export const REPLY = 3;
/** What a sealed message is; part of its associated data. */
export type MsgClass = typeof PACKET | typeof REQUEST | typeof REPLY;

const PLAIN = 0;
const LEGACY = 1;
const CURRENT = 2;
const NONCE = 12;
const TAG = 16;
/** sent-at (8) + address length (1). */
const ENVELOPE = 9;

/** How to seal a reply: in the format of what it answers (and naming it, for a stream). */
export interface ReplyTo {
  /** What it answers came in the legacy (or insecure) format. */
  legacy: boolean;
  /** The nonce of the stream request it answers (current format only). */
  nonce?: Uint8Array;
}

/**
 * What open() learned about a message besides its body. One instance is reused for every
 * packet a node receives (open() overwrites it), so the receive path allocates nothing
 * for it; a stream keeps its own.
 */
export class Opened implements ReplyTo {
  /** Legacy or insecure format: no sent-at, id, sender or echo below. */
  legacy = true;
  /** Sender's clock when it sealed the message, ms. */
  sentAt = 0;
  /** 53 bits of the nonce: the message id. */
  id = 0;
  private data: Uint8Array = EMPTY;
  private plain: Uint8Array = EMPTY;
  private addrStart = 0;
  private addrLen = 0;
  private echoStart = -1;

  /** The nonce (a view of the sealed message; current format only). */
  get nonce(): Uint8Array | undefined {
    return this.legacy ? undefined : this.data.subarray(1, 1 + NONCE);
  }

  /** The sealed sender address ("" for legacy). */
  sender(): string {
    if (this.legacy) return "";
    let s = "";
    for (let i = 0; i < this.addrLen; i++) s += String.fromCharCode(this.plain[this.addrStart + i]!);
    return s;
  }

  /** Length of the sealed sender address (0 for legacy). */
  get senderLength(): number {
    return this.legacy ? 0 : this.addrLen;
  }

  /** True if the sealed sender address is `addr` (compared in place: runs per packet). */
  senderIs(addr: string): boolean {
    if (this.legacy || addr.length !== this.addrLen) return false;
    for (let i = 0; i < this.addrLen; i++) if (this.plain[this.addrStart + i] !== addr.charCodeAt(i)) return false;
    return true;
  }

  /** True if this reply names `nonce` as the request it answers. */
  answers(nonce: Uint8Array): boolean {
    if (this.legacy || this.echoStart < 0) return false;
    for (let i = 0; i < NONCE; i++) if (this.plain[this.echoStart + i] !== nonce[i]) return false;
    return true;
  }

  /** @internal Sealer.open() fills it in. */
  set(legacy: boolean, data: Uint8Array, plain: Uint8Array, sentAt: number, addrLen: number, echoStart: number): void {
    this.legacy = legacy;
    this.data = data;
    this.plain = plain;
    this.sentAt = sentAt;
    this.addrStart = ENVELOPE;
    this.addrLen = addrLen;
    this.echoStart = echoStart;
    this.id = legacy ? 0 : nonceId(data);
  }
}

/** 53 bits of a sealed message's nonce (bytes 1..7), as a number. */
function nonceId(d: Uint8Array): number {
  return (((d[1]! & 0x1f) << 16) | (d[2]! << 8) | d[3]!) * 2 ** 32 + (((d[4]! << 24) | (d[5]! << 16) | (d[6]! << 8) | d[7]!) >>> 0);
}

export interface SealerOptions {
  /** null = insecure (plaintext with the cluster name). */
  keyring: Keyring | null;
  clusterName: string;
  /** Our gossip address, sealed into every message ("ip:port"). */
  addr: string;
  /** Sent-at times come from it. */
  clock: Clock;
  /** Formats sent and accepted (GossipConfig.legacyWire); "off" by default. */
  legacyWire?: LegacyWire;
}

export class Sealer {
  private keyring: Keyring | null;
  private readonly clock: Clock;
  private readonly legacyWire: LegacyWire;
  private readonly name: Buffer;
  private readonly adLegacy: Buffer;
  /** Associated data of the current format, by class. */
  private readonly ad: Buffer[];
  /** Envelope scratch: sent-at, address length, address, echo (filled per message). */
  private readonly envelope: Uint8Array;
  /** Its views for a packet or request, and for a reply (made per address: seal() runs per packet). */
  private head!: Uint8Array;
  private replyHead!: Uint8Array;
  private addrLen = 0;

  constructor({ keyring, clusterName, addr, clock, legacyWire = "off" }: SealerOptions) {
    this.keyring = keyring;
    this.clock = clock;
    this.legacyWire = legacyWire;
    this.name = Buffer.from(clusterName, "utf8");
    if (this.name.length > 255) throw new RangeError(`cluster name: at most 255 bytes, got ${this.name.length}`);
    this.adLegacy = Buffer.concat([Buffer.from([LEGACY]), this.name]);
    this.ad = [0, PACKET, REQUEST, REPLY].map((c) => Buffer.concat([Buffer.from([CURRENT, c]), this.name]));
    this.envelope = new Uint8Array(ENVELOPE + MAX_ADDR + NONCE);
    this.setAddr(addr);
  }

  /**
   * The gossip address sealed into every message from now on: after the node re-binds
   * to a new underlay address, receivers check its messages against the new source.
   */
  setAddr(addr: string): void {
    if (!isGossipAddr(addr)) throw new RangeError(`sealer addr: expected "ip:port" with an IP address, got ${JSON.stringify(addr)}`);
    this.addrLen = addr.length;
    this.envelope[8] = addr.length;
    for (let i = 0; i < addr.length; i++) this.envelope[ENVELOPE + i] = addr.charCodeAt(i);
    this.head = this.envelope.subarray(0, ENVELOPE + addr.length);
    this.replyHead = this.envelope.subarray(0, ENVELOPE + addr.length + NONCE);
  }

  /**
   * Seals with `keyring.primary` and opens with every key of it from now on (a key file
   * re-read on reload). Encryption cannot be switched on or off this way: that changes
   * the wire format, so it takes a restart.
   */
  setKeyring(keyring: Keyring | null): void {
    if ((keyring === null) !== (this.keyring === null)) throw new Error(`set gossip keyring: cannot switch ${this.keyring ? "off" : "on"} encryption while running; restart the agent`);
    this.keyring = keyring;
  }

  /**
   * How many more bytes this node's sealed envelope takes than that of a message from a
   * sender whose address is `senderLength` long (0 when ours is not longer, and for the
   * legacy and insecure formats, which carry no address).
   */
  addressExcess(senderLength: number, replyTo?: ReplyTo): number {
    if (!this.keyring || this.legacyFor(PACKET, replyTo)) return 0;
    return Math.max(0, this.addrLen - senderLength);
  }

  /** Bytes seal() adds to a plaintext of class `cls` (in the format of `replyTo`, if given). */
  overhead(cls: MsgClass, replyTo?: ReplyTo): number {
    if (!this.keyring) return 2 + this.name.length;
    if (this.legacyFor(cls, replyTo)) return 1 + NONCE + TAG;
    return 1 + NONCE + TAG + ENVELOPE + this.addrLen + (cls === REPLY ? NONCE : 0);
  }

  /**
   * Seals `plain` as class `cls`, sent now. A reply (`replyTo`: what it answers) uses the
   * format the request came in, so a node that sends the legacy format can read it; a
   * stream reply in the current format names the request's nonce.
   */
  seal(plain: Uint8Array, cls: MsgClass, replyTo?: ReplyTo): Uint8Array {
    if (!this.keyring) {
      const out = new Uint8Array(2 + this.name.length + plain.length);
      out[0] = PLAIN;
      out[1] = this.name.length;
      out.set(this.name, 2);
      out.set(plain, 2 + this.name.length);
      return out;
    }
    const legacy = this.legacyFor(cls, replyTo);
    let head: Uint8Array | undefined;
    if (!legacy) {
      head = this.head;
      const now = Math.max(0, Math.floor(this.clock.now()));
      const e = this.envelope;
      writeU32(e, 0, Math.floor(now / 2 ** 32));
      writeU32(e, 4, now >>> 0);
      if (cls === REPLY) {
        if (replyTo?.nonce?.length !== NONCE) throw new Error("seal reply: the request's nonce is needed");
        e.set(replyTo.nonce, this.head.length);
        head = this.replyHead;
      }
    }
    // One output buffer, written in place: this runs for every packet sent.
    const out = new Uint8Array(1 + NONCE + (head?.length ?? 0) + plain.length + TAG);
    out[0] = legacy ? LEGACY : CURRENT;
    const nonce = out.subarray(1, 1 + NONCE);
    randomFillSync(nonce);
    const c = createCipheriv("aes-256-gcm", this.keyring.primary, nonce);
    c.setAAD(legacy ? this.adLegacy : this.ad[cls]!);
    let off = 1 + NONCE;
    if (head) {
      const h = c.update(head);
      out.set(h, off);
      off += h.length;
    }
    const body = c.update(plain);
    out.set(body, off);
    off += body.length;
    const fin = c.final(); // GCM is a stream mode: empty, but part of the API contract
    out.set(fin, off);
    out.set(c.getAuthTag(), off + fin.length);
    return out;
  }

  /**
   * The body of `data` opened as class `cls`, with what else it carries written to `into`;
   * null when it does not open (wrong key, tampered, truncated, other cluster or class,
   * a format this node does not accept, a malformed envelope).
   */
  open(data: Uint8Array, cls: MsgClass, into: Opened): Uint8Array | null {
    if (!this.keyring) {
      if (data.length < 2 || data[0] !== PLAIN || data[1] !== this.name.length) return null;
      const n = 2 + this.name.length;
      if (data.length < n || !Buffer.from(data.subarray(2, n)).equals(this.name)) return null;
      const plain = data.subarray(n);
      into.set(true, data, plain, 0, 0, -1);
      return plain;
    }
    const format = data[0];
    if (data.length < 1 + NONCE + TAG || !(format === CURRENT || (format === LEGACY && this.legacyWire !== "off"))) return null;
    const plain = this.decrypt(data, format === LEGACY ? this.adLegacy : this.ad[cls]!);
    if (!plain) return null;
    if (format === LEGACY) {
      into.set(true, data, plain, 0, 0, -1);
      return plain;
    }
    if (plain.length < ENVELOPE) return null;
    const sentAt = readU32(plain, 0) * 2 ** 32 + readU32(plain, 4);
    const addrLen = plain[8]!;
    let end = ENVELOPE + addrLen;
    const echoStart = cls === REPLY ? end : -1;
    if (cls === REPLY) end += NONCE;
    if (addrLen === 0 || addrLen > MAX_ADDR || plain.length < end) return null;
    into.set(false, data, plain, sentAt, addrLen, echoStart);
    return plain.subarray(end);
  }

  /** The nonce of a message we sealed in the current format (a reply must name it), else undefined. */
  nonceOf(sealed: Uint8Array): Uint8Array | undefined {
    return this.keyring && sealed[0] === CURRENT ? sealed.subarray(1, 1 + NONCE) : undefined;
  }

  private legacyFor(cls: MsgClass, replyTo: ReplyTo | undefined): boolean {
    return replyTo ? replyTo.legacy : this.legacyWire === "send" && cls !== REPLY;
  }

  private decrypt(data: Uint8Array, ad: Buffer): Uint8Array | null {
    const nonce = data.subarray(1, 1 + NONCE);
    const body = data.subarray(1 + NONCE, data.length - TAG);
    const tag = data.subarray(data.length - TAG);
    for (const key of this.keyring!.keys) {
      try {
        const d = createDecipheriv("aes-256-gcm", key, nonce);
        d.setAAD(ad);
        d.setAuthTag(tag);
        const out = d.update(body);
        // Authenticates (throws on a bad tag); GCM has no final block, so nothing to append.
        if (d.final().length !== 0) throw new Error("unexpected final block");
        return new Uint8Array(out.buffer, out.byteOffset, out.length);
      } catch {
        // try the next key
      }
    }
    return null;
  }
}

const EMPTY = new Uint8Array(0);

function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = (v >>> 16) & 255;
  b[at + 2] = (v >>> 8) & 255;
  b[at + 3] = v & 255;
}
