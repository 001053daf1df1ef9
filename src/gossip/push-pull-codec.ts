/**
 * The push-pull message on the wire, written and read without a whole-message msgpack
 * round trip. A full exchange lists every member (a thousand entries in a large cluster)
 * and after the first few exchanges nearly all of them are entries the receiver already
 * holds at the same incarnation. So each member's entry is encoded once per change
 * (Membership caches it), a message is the cached entries under a hand-written header,
 * and the reader leaves out, undecoded, the entries byte-identical to the one the
 * receiver holds (`held`). It is the same msgpack map `encode()` would write
 * ({join, from, members, user, digest?}), so a plain decode reads it too, and anything
 * not laid out this way is read by a plain decode.
 */
import { type PushPullMember, STATE_CODE } from "./messages.ts";
import { arrayHeader, firstMapKey, sameRange, shortStrAt, valueEnd } from "../wire/msgpack.ts";
import { decode, encode } from "./codec.ts";
import type { MemberState } from "./types.ts";

/** A member as push-pull lists it. */
export interface MemberEntrySource {
  name: string;
  addr: string;
  incarnation: number;
  state: MemberState;
  meta?: Uint8Array;
}

/** One member's entry, `{name, addr, inc, state, meta?}` (name first: the reader relies on it). */
export function encodeMemberEntry(s: MemberEntrySource): Uint8Array {
  const m: PushPullMember = { name: s.name, addr: s.addr, inc: s.incarnation, state: STATE_CODE[s.state] };
  if (s.meta) m.meta = s.meta; // last, so the encoding keeps the schema's key order
  return encode(m);
}

export interface PushPullHead {
  join: boolean;
  from: string;
  digest?: Uint8Array;
}

const utf8 = new TextEncoder();

/** msgpack str or bin header for `n` bytes (the shortest form, as msgpackr writes it). */
function header(n: number, kind: "str" | "bin"): number[] {
  if (kind === "str" && n < 32) return [0xa0 | n];
  const [c8, c16, c32] = kind === "str" ? [0xd9, 0xda, 0xdb] : [0xc4, 0xc5, 0xc6];
  if (n < 0x100) return [c8, n];
  if (n < 0x10000) return [c16, n >> 8, n & 255];
  return [c32, (n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
}

/** msgpack array header for n elements, the shortest form. */
function arrayHead(n: number): number[] {
  if (n < 16) return [0x90 | n];
  if (n < 0x10000) return [0xdc, n >> 8, n & 255];
  return [0xdd, (n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
}

const strBytes = (s: string): number[] => {
  const b = utf8.encode(s);
  return [...header(b.length, "str"), ...b];
};

/** The whole message: `entries` are encodeMemberEntry() results, `user` the delegate's state. */
export function encodePushPull(head: PushPullHead, entries: readonly Uint8Array[], user: Uint8Array): Uint8Array {
  const n = entries.length;
  const pre = [
    0x80 | (head.digest ? 5 : 4),
    ...strBytes("join"), head.join ? 0xc3 : 0xc2,
    ...strBytes("from"), ...strBytes(head.from),
    ...strBytes("members"), ...arrayHead(n),
  ];
  const userHead = [...strBytes("user"), ...header(user.length, "bin")];
  const digestHead = head.digest ? [...strBytes("digest"), ...header(head.digest.length, "bin")] : [];
  let size = pre.length + userHead.length + user.length + digestHead.length + (head.digest?.length ?? 0);
  for (const e of entries) size += e.length;
  const out = new Uint8Array(size);
  out.set(pre, 0);
  let off = pre.length;
  for (const e of entries) {
    out.set(e, off);
    off += e.length;
  }
  out.set(userHead, off);
  off += userHead.length;
  out.set(user, off);
  off += user.length;
  if (head.digest) {
    out.set(digestHead, off);
    out.set(head.digest, off + digestHead.length);
  }
  return out;
}

/** Keys of the push-pull message; any other key is dropped (the schema strips it anyway). */
const KEYS = new Set(["join", "from", "members", "user", "digest"]);

/**
 * Decodes a push-pull message for the schema check. Member entries byte-identical to
 * `held(name)` are left out of `members` and counted in `skipped`; the caller must treat
 * them exactly as merging them would (a no-op for the entries it offers as held). A
 * message of more than `maxMembers` entries is decoded whole, for the check to reject.
 * Throws on malformed msgpack, as decode() does.
 */
export function readPushPull(b: Uint8Array, held: (name: string) => Uint8Array | undefined, maxMembers: number): { value: unknown; skipped: number } {
  const walked = walk(b, held, maxMembers);
  return walked ?? { value: decode(b), skipped: 0 };
}

function walk(b: Uint8Array, held: (name: string) => Uint8Array | undefined, maxMembers: number): { value: unknown; skipped: number } | undefined {
  const c = b[0];
  const [pairs, start] = c !== undefined && c >= 0x80 && c <= 0x8f ? [c & 0x0f, 1] : c === 0xde && b.length >= 3 ? [(b[1]! << 8) | b[2]!, 3] : [-1, 0];
  if (pairs < 0) return undefined;
  const value: Record<string, unknown> = {};
  let skipped = 0;
  let off = start;
  for (let p = 0; p < pairs; p++) {
    const keyEnd = valueEnd(b, off);
    if (keyEnd < 0) return undefined;
    const key = decode(b.subarray(off, keyEnd));
    if (typeof key !== "string") return undefined;
    off = keyEnd;
    const end = valueEnd(b, off);
    if (end < 0) return undefined;
    if (key === "members") {
      const head = arrayHeader(b, off);
      if (!head || head.count > maxMembers) return undefined;
      const members: unknown[] = [];
      let at = head.off;
      for (let i = 0; i < head.count; i++) {
        const e = valueEnd(b, at);
        if (e < 0) return undefined;
        const name = entryName(b, at, e);
        const mine = name === undefined ? undefined : held(name);
        if (mine && sameRange(mine, b, at, e)) skipped++;
        else members.push(decode(b.subarray(at, e)));
        at = e;
      }
      value.members = members;
    } else if (KEYS.has(key)) value[key] = decode(b.subarray(off, end));
    off = end;
  }
  return off === b.length ? { value, skipped } : undefined;
}

/** The name of the member entry at [start, end) if it begins `{name: <str>, …}` (as encodeMemberEntry writes it). */
function entryName(b: Uint8Array, start: number, end: number): string | undefined {
  const key = firstMapKey(b, start);
  // fixstr "name"
  if (key < 0 || key + 6 > end || b[key] !== 0xa4 || b[key + 1] !== 0x6e || b[key + 2] !== 0x61 || b[key + 3] !== 0x6d || b[key + 4] !== 0x65) return undefined;
  return shortStrAt(b, key + 5, end);
}
