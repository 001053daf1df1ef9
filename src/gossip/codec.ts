/**
 * Wire messages: msgpack-encoded, each decoded message checked against a zod schema
 * before anything looks at it. A packet is a msgpack array of messages (a compound
 * packet: probes carry piggybacked broadcasts); a stream carries one push-pull message.
 * Sizes and counts are bounded so a hostile peer cannot make us allocate much.
 */
import { isIPv6 } from "node:net";
import { Packr } from "msgpackr";
import { z } from "zod";
import { fmix32, rotl32 } from "./murmur.ts";

export const MAX_NAME = 128;
export const MAX_ADDR = 64;
export const MAX_META = 256;
export const MAX_KEY = 256;
export const MAX_MSGS_PER_PACKET = 255;

// Records/structures off: every packet must decode on its own, with no shared state.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

/**
 * True for a gossip address: an IPv4 address or a bracketed IPv6 literal (no zone), then
 * ":port" (1..65535, no leading zero), at most MAX_ADDR characters. Never a host name:
 * every receiver would resolve whatever a peer announced, and a name cannot be compared
 * with the source of a packet.
 */
export function isGossipAddr(v: unknown): v is string {
  if (typeof v !== "string" || v.length < 6 || v.length > MAX_ADDR) return false;
  const colon = v.lastIndexOf(":");
  if (!isPort(v, colon + 1)) return false;
  // IPv4 is read in place (this runs for every decoded alive and push-pull entry).
  if (v.charCodeAt(0) !== 0x5b) return isDottedQuad(v, colon);
  const host = v.slice(1, colon - 1);
  return v.charCodeAt(colon - 1) === 0x5d && !host.includes("%") && isIPv6(host);
}

/** s[from..] is a port: 1..65535 in decimal, no leading zero. */
function isPort(s: string, from: number): boolean {
  const n = s.length - from;
  if (n < 1 || n > 5 || s.charCodeAt(from) === 0x30) return false;
  let port = 0;
  for (let i = from; i < s.length; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return false;
    port = port * 10 + d;
  }
  return port <= 65_535;
}

/** s[0, end) is an IPv4 address in dotted decimal (octets 0..255, no leading zeros). */
function isDottedQuad(s: string, end: number): boolean {
  let octets = 0;
  let i = 0;
  while (octets < 4) {
    const start = i;
    let octet = 0;
    while (i < end) {
      const d = s.charCodeAt(i) - 0x30;
      if (d < 0 || d > 9) break;
      octet = octet * 10 + d;
      i++;
    }
    const len = i - start;
    if (len === 0 || len > 3 || octet > 255 || (len > 1 && s.charCodeAt(start) === 0x30)) return false;
    if (++octets < 4) {
      if (s.charCodeAt(i) !== 0x2e) return false;
      i++;
    }
  }
  return i === end;
}

const name = z.string().min(1).max(MAX_NAME);
const addr = z.string().refine(isGossipAddr, "an IPv4 address or a bracketed IPv6 address, then :port");
const u32 = z.number().int().min(0).max(0xffffffff);
const inc = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const bytes = (max: number) => z.custom<Uint8Array>((b) => b instanceof Uint8Array && b.length <= max, `binary of at most ${max} bytes`);

/** Message type tags (numbers keep packets small). */
export const T = { ping: 1, indirect: 2, ack: 3, nack: 4, alive: 5, suspect: 6, dead: 7, user: 8 } as const;

const ping = z.object({ t: z.literal(T.ping), seq: u32, target: name, from: name });
/** Ask the receiver to ping `target` at `targetAddr` for us and relay the ack (or a nack). */
const indirect = z.object({ t: z.literal(T.indirect), seq: u32, target: name, targetAddr: addr, from: name });
const ack = z.object({ t: z.literal(T.ack), seq: u32 });
const nack = z.object({ t: z.literal(T.nack), seq: u32 });
const alive = z.object({ t: z.literal(T.alive), name, addr, inc, meta: bytes(MAX_META).optional() });
const suspect = z.object({ t: z.literal(T.suspect), name, inc, from: name });
/** `from === name` means the member left gracefully. */
const dead = z.object({ t: z.literal(T.dead), name, inc, from: name });
/** A user broadcast; (origin, key, seq) identifies it so receivers re-gossip each one once. */
const user = z.object({ t: z.literal(T.user), origin: name, key: z.string().max(MAX_KEY), seq: inc, payload: bytes(65_536) });

/** A ping over a stream (TCP fallback probe) is answered by an ack over the same stream. */
export const streamPingSchema = ping;
export const streamAckSchema = ack;

export const messageSchema = z.discriminatedUnion("t", [ping, indirect, ack, nack, alive, suspect, dead, user]);
export type Message = z.infer<typeof messageSchema>;
export type PingMsg = z.infer<typeof ping>;
export type IndirectMsg = z.infer<typeof indirect>;
export type AliveMsg = z.infer<typeof alive>;
export type SuspectMsg = z.infer<typeof suspect>;
export type DeadMsg = z.infer<typeof dead>;
export type UserMsg = z.infer<typeof user>;

export const STATE_CODE = { alive: 0, suspect: 1, dead: 2, left: 3 } as const;
export const STATE_NAME = ["alive", "suspect", "dead", "left"] as const;

const pushPullMember = z.object({ name, addr, inc, state: z.number().int().min(0).max(3), meta: bytes(MAX_META).optional() });
export type PushPullMember = z.infer<typeof pushPullMember>;

/** Longest push-pull digest accepted (ours are 32-byte SHA-256). */
export const MAX_DIGEST = 64;

export function pushPullSchema(maxMembers: number, maxBytes: number) {
  return z.object({
    join: z.boolean(),
    from: name,
    members: z.array(pushPullMember).max(maxMembers),
    user: bytes(maxBytes),
    /** Hash of the sender's member list and delegate state (digest-first periodic exchange). */
    digest: bytes(MAX_DIGEST).optional(),
  });
}
export type PushPullMsg = z.infer<ReturnType<typeof pushPullSchema>>;

// ---- hand-written validators -------------------------------------------------------
// The zod schemas above are the definition. Every packet and every push-pull member list
// is checked, and at 1000 nodes zod's generic parse was a tenth of the CPU, so the hot
// paths use these equivalents instead: same acceptance, same output (unknown keys
// stripped, keys in schema order, an explicit `meta: undefined` kept), proven against the
// schemas by the property test in test/gossip/codec.test.ts.

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const isStr = (v: unknown, min: number, max: number): v is string => typeof v === "string" && v.length >= min && v.length <= max;
const isInt = (v: unknown, max: number): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= max;
const isName = (v: unknown): v is string => isStr(v, 1, MAX_NAME);
const isU32 = (v: unknown): v is number => isInt(v, 0xffffffff);
const isInc = (v: unknown): v is number => isInt(v, Number.MAX_SAFE_INTEGER);
const isBytes = (v: unknown, max: number): v is Uint8Array => v instanceof Uint8Array && v.length <= max;

/** Adds `meta` as zod's `.optional()` would: absent stays absent, present must be valid. */
function withMeta<T extends Obj>(out: T, o: Obj): T | undefined {
  if (!("meta" in o)) return out;
  const meta = o.meta;
  if (meta !== undefined && !isBytes(meta, MAX_META)) return undefined;
  (out as Obj).meta = meta;
  return out;
}

/** `messageSchema.safeParse(v)`, hand-written: the message, or undefined if invalid. */
export function checkMessage(v: unknown): Message | undefined {
  if (!isObj(v)) return undefined;
  switch (v.t) {
    case T.ping:
      return isU32(v.seq) && isName(v.target) && isName(v.from) ? { t: T.ping, seq: v.seq, target: v.target, from: v.from } : undefined;
    case T.indirect:
      return isU32(v.seq) && isName(v.target) && isGossipAddr(v.targetAddr) && isName(v.from)
        ? { t: T.indirect, seq: v.seq, target: v.target, targetAddr: v.targetAddr, from: v.from }
        : undefined;
    case T.ack:
      return isU32(v.seq) ? { t: T.ack, seq: v.seq } : undefined;
    case T.nack:
      return isU32(v.seq) ? { t: T.nack, seq: v.seq } : undefined;
    case T.alive:
      return isName(v.name) && isGossipAddr(v.addr) && isInc(v.inc) ? withMeta<AliveMsg>({ t: T.alive, name: v.name, addr: v.addr, inc: v.inc }, v) : undefined;
    case T.suspect:
      return isName(v.name) && isInc(v.inc) && isName(v.from) ? { t: T.suspect, name: v.name, inc: v.inc, from: v.from } : undefined;
    case T.dead:
      return isName(v.name) && isInc(v.inc) && isName(v.from) ? { t: T.dead, name: v.name, inc: v.inc, from: v.from } : undefined;
    case T.user:
      return isName(v.origin) && isStr(v.key, 0, MAX_KEY) && isInc(v.seq) && isBytes(v.payload, 65_536)
        ? { t: T.user, origin: v.origin, key: v.key, seq: v.seq, payload: v.payload }
        : undefined;
    default:
      return undefined;
  }
}

function checkPushPullMember(v: unknown): PushPullMember | undefined {
  if (!isObj(v) || !isName(v.name) || !isGossipAddr(v.addr) || !isInc(v.inc) || !isInt(v.state, 3)) return undefined;
  return withMeta<PushPullMember>({ name: v.name, addr: v.addr, inc: v.inc, state: v.state }, v);
}

/** The result shape of zod's safeParse, so zod schemas and these checkers are interchangeable. */
export type CheckResult<T> = { success: true; data: T } | { success: false };
export interface Checker<T> {
  safeParse(v: unknown): CheckResult<T>;
}

/** `pushPullSchema(maxMembers, maxBytes)`, hand-written. */
export function pushPullChecker(maxMembers: number, maxBytes: number): Checker<PushPullMsg> {
  return {
    safeParse(v: unknown): CheckResult<PushPullMsg> {
      if (!isObj(v) || typeof v.join !== "boolean" || !isName(v.from)) return { success: false };
      const list = v.members;
      if (!Array.isArray(list) || list.length > maxMembers) return { success: false };
      const members: PushPullMember[] = new Array(list.length);
      for (let i = 0; i < list.length; i++) {
        const m = checkPushPullMember(list[i]);
        if (!m) return { success: false };
        members[i] = m;
      }
      if (!isBytes(v.user, maxBytes)) return { success: false };
      const data: PushPullMsg = { join: v.join, from: v.from, members, user: v.user };
      if ("digest" in v) {
        if (v.digest !== undefined && !isBytes(v.digest, MAX_DIGEST)) return { success: false };
        data.digest = v.digest;
      }
      return { success: true, data };
    },
  };
}

export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** msgpack-decodes, throwing on malformed input (callers count it as a decode failure). */
export function decode(data: Uint8Array): unknown {
  return packr.unpack(data);
}

/**
 * Joins separately encoded messages into one msgpack array (array16 header). With
 * `scratch` large enough, the packet is written into it and a view returned: a sender
 * that seals (copies) the packet at once needs no new buffer per packet.
 */
export function compound(parts: Uint8Array[], scratch?: Uint8Array): Uint8Array {
  if (parts.length > MAX_MSGS_PER_PACKET) throw new RangeError(`compound packet: ${parts.length} messages exceeds ${MAX_MSGS_PER_PACKET}`);
  let size = COMPOUND_HEADER;
  for (const p of parts) size += p.length;
  const out = scratch && scratch.length >= size ? scratch.subarray(0, size) : new Uint8Array(size);
  out[0] = 0xdc;
  out[1] = parts.length >> 8;
  out[2] = parts.length & 0xff;
  let off = COMPOUND_HEADER;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
export const COMPOUND_HEADER = 3;

/**
 * Where the messages of a compound packet lie: [start₀, start₁, …, end]. Found by walking
 * the msgpack structure without decoding it, so a receiver can drop copies of broadcasts
 * it has already handled before paying for a decode (gossip.ts, RecentHashes). Throws when
 * the packet is not exactly one msgpack array of at most MAX_MSGS_PER_PACKET values.
 */
export function packetBounds(plain: Uint8Array): number[] {
  const head = arrayHeader(plain, 0);
  if (!head) throw new Error("packet is not a msgpack array");
  const { count } = head;
  let { off } = head;
  if (count > MAX_MSGS_PER_PACKET) throw new Error(`packet holds ${count} messages, more than ${MAX_MSGS_PER_PACKET}`);
  const bounds = [off];
  for (let i = 0; i < count; i++) {
    off = skipValue(plain, off);
    if (off < 0) throw new Error("packet is truncated or malformed");
    bounds.push(off);
  }
  if (off !== plain.length) throw new Error("packet has trailing bytes");
  return bounds;
}

/** The element count of the msgpack array header at `at` and where its first element starts; undefined if none is there. */
export function arrayHeader(b: Uint8Array, at: number): { count: number; off: number } | undefined {
  const c = b[at];
  if (c !== undefined && c >= 0x90 && c <= 0x9f) return { count: c & 0x0f, off: at + 1 };
  if (c === 0xdc && b.length >= at + 3) return { count: (b[at + 1]! << 8) | b[at + 2]!, off: at + 3 };
  if (c === 0xdd && b.length >= at + 5) return { count: readU32(b, at + 1), off: at + 5 };
  return undefined;
}

export const readU32 = (b: Uint8Array, at: number): number => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
const MAX_DEPTH = 8;

/** Values still to skip at each nesting level: skipValue's stack (it is not re-entered). */
const pending = new Float64Array(MAX_DEPTH + 1);

/**
 * End of the msgpack value starting at `off`, or -1 if it is malformed, nests deeper than
 * MAX_DEPTH or runs past the end. A loop with an explicit stack, not a recursion per
 * value: every packet's messages are walked with it (a fifth of the receive path).
 */
function skipValue(b: Uint8Array, off: number): number {
  const n = b.length;
  let d = 0;
  pending[0] = 1;
  for (;;) {
    if (pending[d] === 0) {
      if (d === 0) return off;
      d--;
      continue;
    }
    pending[d]!--;
    if (off >= n) return -1;
    const c = b[off]!;
    let end: number; // of this value, or of its header for a container
    let count = 0; // a container's elements
    if (c <= 0x7f || c >= 0xe0) end = off + 1; // fixint
    else if (c <= 0x8f) {
      end = off + 1; // fixmap
      count = 2 * (c & 0x0f);
    } else if (c <= 0x9f) {
      end = off + 1; // fixarray
      count = c & 0x0f;
    } else if (c <= 0xbf) end = off + 1 + (c & 0x1f); // fixstr
    else
      switch (c) {
        case 0xc0: // nil, false, true
        case 0xc2:
        case 0xc3:
          end = off + 1;
          break;
        case 0xc4: // bin8, str8
        case 0xd9:
          end = off + 2 <= n ? off + 2 + b[off + 1]! : -1;
          break;
        case 0xc5: // bin16, str16
        case 0xda:
          end = off + 3 <= n ? off + 3 + ((b[off + 1]! << 8) | b[off + 2]!) : -1;
          break;
        case 0xc6: // bin32, str32
        case 0xdb:
          end = off + 5 <= n ? off + 5 + readU32(b, off + 1) : -1;
          break;
        case 0xc7: // ext8/16/32: length, type byte, data
          end = off + 2 <= n ? off + 3 + b[off + 1]! : -1;
          break;
        case 0xc8:
          end = off + 3 <= n ? off + 4 + ((b[off + 1]! << 8) | b[off + 2]!) : -1;
          break;
        case 0xc9:
          end = off + 5 <= n ? off + 6 + readU32(b, off + 1) : -1;
          break;
        case 0xcc: // uint8, int8
        case 0xd0:
          end = off + 2;
          break;
        case 0xcd: // uint16, int16
        case 0xd1:
          end = off + 3;
          break;
        case 0xca: // float32, uint32, int32
        case 0xce:
        case 0xd2:
          end = off + 5;
          break;
        case 0xcb: // float64, uint64, int64
        case 0xcf:
        case 0xd3:
          end = off + 9;
          break;
        case 0xd4: // fixext 1/2/4/8/16: type byte + data
          end = off + 3;
          break;
        case 0xd5:
          end = off + 4;
          break;
        case 0xd6:
          end = off + 6;
          break;
        case 0xd7:
          end = off + 10;
          break;
        case 0xd8:
          end = off + 18;
          break;
        case 0xdc: // array16, array32, map16, map32
          if (off + 3 > n) return -1;
          end = off + 3;
          count = (b[off + 1]! << 8) | b[off + 2]!;
          break;
        case 0xdd:
          if (off + 5 > n) return -1;
          end = off + 5;
          count = readU32(b, off + 1);
          break;
        case 0xde:
          if (off + 3 > n) return -1;
          end = off + 3;
          count = 2 * ((b[off + 1]! << 8) | b[off + 2]!);
          break;
        case 0xdf:
          if (off + 5 > n) return -1;
          end = off + 5;
          count = 2 * readU32(b, off + 1);
          break;
        default: // 0xc1 is reserved
          return -1;
      }
    if (end < 0 || end > n) return -1;
    off = end;
    if (count > 0) {
      // Every value takes at least a byte: a count beyond what is left is malformed (and
      // would otherwise loop for up to 2³³ iterations).
      if (count > n - off || d === MAX_DEPTH) return -1;
      pending[++d] = count;
    }
  }
}

/** True if `a` is byte for byte b[start, end) (no subarray: this runs per record of every push-pull). */
export function sameRange(a: Uint8Array, b: Uint8Array, start: number, end: number): boolean {
  if (a.length !== end - start) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[start + i]) return false;
  return true;
}

/** End of the msgpack value at `off`, or -1 if it is malformed, too deep or runs past the end of `b`. */
export const valueEnd = (b: Uint8Array, off: number): number => skipValue(b, off);

/**
 * Where the first key of the msgpack map at `start` begins, or -1 if no non-empty map
 * starts there. msgpackr writes objects with a map16 header; a fixmap is as valid.
 */
export function firstMapKey(b: Uint8Array, start: number): number {
  const c = b[start];
  return c !== undefined && c >= 0x81 && c <= 0x8f ? start + 1 : c === 0xde ? start + 3 : -1;
}

/**
 * The text of the fixstr or str8 at `at` if it ends by `end`, read byte for byte (latin1):
 * a string with non-ASCII bytes reads differently from its UTF-8 text, which only ever
 * makes a lookup by it miss. Undefined if no such string is there.
 */
export function shortStrAt(b: Uint8Array, at: number, end: number): string | undefined {
  const c = b[at];
  if (c === undefined) return undefined;
  const [from, len] = c >= 0xa0 && c <= 0xbf ? [at + 1, c & 0x1f] : c === 0xd9 && at + 2 <= end ? [at + 2, b[at + 1]!] : [0, -1];
  return len >= 0 && from + len <= end ? latin1.decode(b.subarray(from, from + len)) : undefined;
}
const latin1 = new TextDecoder("latin1");

/**
 * The type tag of the encoded message at [start, end) if it begins `{t: <tag>, …}` the way
 * encode() writes our messages, else 0 (then the caller just decodes it).
 */
export function leadingTag(b: Uint8Array, start: number, end: number): number {
  const key = firstMapKey(b, start);
  if (key < 0 || key + 3 > end) return 0;
  return b[key] === 0xa1 && b[key + 1] === 0x74 && b[key + 2]! <= 0x7f ? b[key + 2]! : 0;
}

// "origin", "key", "seq" as fixstr keys.
const ORIGIN = [0xa6, 0x6f, 0x72, 0x69, 0x67, 0x69, 0x6e];
const KEY = [0xa3, 0x6b, 0x65, 0x79];
const SEQ = [0xa3, 0x73, 0x65, 0x71];

/**
 * Where the identity of the user message at [start, end) ends: just after its seq, if it
 * begins `{t, origin, key, seq, …}` the way encode() writes it, else `end`. Receivers
 * handle one message per (origin, key, seq) — a later one with the same three is ignored
 * whatever its payload — so the duplicate filter need not hash the payload.
 */
export function userIdentityEnd(b: Uint8Array, start: number, end: number): number {
  let at = firstMapKey(b, start);
  if (at < 0 || b[at] !== 0xa1 || b[at + 1] !== 0x74) return end;
  at = valueEnd(b, at + 2); // t's value
  for (const key of [ORIGIN, KEY, SEQ]) {
    if (at < 0 || at + key.length > end) return end;
    for (let i = 0; i < key.length; i++) if (b[at + i] !== key[i]) return end;
    at = valueEnd(b, at + key.length);
  }
  return at < 0 || at > end ? end : at;
}

/**
 * 53 bits of hash over an encoded message: its identity in the duplicate filter. Two
 * 32-bit murmur3-style lanes over 4-byte words, finalised into each other; computed in
 * place because a subarray and a BigInt per received message (for a native 64-bit hash)
 * cost more in garbage than the hashing itself. Not collision-resistant against a crafted
 * pair, which needs the cluster key to send in the first place.
 */
export function messageHash(b: Uint8Array, start: number, end: number): number {
  let h1 = 0x9747b28c ^ (end - start);
  let h2 = 0x85ebca6b ^ (end - start);
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const w = b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
    h1 = Math.imul(h1 ^ w, 0xcc9e2d51);
    h1 = rotl32(h1, 13);
    h2 = Math.imul(h2 ^ w, 0x1b873593);
    h2 = rotl32(h2, 17);
    h2 = Math.imul(h2, 5) + 0xe6546b64;
  }
  for (; i < end; i++) {
    h1 = Math.imul(h1 ^ b[i]!, 0xcc9e2d51);
    h2 = Math.imul(h2 ^ b[i]!, 0x1b873593);
  }
  h1 = fmix32(h1 ^ h2);
  h2 = fmix32(h2 ^ h1);
  return (h1 >>> 0) * 0x200000 + (h2 >>> 11);
}

/** Decodes and checks the one message at [start, end); undefined if it is not valid. */
export function decodeMessageAt(plain: Uint8Array, start: number, end: number): Message | undefined {
  try {
    return checkMessage(decode(plain.subarray(start, end)));
  } catch {
    return undefined;
  }
}

/**
 * Decodes a compound packet into valid messages plus a count of invalid ones. Throws
 * when the packet as a whole is not a msgpack array of bounded length.
 */
export function decodePacket(plain: Uint8Array): { messages: Message[]; invalid: number } {
  const bounds = packetBounds(plain);
  const messages: Message[] = [];
  let invalid = 0;
  for (let i = 0; i + 1 < bounds.length; i++) {
    const m = decodeMessageAt(plain, bounds[i]!, bounds[i + 1]!);
    if (m) messages.push(m);
    else invalid++;
  }
  return { messages, invalid };
}
