/**
 * The per-record hash behind the set digests of push-pull: the lease table's state digest
 * and the member list's. 256 bits from two runs of a 128-bit murmur3-style hash (four
 * 32-bit lanes, x86_128 constants) with different seeds, XORed straight into a digest
 * accumulator, so a set's digest is the XOR of its records' hashes, whatever the order.
 * Not a cryptographic hash, on purpose: every lease record is hashed when it enters the
 * table and again when it leaves, and a digest only decides whether a push-pull can be
 * skipped; an accidental collision is ~2⁻¹²⁸, and crafting one needs the cluster key to
 * send records at all.
 */
import { fmix32, rotl32 } from "./hash.ts";

const C1 = 0x239b961b;
const C2 = 0xab0e9789;
const C3 = 0x38b34ae5;
const C4 = 0xa1e38b93;

/** Little-endian 32-bit word at `i`, zero past `end`. */
function word(b: Uint8Array, i: number, end: number): number {
  if (i + 4 <= end) return b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
  let w = 0;
  for (let j = 0; i + j < end; j++) w |= b[i + j]! << (8 * j);
  return w;
}

/** XORs the 128-bit hash of `b` under `seed` into acc[at .. at+16). */
function xorHash128(acc: Uint8Array, at: number, b: Uint8Array, seed: number): void {
  let h1 = seed;
  let h2 = seed;
  let h3 = seed;
  let h4 = seed;
  const n = b.length;
  // Whole 16-byte blocks, then the zero-padded tail: mixing a zero word is a no-op, so
  // the tail goes through the same lane steps without the block's rotate-and-add.
  for (let i = 0; i < n; i += 16) {
    const k1 = rotl32(Math.imul(word(b, i, n), C1), 15);
    const k2 = rotl32(Math.imul(word(b, i + 4, n), C2), 16);
    const k3 = rotl32(Math.imul(word(b, i + 8, n), C3), 17);
    const k4 = rotl32(Math.imul(word(b, i + 12, n), C4), 18);
    h1 ^= Math.imul(k1, C2);
    h2 ^= Math.imul(k2, C3);
    h3 ^= Math.imul(k3, C4);
    h4 ^= Math.imul(k4, C1);
    if (i + 16 > n) break;
    h1 = (Math.imul(rotl32(h1, 19) + h2, 5) + 0x561ccd1b) | 0;
    h2 = (Math.imul(rotl32(h2, 17) + h3, 5) + 0x0bcaa747) | 0;
    h3 = (Math.imul(rotl32(h3, 15) + h4, 5) + 0x96cd1c35) | 0;
    h4 = (Math.imul(rotl32(h4, 13) + h1, 5) + 0x32ac3b17) | 0;
  }
  h1 ^= n;
  h2 ^= n;
  h3 ^= n;
  h4 ^= n;
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  h1 = fmix32(h1);
  h2 = fmix32(h2);
  h3 = fmix32(h3);
  h4 = fmix32(h4);
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  xorWord(acc, at, h1);
  xorWord(acc, at + 4, h2);
  xorWord(acc, at + 8, h3);
  xorWord(acc, at + 12, h4);
}

function xorWord(acc: Uint8Array, at: number, h: number): void {
  acc[at]! ^= h & 255;
  acc[at + 1]! ^= (h >>> 8) & 255;
  acc[at + 2]! ^= (h >>> 16) & 255;
  acc[at + 3]! ^= h >>> 24;
}

/** Size of the accumulator xorRecordHash writes into. */
export const RECORD_HASH_BYTES = 32;

/** XORs the 256-bit hash of a record's wire bytes into `acc` (RECORD_HASH_BYTES long). */
export function xorRecordHash(acc: Uint8Array, bytes: Uint8Array): void {
  xorHash128(acc, 0, bytes, 0);
  xorHash128(acc, 16, bytes, 0x5bd1e995);
}
