/** Big-endian integers read in place from byte buffers (msgpack lengths, IPv4 headers, sealed envelopes). */

/** The big-endian unsigned 32-bit integer at b[at, at+4). */
export const readU32 = (b: Uint8Array, at: number): number => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
