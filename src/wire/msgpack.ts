/**
 * Walking msgpack bytes without decoding them: where a value ends, array headers, short
 * strings and byte-range comparisons. Gossip uses it to find the messages of a packet
 * and the entries of a push-pull; the lease layer to find the records of a state payload.
 * Reads only; never allocates per value.
 */
import { readU32 } from "./bytes.ts";

/** The element count of the msgpack array header at `at` and where its first element starts; undefined if none is there. */
export function arrayHeader(b: Uint8Array, at: number): { count: number; off: number } | undefined {
  const c = b[at];
  if (c !== undefined && c >= 0x90 && c <= 0x9f) return { count: c & 0x0f, off: at + 1 };
  if (c === 0xdc && b.length >= at + 3) return { count: (b[at + 1]! << 8) | b[at + 2]!, off: at + 3 };
  if (c === 0xdd && b.length >= at + 5) return { count: readU32(b, at + 1), off: at + 5 };
  return undefined;
}

const MAX_DEPTH = 8;

/** Values still to skip at each nesting level: valueEnd's stack (it is not re-entered). */
const pending = new Float64Array(MAX_DEPTH + 1);

/**
 * End of the msgpack value starting at `off`, or -1 if it is malformed, nests deeper than
 * MAX_DEPTH or runs past the end. A loop with an explicit stack, not a recursion per
 * value: every received packet's messages and every push-pull's entries are walked with it.
 */
export function valueEnd(b: Uint8Array, off: number): number {
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
