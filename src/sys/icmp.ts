/**
 * ICMP echo over a raw IPv4 socket (root / CAP_NET_RAW), what `ping -c 1` does, for
 * `weft probe`: a connectivity check that needs no iputils. The socket is opened in the
 * calling thread's network namespace. A request goes out once a second until a reply
 * from the target with our identifier and sequence arrives, or the deadline passes.
 */
import { AF_INET, MSG_DONTWAIT, POLLIN, SOCK_CLOEXEC, SOCK_RAW } from "../../ffi/constants.ts";
import { loadLibc } from "../../ffi/libc.ts";
import { ipv4Bytes } from "../net/ipv4.ts";
import { errno, pollOne, strerror } from "./libc.ts";

/** IANA protocol number of ICMP (netinet/in.h IPPROTO_ICMP). */
const IPPROTO_ICMP = 1;
const ECHO_REQUEST = 8;
const ECHO_REPLY = 0;

/** RFC 1071 ones'-complement sum over 16-bit words. */
export function icmpChecksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (b.length % 2) sum += b[b.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** An echo request with identifier `id`, sequence `seq` and a 16-byte payload (pure). */
export function echoRequest(id: number, seq: number): Uint8Array {
  const pkt = new Uint8Array(8 + 16);
  const v = new DataView(pkt.buffer);
  v.setUint8(0, ECHO_REQUEST);
  v.setUint16(4, id, false);
  v.setUint16(6, seq, false);
  pkt.set(new TextEncoder().encode("weft probe ....."), 8);
  v.setUint16(2, icmpChecksum(pkt), false);
  return pkt;
}

/**
 * True when `datagram` (IPv4 header + ICMP, as a raw socket delivers it) is a reply from
 * `from` to one of our requests (identifier `id`, sequence 1..`maxSeq`).
 */
export function isEchoReply(datagram: Uint8Array, from: Uint8Array, id: number, maxSeq: number): boolean {
  if (datagram.length < 20) return false;
  const ihl = (datagram[0]! & 0x0f) * 4;
  if (datagram.length < ihl + 8) return false;
  for (let i = 0; i < 4; i++) if (datagram[12 + i] !== from[i]) return false;
  const v = new DataView(datagram.buffer, datagram.byteOffset + ihl);
  const seq = v.getUint16(6, false);
  return v.getUint8(0) === ECHO_REPLY && v.getUint16(4, false) === id && seq >= 1 && seq <= maxSeq;
}

export interface ProbeResult {
  ok: boolean;
  /** Milliseconds from the latest request to the reply. */
  rttMs?: number;
  sent: number;
  /** The last send failure, when no reply came (e.g. "Network is unreachable"). */
  error?: string;
}

/** Pings `dst` (IPv4) until a reply or `timeoutMs`; throws only when the socket cannot be used. */
export function icmpProbe(dst: string, { timeoutMs = 5000, intervalMs = 1000 }: { timeoutMs?: number; intervalMs?: number } = {}): ProbeResult {
  const addr = ipv4Bytes(dst);
  const c = loadLibc();
  const fd = c.socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (fd < 0) throw new Error(`open raw ICMP socket: ${strerror(errno())} (needs root or CAP_NET_RAW)`);
  try {
    const sa = new Uint8Array(16); // struct sockaddr_in
    new DataView(sa.buffer).setUint16(0, AF_INET, true);
    sa.set(addr, 4);
    const id = (process.pid ^ (Date.now() & 0xffff)) & 0xffff;
    const buf = new Uint8Array(1500);
    const deadline = Date.now() + timeoutMs;
    let seq = 0;
    let sentAt = 0;
    let nextSend = Date.now();
    let error: string | undefined;
    for (;;) {
      const now = Date.now();
      if (now >= nextSend && seq < 0xffff) {
        seq++;
        const pkt = echoRequest(id, seq);
        // No route yet or an unresolved neighbour: try again on the next interval.
        error = c.sendto(fd, pkt, pkt.length, 0, sa, sa.length) < 0 ? strerror(errno()) : undefined;
        sentAt = now;
        nextSend = now + intervalMs;
      }
      for (;;) {
        const n = c.recv(fd, buf, buf.length, MSG_DONTWAIT);
        if (n < 0) break;
        if (isEchoReply(buf.subarray(0, Number(n)), addr, id, seq)) return { ok: true, rttMs: Date.now() - sentAt, sent: seq };
      }
      if (Date.now() >= deadline) return { ok: false, sent: seq, ...(error ? { error } : {}) };
      pollOne(fd, POLLIN, Math.max(1, Math.min(deadline, nextSend) - Date.now()), "wait for ICMP reply");
    }
  } finally {
    c.close(fd);
  }
}
