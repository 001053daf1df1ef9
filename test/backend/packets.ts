/**
 * Builders for raw IPv4 and IPv6 packets and udp-backend datagrams, for the validator
 * unit tests and the kernel tests that inject crafted datagrams. Pure; every header
 * checksum that the kernel checks is computed, so a packet is refused only for what the
 * test means.
 */
import { VNET_HDR_SIZE } from "../../src/sys/tun.ts";
import { WEFT_OFFLOAD_MARK } from "../../src/backend/udp-pump-protocol.ts";
import { ipToBytes, parseIp } from "../../src/net/cidr.ts";

const octets = (ip: string): number[] => ip.split(".").map(Number);

/** Ones' complement sum of 16-bit words, folded (not inverted). */
export function onesSum(bytes: Uint8Array | number[], start = 0): number {
  let sum = start;
  for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i]! << 8) | (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

export interface Ipv4Options {
  src: string;
  dst: string;
  protocol: number;
  /** Bytes after the IP header (transport header + payload). */
  body: Uint8Array;
  /** Flags (3 bits) and fragment offset (13 bits) as the 16-bit header field. */
  fragment?: number;
}

/** An IPv4 packet with a 20-byte header and a correct header checksum. */
export function ipv4({ src, dst, protocol, body, fragment = 0 }: Ipv4Options): Uint8Array {
  const p = new Uint8Array(20 + body.length);
  const total = p.length;
  p.set([0x45, 0, total >> 8, total & 0xff, 0, 1, fragment >> 8, fragment & 0xff, 64, protocol, 0, 0, ...octets(src), ...octets(dst)]);
  const sum = ~onesSum(p.subarray(0, 20)) & 0xffff;
  p[10] = sum >> 8;
  p[11] = sum & 0xff;
  p.set(body, 20);
  return p;
}

/** The folded pseudo-header sum a CHECKSUM_PARTIAL packet carries in its checksum field. */
function pseudoSum(src: string, dst: string, protocol: number, length: number): number {
  return onesSum([...octets(src), ...octets(dst), 0, protocol, length >> 8, length & 0xff]);
}

/** IPv4/UDP to dst:port. `partial`: checksum field holds the pseudo-header sum (for NEEDS_CSUM); else 0 (no checksum). */
export function udpPacket(src: string, dst: string, port: number, payload: Uint8Array | string, { partial = false, fragment = 0 } = {}): Uint8Array {
  const data = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  const len = 8 + data.length;
  const body = new Uint8Array(len);
  body.set([0x9c, 0x40, port >> 8, port & 0xff, len >> 8, len & 0xff, 0, 0]);
  body.set(data, 8);
  if (partial) {
    const s = pseudoSum(src, dst, 17, len);
    body[6] = s >> 8;
    body[7] = s & 0xff;
  }
  return ipv4({ src, dst, protocol: 17, body, fragment });
}

/** IPv4/TCP (ACK) with a `doff`-word header and `payloadBytes` of zeros; checksum field = pseudo-header sum. */
export function tcpPacket(src: string, dst: string, { doff = 5, payloadBytes = 0 } = {}): Uint8Array {
  return ipv4({ src, dst, protocol: 6, body: tcpSegment(doff, payloadBytes, (len) => pseudoSum(src, dst, 6, len)) });
}

/** A TCP ACK segment 40000 → 9000 of a `doff`-word header and `payloadBytes` zeros, its checksum field `sum(length)`. */
function tcpSegment(doff: number, payloadBytes: number, sum: (len: number) => number): Uint8Array {
  const len = doff * 4 + payloadBytes;
  const body = new Uint8Array(len);
  body.set([0x9c, 0x40, 0x23, 0x28, 0, 0, 0, 1, 0, 0, 0, 1, doff << 4, 0x10, 0xff, 0xff]);
  const s = sum(len);
  body[16] = s >> 8;
  body[17] = s & 0xff;
  return body;
}

export interface VnetHdr {
  flags?: number;
  gsoType?: number;
  hdrLen?: number;
  gsoSize?: number;
  csumStart?: number;
  csumOffset?: number;
}

/** struct virtio_net_hdr, little-endian as a TUN with the host's byte order writes it. */
export function vnetHdr(h: VnetHdr = {}): Uint8Array {
  const b = new Uint8Array(VNET_HDR_SIZE);
  const v = new DataView(b.buffer);
  v.setUint8(0, h.flags ?? 0);
  v.setUint8(1, h.gsoType ?? 0);
  v.setUint16(2, h.hdrLen ?? 0, true);
  v.setUint16(4, h.gsoSize ?? 0, true);
  v.setUint16(6, h.csumStart ?? 0, true);
  v.setUint16(8, h.csumOffset ?? 0, true);
  return b;
}

/** A datagram in weft's marked (offload) framing: mark, virtio_net_hdr, packet. */
export function marked(hdr: Uint8Array, packet: Uint8Array): Uint8Array {
  const d = new Uint8Array(1 + hdr.length + packet.length);
  d[0] = WEFT_OFFLOAD_MARK;
  d.set(hdr, 1);
  d.set(packet, 1 + hdr.length);
  return d;
}

const bytes6 = (ip: string): number[] => [...ipToBytes(parseIp(ip))];

/** An IPv6 packet (fixed 40-byte header, `next` header, hop limit 64) carrying `body`. */
export function ipv6({ src, dst, next, body }: { src: string; dst: string; next: number; body: Uint8Array }): Uint8Array {
  const p = new Uint8Array(40 + body.length);
  p.set([0x60, 0, 0, 0, body.length >> 8, body.length & 0xff, next, 64, ...bytes6(src), ...bytes6(dst)]);
  p.set(body, 40);
  return p;
}

/** The folded IPv6 pseudo-header sum (RFC 8200 8.1) a CHECKSUM_PARTIAL packet carries. */
function pseudoSum6(src: string, dst: string, next: number, length: number): number {
  return onesSum([...bytes6(src), ...bytes6(dst), 0, 0, length >> 8, length & 0xff, 0, 0, 0, next]);
}

/** IPv6/UDP to dst:port with the pseudo-header sum in the checksum field (for NEEDS_CSUM). */
export function udp6Packet(src: string, dst: string, port: number, payload: string): Uint8Array {
  const data = new TextEncoder().encode(payload);
  const len = 8 + data.length;
  const body = new Uint8Array(len);
  body.set([0x9c, 0x40, port >> 8, port & 0xff, len >> 8, len & 0xff, 0, 0]);
  body.set(data, 8);
  const s = pseudoSum6(src, dst, 17, len);
  body[6] = s >> 8;
  body[7] = s & 0xff;
  return ipv6({ src, dst, next: 17, body });
}

/** IPv6/TCP (ACK) with a `doff`-word header and `payloadBytes` of zeros; checksum field = pseudo-header sum. */
export function tcp6Packet(src: string, dst: string, { doff = 5, payloadBytes = 0 } = {}): Uint8Array {
  return ipv6({ src, dst, next: 6, body: tcpSegment(doff, payloadBytes, (len) => pseudoSum6(src, dst, 6, len)) });
}
