/**
 * What the udp packet loop checks on a datagram before its packet may reach the TUN,
 * as pure functions over the receive buffer (the loop calls them per packet, so they
 * read bytes in place and allocate nothing). IPv4 and IPv6 packets alike.
 *
 * The outer source (a peer's public IP) is all that identifies a sender, and anyone on
 * the underlay can forge it. So a packet is accepted only if it could have come from
 * that peer's pods: its inner source must lie in the peer's lease subnet of the packet's
 * family. A marked (offload) datagram also carries a virtio_net_hdr that the receiving
 * kernel acts on (checksum completion at csum_start + csum_offset, TCP segmentation by
 * gso_size), so the header must be exactly of the shape a TUN with
 * CSUM|TSO4|TSO6|TSO_ECN produces, and consistent with the packet behind it
 * (virtio_net_hdr_from_skb in the kernel: non-GSO headers are zero but for a partial
 * checksum; TUN packets start at the IP header, so csum_start is the IP header length:
 * IPv4's IHL, or 40 for an IPv6 packet whose next header is TCP or UDP; a partial
 * checksum behind IPv6 extension headers is refused, the kernel does not make one for
 * the packets it hands a TUN).
 */
import { VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_ECN, VIRTIO_NET_HDR_GSO_NONE, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6 } from "../sys/tun.ts";

const PROTO_TCP = 6;
const PROTO_UDP = 17;
/** Offsets of the checksum field inside the TCP and UDP headers. */
const TCP_CSUM_OFFSET = 16;
const UDP_CSUM_OFFSET = 6;
/** Linux never sends TCP segments smaller than this (TCP_MIN_SND_MSS); a smaller gso_size only multiplies segments. */
export const MIN_GSO_SIZE = 48;
const GSO_SIZE_TOO_SMALL = `gso_size below ${MIN_GSO_SIZE}`;

/**
 * Length of the IPv4 packet at buf[ip..ip+avail): its total-length field, or -1 when it
 * is not IPv4, its header is short or malformed, or it claims more bytes than arrived.
 */
export function ipv4Length(buf: Uint8Array, ip: number, avail: number): number {
  if (avail < 20) return -1;
  const b0 = buf[ip]!;
  const ihl = (b0 & 0xf) << 2;
  if (b0 >> 4 !== 4 || ihl < 20) return -1;
  const total = (buf[ip + 2]! << 8) | buf[ip + 3]!;
  return total < ihl || total > avail ? -1 : total;
}

/** The fixed IPv6 header's length. */
export const IPV6_HEADER = 40;

/**
 * Length of the IPv6 packet at buf[ip..ip+avail): 40 + its payload-length field, or -1
 * when it is not IPv6, its header is short, it claims more bytes than arrived, or it is a
 * jumbogram (payload length 0: a TUN never carries one).
 */
export function ipv6Length(buf: Uint8Array, ip: number, avail: number): number {
  if (avail < IPV6_HEADER || buf[ip]! >> 4 !== 6) return -1;
  const payload = (buf[ip + 4]! << 8) | buf[ip + 5]!;
  const total = IPV6_HEADER + payload;
  return payload === 0 || total > avail ? -1 : total;
}

/** ipv4Length or ipv6Length, by the version nibble. */
export const ipLength = (buf: Uint8Array, ip: number, avail: number): number => (avail > 0 && buf[ip]! >> 4 === 6 ? ipv6Length(buf, ip, avail) : ipv4Length(buf, ip, avail));

/** True if `addr` lies in one of the subnets, given as [network, mask, network, mask, ...]. */
export function inSubnets(addr: number, nets: readonly number[]): boolean {
  for (let i = 0; i < nets.length; i += 2) if (((addr & nets[i + 1]!) >>> 0) === nets[i]) return true;
  return false;
}

/** Big-endian u32 at buf[at]. */
const u32be = (buf: Uint8Array, at: number): number => ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;

/**
 * True if the IPv6 address at buf[at..at+16) lies in one of the subnets, given as eight
 * words each: the network's four big-endian u32 words, then the mask's.
 */
export function inSubnets6(buf: Uint8Array, at: number, nets: Uint32Array): boolean {
  const a0 = u32be(buf, at), a1 = u32be(buf, at + 4), a2 = u32be(buf, at + 8), a3 = u32be(buf, at + 12);
  for (let i = 0; i < nets.length; i += 8) {
    if (((a0 & nets[i + 4]!) >>> 0) === nets[i] && ((a1 & nets[i + 5]!) >>> 0) === nets[i + 1] && ((a2 & nets[i + 6]!) >>> 0) === nets[i + 2] && ((a3 & nets[i + 7]!) >>> 0) === nets[i + 3]) return true;
  }
  return false;
}

const u16le = (buf: Uint8Array, at: number): number => buf[at]! | (buf[at + 1]! << 8);

/**
 * Checks the virtio_net_hdr at buf[h..h+10) against the IPv4 or IPv6 packet of `total`
 * bytes at buf[ip..] (already checked by ipLength). Returns undefined when the header is
 * one a TUN with CSUM|TSO4|TSO6|TSO_ECN could have produced for this packet, else why not.
 */
export function vnetHdrProblem(buf: Uint8Array, h: number, ip: number, total: number): string | undefined {
  const flags = buf[h]!;
  const gso = buf[h + 1]!;
  const hdrLen = u16le(buf, h + 2);
  const gsoSize = u16le(buf, h + 4);
  const csumStart = u16le(buf, h + 6);
  const csumOffset = u16le(buf, h + 8);
  const v6 = buf[ip]! >> 4 === 6;
  const ihl = v6 ? IPV6_HEADER : (buf[ip]! & 0xf) << 2;
  // IPv6's next header: only TCP or UDP right after the fixed header can carry a partial checksum.
  const proto = v6 ? buf[ip + 6]! : buf[ip + 9]!;
  const tcpGso = v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
  if ((flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0) return "unknown flags";
  if (gso !== VIRTIO_NET_HDR_GSO_NONE && gso !== tcpGso && gso !== (tcpGso | VIRTIO_NET_HDR_GSO_ECN)) return v6 ? "GSO type other than TCPv6" : "GSO type other than TCPv4";
  if (hdrLen > total) return "hdr_len past the end of the packet";
  if (flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
    // Checksums are completed before fragmentation: a fragment never carries a partial one.
    if (!v6 && (((buf[ip + 6]! << 8) | buf[ip + 7]!) & 0x3fff) !== 0) return "partial checksum on an IP fragment";
    if (csumStart !== ihl) return "csum_start is not the transport header";
    if (proto === PROTO_TCP) {
      if (csumOffset !== TCP_CSUM_OFFSET) return "csum_offset is not TCP's checksum field";
      if (ihl + 20 > total) return "TCP header truncated";
      const doff = (buf[ip + ihl + 12]! >> 4) << 2;
      if (doff < 20 || ihl + doff > total) return "TCP header length out of range";
    } else if (proto === PROTO_UDP) {
      if (csumOffset !== UDP_CSUM_OFFSET) return "csum_offset is not UDP's checksum field";
      if (ihl + 8 > total) return "UDP header truncated";
    } else return "partial checksum on a packet that is neither TCP nor UDP";
  } else if (csumStart !== 0 || csumOffset !== 0) return "checksum offsets without NEEDS_CSUM";
  if (gso === VIRTIO_NET_HDR_GSO_NONE) {
    if (gsoSize !== 0) return "gso_size without a GSO type";
  } else {
    if (!(flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)) return "GSO without a partial checksum";
    if (proto !== PROTO_TCP) return "TCP segmentation of a packet that is not TCP";
    if (gsoSize < MIN_GSO_SIZE) return GSO_SIZE_TOO_SMALL;
  }
  return undefined;
}
