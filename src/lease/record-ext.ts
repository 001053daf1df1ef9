/**
 * The record's extension element: the 13th cell of the wire tuple, one msgpack bin
 * holding type-length-value entries. Fields that came after the 12-cell tuple go here
 * (the IPv6 subnet and public address), so a record without them keeps the 12-cell
 * encoding byte for byte, and a field added by a later version rides along in a record
 * this version accepts, stores and relays unchanged: the bin is kept verbatim (its
 * bytes are part of the record's canonical encoding, its digest and its merge order).
 *
 * Entry: [type u8][length u8][value]. Entries are sorted by strictly ascending type, and
 * the element is left out when there is none, so every record has one encoding. A type
 * with the CRITICAL bit (0x80) is one a receiver must understand: a version that does not
 * know it rejects the record instead of carrying it (for a field that changes what the
 * rest of the record means). Pure; no FFI, no I/O.
 */

/** The IPv6 subnet: 16-byte network address, then the prefix length (17 bytes). */
export const EXT_IPV6_SUBNET = 0x01;
/** The IPv6 public (underlay) address: 16 bytes. */
export const EXT_IPV6_PUBLIC_IP = 0x02;
/** Types with this bit must be understood by the receiver, or the record is rejected. */
export const EXT_CRITICAL = 0x80;
/** Largest extension element accepted, bytes: a record must still fit one gossip broadcast. */
export const EXT_MAX_BYTES = 512;

/** What this version reads from an extension element. */
export interface ExtFields {
  ipv6Subnet?: { addr: Uint8Array; prefix: number };
  publicIpv6?: Uint8Array;
  /** Entries of types this version does not know (carried, not read). */
  unknown: number;
}

/** The fields of a well-formed element, or why it is malformed. */
export function parseExt(b: Uint8Array): ExtFields | string {
  if (b.length < 2) return "extension element is empty (a record without extensions has 12 cells)";
  if (b.length > EXT_MAX_BYTES) return `extension element is ${b.length} bytes, more than ${EXT_MAX_BYTES}`;
  const out: ExtFields = { unknown: 0 };
  let prev = -1;
  let off = 0;
  while (off < b.length) {
    if (off + 2 > b.length) return `extension entry at byte ${off} is truncated`;
    const type = b[off]!;
    const len = b[off + 1]!;
    const value = b.subarray(off + 2, off + 2 + len);
    if (value.length !== len) return `extension entry type ${type} claims ${len} bytes, ${value.length} left`;
    if (type <= prev) return `extension entries are not in strictly ascending type order (${type} after ${prev})`;
    prev = type;
    if (type === EXT_IPV6_SUBNET) {
      if (len !== 17 || value[16]! > 128) return "extension IPv6 subnet must be 16 address bytes and a prefix length 0..128";
      out.ipv6Subnet = { addr: value.subarray(0, 16), prefix: value[16]! };
    } else if (type === EXT_IPV6_PUBLIC_IP) {
      if (len !== 16) return "extension IPv6 public address must be 16 bytes";
      out.publicIpv6 = value;
    } else if (type & EXT_CRITICAL) {
      return `extension entry type 0x${type.toString(16)} is critical and unknown to this version (upgrade weft)`;
    } else out.unknown++;
    off += 2 + len;
  }
  return out;
}

/** The element for the given IPv6 fields, or undefined when there are none (a 12-cell record). */
export function buildExt(f: { ipv6Subnet?: { addr: Uint8Array; prefix: number }; publicIpv6?: Uint8Array }): Uint8Array | undefined {
  const parts: number[] = [];
  if (f.ipv6Subnet) parts.push(EXT_IPV6_SUBNET, 17, ...f.ipv6Subnet.addr, f.ipv6Subnet.prefix);
  if (f.publicIpv6) parts.push(EXT_IPV6_PUBLIC_IP, 16, ...f.publicIpv6);
  return parts.length ? Uint8Array.from(parts) : undefined;
}
