/**
 * The udp loop's packet checks (src/backend/udp-packet.ts) as tables: which IPv4
 * packets, inner sources and virtio_net_hdr shapes pass, and the reason for each refusal.
 */
import { describe, expect, test } from "bun:test";
import { inSubnets, ipv4Length, MIN_GSO_SIZE, vnetHdrProblem } from "../../src/backend/udp-packet.ts";
import { ipv4Mask, parseIpv4U32 } from "../../src/net/ipv4.ts";
import { ipv4, tcpPacket, udpPacket, vnetHdr, type VnetHdr } from "./packets.ts";

const SRC = "10.244.2.7";
const DST = "10.244.1.2";
const udp = udpPacket(SRC, DST, 9999, "hello", { partial: true });
const tcp = tcpPacket(SRC, DST, { payloadBytes: 3000 });
const tcpOpts = tcpPacket(SRC, DST, { doff: 8, payloadBytes: 100 });
const icmp = ipv4({ src: SRC, dst: DST, protocol: 1, body: new Uint8Array([8, 0, 0, 0, 0, 1, 0, 1]) });
const fragment = udpPacket(SRC, DST, 9999, "first fragment", { partial: true, fragment: 0x2000 });

/** vnetHdrProblem over `hdr` followed by `packet` in one buffer, as the loop has them. */
function check(hdr: VnetHdr, packet: Uint8Array): string | undefined {
  const buf = new Uint8Array(10 + packet.length);
  buf.set(vnetHdr(hdr));
  buf.set(packet, 10);
  return vnetHdrProblem(buf, 0, 10, ipv4Length(buf, 10, packet.length));
}

const partialUdp = { flags: 1, csumStart: 20, csumOffset: 6 };
const partialTcp = { flags: 1, csumStart: 20, csumOffset: 16 };

describe("vnetHdrProblem", () => {
  test.each([
    ["all zero on a plain packet", {}, icmp],
    ["a partial UDP checksum", partialUdp, udp],
    ["a partial TCP checksum", partialTcp, tcp],
    ["a partial TCP checksum with TCP options", partialTcp, tcpOpts],
    ["TCPv4 segmentation", { ...partialTcp, gsoType: 1, gsoSize: 1448, hdrLen: 40 }, tcp],
    ["TCPv4 segmentation with ECN", { ...partialTcp, gsoType: 0x81, gsoSize: 1448, hdrLen: 52 }, tcp],
    ["hdr_len covering the whole packet", { ...partialTcp, gsoType: 1, gsoSize: 1448, hdrLen: tcp.length }, tcp],
    [`the smallest segment size Linux sends (${MIN_GSO_SIZE})`, { ...partialTcp, gsoType: 1, gsoSize: MIN_GSO_SIZE }, tcp],
    ["a segment size larger than the payload (one segment)", { ...partialTcp, gsoType: 1, gsoSize: 9000 }, tcp],
  ] as const)("accepts %s", (_what, hdr, packet) => {
    expect(check(hdr, packet)).toBeUndefined();
  });

  test.each([
    ["DATA_VALID (senders send such packets plain)", { flags: 2 }, udp, "unknown flags"],
    ["an undefined flag", { flags: 0x81, csumStart: 20, csumOffset: 6 }, udp, "unknown flags"],
    ["UDP segmentation", { ...partialUdp, gsoType: 5, gsoSize: 100 }, udp, "GSO type other than TCPv4"],
    ["UFO", { ...partialUdp, gsoType: 3, gsoSize: 100 }, udp, "GSO type other than TCPv4"],
    ["TCPv6 segmentation", { ...partialTcp, gsoType: 4, gsoSize: 1448 }, tcp, "GSO type other than TCPv4"],
    ["ECN alone", { ...partialTcp, gsoType: 0x80, gsoSize: 1448 }, tcp, "GSO type other than TCPv4"],
    ["hdr_len past the packet", { ...partialTcp, gsoType: 1, gsoSize: 1448, hdrLen: tcp.length + 1 }, tcp, "hdr_len past the end of the packet"],
    ["a partial checksum on a fragment", partialUdp, fragment, "partial checksum on an IP fragment"],
    ["csum_start inside the IP header", { flags: 1, csumStart: 10, csumOffset: 6 }, udp, "csum_start is not the transport header"],
    ["csum_start past the packet", { flags: 1, csumStart: 400, csumOffset: 6 }, udp, "csum_start is not the transport header"],
    ["TCP's checksum offset on UDP (would overwrite payload)", { flags: 1, csumStart: 20, csumOffset: 16 }, udp, "csum_offset is not UDP's checksum field"],
    ["UDP's checksum offset on TCP", { flags: 1, csumStart: 20, csumOffset: 6 }, tcp, "csum_offset is not TCP's checksum field"],
    ["a partial checksum on ICMP", { flags: 1, csumStart: 20, csumOffset: 2 }, icmp, "partial checksum on a packet that is neither TCP nor UDP"],
    ["a TCP header cut short", partialTcp, ipv4({ src: SRC, dst: DST, protocol: 6, body: new Uint8Array(12) }), "TCP header truncated"],
    ["a TCP data offset below 5 words", partialTcp, tcpPacket(SRC, DST, { doff: 4, payloadBytes: 8 }), "TCP header length out of range"],
    ["a TCP data offset past the packet", partialTcp, ipv4({ src: SRC, dst: DST, protocol: 6, body: new Uint8Array([0, 1, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0xf0, 0x10, 0xff, 0xff, 0, 0, 0, 0, 1, 2, 3, 4]) }), "TCP header length out of range"],
    ["a UDP header cut short", partialUdp, ipv4({ src: SRC, dst: DST, protocol: 17, body: new Uint8Array(4) }), "UDP header truncated"],
    ["checksum offsets without NEEDS_CSUM", { csumStart: 20, csumOffset: 6 }, udp, "checksum offsets without NEEDS_CSUM"],
    ["gso_size without a GSO type", { ...partialUdp, gsoSize: 1400 }, udp, "gso_size without a GSO type"],
    ["segmentation without a partial checksum", { gsoType: 1, gsoSize: 1448, hdrLen: 40 }, tcp, "GSO without a partial checksum"],
    ["TCP segmentation of a UDP packet", { ...partialUdp, gsoType: 1, gsoSize: 100 }, udp, "TCP segmentation of a packet that is not TCP"],
    ["segment size 0", { ...partialTcp, gsoType: 1, gsoSize: 0 }, tcp, `gso_size below ${MIN_GSO_SIZE}`],
    ["one-byte segments (a 64 KiB packet → 65 000 packets)", { ...partialTcp, gsoType: 1, gsoSize: 1 }, tcp, `gso_size below ${MIN_GSO_SIZE}`],
  ] as const)("refuses %s", (_what, hdr, packet, why) => {
    expect(check(hdr, packet)).toBe(why);
  });
});

describe("ipv4Length", () => {
  const ok = udpPacket(SRC, DST, 9999, "x");
  const withByte = (i: number, v: number) => {
    const p = ok.slice();
    p[i] = v;
    return p;
  };
  test.each([
    ["a whole packet", ok, ok.length, ok.length],
    ["a packet with trailing bytes (total length wins)", ok, ok.length + 5, ok.length],
    ["fewer bytes than a header", ok.subarray(0, 19), 19, -1],
    ["IPv6", withByte(0, 0x60), ok.length, -1],
    ["a header length below 20", withByte(0, 0x44), ok.length, -1],
    ["a total length below the header", withByte(3, 19), ok.length, -1],
    ["a total length past what arrived", ok, ok.length - 1, -1],
  ] as const)("%s", (_what, packet, avail, want) => {
    const buf = new Uint8Array(Math.max(avail, packet.length));
    buf.set(packet);
    expect(ipv4Length(buf, 0, avail)).toBe(want);
  });
});

describe("inSubnets", () => {
  const nets = [parseIpv4U32("10.244.2.0"), ipv4Mask(24), parseIpv4U32("10.244.9.0"), ipv4Mask(25)];
  test.each([
    ["10.244.2.0", true],
    ["10.244.2.255", true],
    ["10.244.9.127", true],
    ["10.244.9.128", false],
    ["10.244.3.1", false],
    ["192.0.2.12", false],
  ])("%s → %p", (ip, want) => {
    expect(inSubnets(parseIpv4U32(ip), nets)).toBe(want);
  });
  test("no subnets admit nothing", () => {
    expect(inSubnets(parseIpv4U32("10.244.2.1"), [])).toBe(false);
  });
});
