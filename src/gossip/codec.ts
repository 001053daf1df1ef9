/**
 * Gossip packets as bytes: msgpack encode/decode without shared state, compound packets,
 * and finding a packet's messages (and a broadcast's identity) without decoding them, so
 * a receiver can drop copies it has already handled before paying for a decode.
 */
import { Packr } from "msgpackr";
import { arrayHeader, firstMapKey, valueEnd } from "../wire/msgpack.ts";
import { checkMessage } from "./message-check.ts";
import { MAX_MSGS_PER_PACKET, type Message } from "./messages.ts";

// Records/structures off: every packet must decode on its own, with no shared state.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

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
    off = valueEnd(plain, off);
    if (off < 0) throw new Error("packet is truncated or malformed");
    bounds.push(off);
  }
  if (off !== plain.length) throw new Error("packet has trailing bytes");
  return bounds;
}

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

/** Decodes and checks the one message at [start, end); undefined if it is not valid. */
export function decodeMessageAt(plain: Uint8Array, start: number, end: number): Message | undefined {
  try {
    return checkMessage(decode(plain.subarray(start, end)));
  } catch {
    return undefined;
  }
}
