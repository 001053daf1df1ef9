/**
 * What the udp packet loop checks on a datagram before its packet may reach the TUN,
 * as pure functions over the receive buffer (the loop calls them per packet, so they
 * read bytes in place and allocate nothing).
 *
 * The outer source (a peer's public IP) is all that identifies a sender, and anyone on
 * the underlay can forge it. So a packet is accepted only if it could have come from
 * that peer's pods: its inner source must lie in the peer's lease subnet. A marked
 * (offload) datagram also carries a virtio_net_hdr that the receiving kernel acts on
 * (checksum completion at csum_start + csum_offset, TCP segmentation by gso_size), so
 * the header must be exactly of the shape a TUN with CSUM|TSO4|TSO_ECN produces, and
 * consistent with the packet behind it (virtio_net_hdr_from_skb in the kernel:
 * non-GSO headers are zero but for a partial checksum; TUN packets start at the IP
 * header, so csum_start is the IP header length).
 */
import { VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_ECN, VIRTIO_NET_HDR_GSO_NONE, VIRTIO_NET_HDR_GSO_TCPV4 } from "../sys/tun.ts";

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

/** True if `addr` lies in one of the subnets, given as [network, mask, network, mask, ...]. */
export function inSubnets(addr: number, nets: readonly number[]): boolean {
  for (let i = 0; i < nets.length; i += 2) if (((addr & nets[i + 1]!) >>> 0) === nets[i]) return true;
  return false;
}

const u16le = (buf: Uint8Array, at: number): number => buf[at]! | (buf[at + 1]! << 8);

/**
 * Checks the virtio_net_hdr at buf[h..h+10) against the IPv4 packet of `total` bytes at
 * buf[ip..] (already checked by ipv4Length). Returns undefined when the header is one a
 * TUN with CSUM|TSO4|TSO_ECN could have produced for this packet, else why not.
 */
export function vnetHdrProblem(buf: Uint8Array, h: number, ip: number, total: number): string | undefined {
  const flags = buf[h]!;
  const gso = buf[h + 1]!;
  const hdrLen = u16le(buf, h + 2);
  const gsoSize = u16le(buf, h + 4);
  const csumStart = u16le(buf, h + 6);
  const csumOffset = u16le(buf, h + 8);
  const ihl = (buf[ip]! & 0xf) << 2;
  const proto = buf[ip + 9]!;
  if ((flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0) return "unknown flags";
  if (gso !== VIRTIO_NET_HDR_GSO_NONE && gso !== VIRTIO_NET_HDR_GSO_TCPV4 && gso !== (VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN)) return "GSO type other than TCPv4";
  if (hdrLen > total) return "hdr_len past the end of the packet";
  if (flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
    // Checksums are completed before fragmentation: a fragment never carries a partial one.
    if ((((buf[ip + 6]! << 8) | buf[ip + 7]!) & 0x3fff) !== 0) return "partial checksum on an IP fragment";
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
