/**
 * Non-cryptographic hashes of byte ranges (MurmurHash3 building blocks): identities in
 * gossip's duplicate filter, keys of the byte-interning caches. Integrity and
 * authenticity come from the sealed envelope, never from these.
 */

/** Rotates a 32-bit value left by `r` bits. */
export const rotl32 = (x: number, r: number): number => (x << r) | (x >>> (32 - r));

/** MurmurHash3's finaliser: every input bit affects every output bit. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * 53 bits of hash over b[start, end): two 32-bit murmur3-style lanes over 4-byte words,
 * finalised into each other. Computed in place because a subarray and a BigInt per call
 * (for a native 64-bit hash) would cost more in garbage than the hashing: it runs for
 * every received message. Not collision-resistant against a crafted pair, which needs
 * the cluster key to send in the first place.
 */
export function hash53(b: Uint8Array, start: number, end: number): number {
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
