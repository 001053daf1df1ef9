/**
 * The udp loop's packet checks (src/backend/udp-packet.ts) as tables: which IPv4
 * packets, inner sources and virtio_net_hdr shapes pass, and the reason for each refusal.
 */
import { describe, expect, test } from "bun:test";
import { inSubnets, inSubnets6, ipLength, ipv4Length, ipv6Length, MIN_GSO_SIZE, vnetHdrProblem } from "../../src/backend/udp-packet.ts";
import { ipv6MaskWords, ipv6Words, PrefixTable6 } from "../../src/backend/udp-pump-protocol.ts";
import { ipToBytes, parseCidr, parseIp } from "../../src/net/cidr.ts";
import { ipv4Mask, parseIpv4U32 } from "../../src/net/ipv4.ts";
import { ipv4, ipv6, tcp6Packet, tcpPacket, udp6Packet, udpPacket, vnetHdr, type VnetHdr } from "./packets.ts";

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
  return vnetHdrProblem(buf, 0, 10, ipLength(buf, 10, packet.length));
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

/** A copy of `p` with byte `i` set to `v`. */
function withByte(p: Uint8Array, i: number, v: number): Uint8Array {
  const q = p.slice();
  q[i] = v;
  return q;
}

describe("ipv4Length", () => {
  const ok = udpPacket(SRC, DST, 9999, "x");
  test.each([
    ["a whole packet", ok, ok.length, ok.length],
    ["a packet with trailing bytes (total length wins)", ok, ok.length + 5, ok.length],
    ["fewer bytes than a header", ok.subarray(0, 19), 19, -1],
    ["IPv6", withByte(ok, 0, 0x60), ok.length, -1],
    ["a header length below 20", withByte(ok, 0, 0x44), ok.length, -1],
    ["a total length below the header", withByte(ok, 3, 19), ok.length, -1],
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

describe("IPv6 packets", () => {
  const S6 = "fd00:10:244:2::7";
  const D6 = "fd00:10:244:1::2";
  const udp6 = udp6Packet(S6, D6, 9999, "hello");
  const tcp6 = tcp6Packet(S6, D6, { payloadBytes: 3000 });
  const icmp6 = ipv6({ src: S6, dst: D6, next: 58, body: new Uint8Array([128, 0, 0, 0, 0, 1, 0, 1]) });
  // A UDP packet behind a destination-options extension header (next header 60).
  const withExt = ipv6({ src: S6, dst: D6, next: 60, body: new Uint8Array([17, 0, 1, 4, 0, 0, 0, 0, ...udp6.subarray(40)]) });
  const partialUdp6 = { flags: 1, csumStart: 40, csumOffset: 6 };
  const partialTcp6 = { flags: 1, csumStart: 40, csumOffset: 16 };

  test.each([
    ["all zero on a plain packet", {}, icmp6],
    ["a partial UDP checksum", partialUdp6, udp6],
    ["a partial TCP checksum", partialTcp6, tcp6],
    ["TCPv6 segmentation", { ...partialTcp6, gsoType: 4, gsoSize: 1428, hdrLen: 60 }, tcp6],
    ["TCPv6 segmentation with ECN", { ...partialTcp6, gsoType: 0x84, gsoSize: 1428, hdrLen: 60 }, tcp6],
  ] as const)("accepts %s", (_what, hdr, packet) => {
    expect(check(hdr, packet)).toBeUndefined();
  });

  test.each([
    ["TCPv4 segmentation of an IPv6 packet", { ...partialTcp6, gsoType: 1, gsoSize: 1428 }, tcp6, "GSO type other than TCPv6"],
    ["UDP segmentation", { ...partialUdp6, gsoType: 5, gsoSize: 100 }, udp6, "GSO type other than TCPv6"],
    ["csum_start at IPv4's header length", { flags: 1, csumStart: 20, csumOffset: 6 }, udp6, "csum_start is not the transport header"],
    ["a partial checksum behind an extension header", { flags: 1, csumStart: 48, csumOffset: 6 }, withExt, "csum_start is not the transport header"],
    ["a partial checksum behind an extension header, csum_start at 40", partialUdp6, withExt, "partial checksum on a packet that is neither TCP nor UDP"],
    ["a partial checksum on ICMPv6", { flags: 1, csumStart: 40, csumOffset: 2 }, icmp6, "partial checksum on a packet that is neither TCP nor UDP"],
    ["TCP's checksum offset on UDP", { flags: 1, csumStart: 40, csumOffset: 16 }, udp6, "csum_offset is not UDP's checksum field"],
    ["a segment size below Linux's minimum", { ...partialTcp6, gsoType: 4, gsoSize: 8 }, tcp6, `gso_size below ${MIN_GSO_SIZE}`],
    ["a TCP header cut short", partialTcp6, ipv6({ src: S6, dst: D6, next: 6, body: new Uint8Array(12) }), "TCP header truncated"],
  ] as const)("refuses %s", (_what, hdr, packet, why) => {
    expect(check(hdr, packet)).toBe(why);
  });

  test.each([
    ["a whole packet", udp6, udp6.length, udp6.length],
    ["trailing bytes (payload length wins)", udp6, udp6.length + 3, udp6.length],
    ["fewer bytes than the fixed header", udp6.subarray(0, 39), 39, -1],
    ["IPv4", udpPacket("10.244.2.7", "10.244.1.2", 1, "x"), 29, -1],
    ["a payload length past what arrived", udp6, udp6.length - 1, -1],
    ["a jumbogram (payload length 0)", withByte(withByte(udp6, 4, 0), 5, 0), udp6.length, -1],
  ] as const)("ipv6Length: %s", (_what, packet, avail, want) => {
    const buf = new Uint8Array(Math.max(avail, packet.length));
    buf.set(packet);
    expect(ipv6Length(buf, 0, avail)).toBe(want);
    // ipLength dispatches on the version.
    if (packet[0]! >> 4 === 6) expect(ipLength(buf, 0, avail)).toBe(want);
  });

  test("inSubnets6 and the IPv6 prefix table find addresses by the longest prefix, reading in place", () => {
    const net = (cidr: string) => {
      const c = parseCidr(cidr);
      const m = ipv6MaskWords(c.prefix);
      return [...ipv6Words(ipToBytes(c)).map((x, i) => (x & m[i]!) >>> 0), ...m];
    };
    const nets = Uint32Array.from([...net("fd00:10:244:2::/64"), ...net("fd00:10:244:9::/65"), ...net("2001:db8::12/128")]);
    const at = (ip: string) => {
      const buf = new Uint8Array(24);
      buf.set(ipToBytes(parseIp(ip)), 8);
      return buf;
    };
    for (const [ip, want] of [["fd00:10:244:2::7", true], ["fd00:10:244:2:ffff::", true], ["fd00:10:244:9:7fff::1", true], ["fd00:10:244:9:8000::1", false], ["fd00:10:244:3::1", false], ["fd01:10:244:2::7", false], ["2001:db8::12", true], ["2001:db8::13", false], ["2001:db9::12", false]] as const) {
      expect([ip, inSubnets6(at(ip), 8, nets)]).toEqual([ip, want]);
    }
    expect(inSubnets6(at("fd00:10:244:2::7"), 8, new Uint32Array(0))).toBe(false);
    const t = new PrefixTable6([
      { net: ipToBytes(parseIp("fd00:10:244::")), prefix: 56, value: "network" },
      { net: ipToBytes(parseIp("fd00:10:244:2::")), prefix: 64, value: "b" },
      { net: ipToBytes(parseIp("2001:db8::12")), prefix: 128, value: "host" },
    ]);
    expect(["fd00:10:244:2::5", "fd00:10:244:3::5", "fd00:10:245::5", "2001:db8::12", "2001:db8::13"].map((ip) => t.lookup(at(ip), 8))).toEqual(["b", "network", undefined, "host", undefined]);
  });
});
