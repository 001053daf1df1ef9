/**
 * Reads what a test captured with `tcpdump -w` on an Ethernet device: the IPv4 UDP
 * datagrams and the TCP payloads of each connection, as an attacker on the path would
 * have them to replay. Classic pcap only (what tcpdump writes by default), microsecond or
 * nanosecond timestamps, either byte order.
 */

export interface Udp {
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  payload: Uint8Array;
}

/** One TCP connection's bytes in one direction, in sequence order, retransmissions once. */
export interface TcpFlow {
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  payload: Uint8Array;
}

const LINKTYPE_ETHERNET = 1;

const ipv4 = (b: Uint8Array, at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;

/** The IPv4 UDP datagrams and TCP flows in a pcap file's bytes. */
export function readPcap(file: Uint8Array): { udp: Udp[]; tcp: TcpFlow[] } {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const magic = view.getUint32(0, true);
  const little = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!little && view.getUint32(0, false) !== 0xa1b2c3d4 && view.getUint32(0, false) !== 0xa1b23c4d) throw new Error("not a classic pcap file");
  const linkType = view.getUint32(20, little);
  if (linkType !== LINKTYPE_ETHERNET) throw new Error(`pcap link type ${linkType}, expected Ethernet (1)`);
  const udp: Udp[] = [];
  const segments = new Map<string, { flow: Omit<TcpFlow, "payload">; bySeq: Map<number, Uint8Array> }>();
  for (let at = 24; at + 16 <= file.length; ) {
    const caplen = view.getUint32(at + 8, little);
    const frame = file.subarray(at + 16, at + 16 + caplen);
    at += 16 + caplen;
    if (frame.length < 34 || frame[12] !== 0x08 || frame[13] !== 0x00) continue; // IPv4 only
    const ip = 14;
    const ihl = (frame[ip]! & 0x0f) * 4;
    const total = (frame[ip + 2]! << 8) | frame[ip + 3]!;
    const proto = frame[ip + 9];
    const src = ipv4(frame, ip + 12);
    const dst = ipv4(frame, ip + 16);
    const l4 = ip + ihl;
    const end = Math.min(frame.length, ip + total);
    const srcPort = (frame[l4]! << 8) | frame[l4 + 1]!;
    const dstPort = (frame[l4 + 2]! << 8) | frame[l4 + 3]!;
    if (proto === 17) {
      udp.push({ src, srcPort, dst, dstPort, payload: frame.slice(l4 + 8, end) });
    } else if (proto === 6) {
      const seq = ((frame[l4 + 4]! << 24) | (frame[l4 + 5]! << 16) | (frame[l4 + 6]! << 8) | frame[l4 + 7]!) >>> 0;
      const payload = frame.slice(l4 + (frame[l4 + 12]! >> 4) * 4, end);
      if (payload.length === 0) continue;
      const key = `${src}:${srcPort}>${dst}:${dstPort}`;
      let s = segments.get(key);
      if (!s) segments.set(key, (s = { flow: { src, srcPort, dst, dstPort }, bySeq: new Map() }));
      s.bySeq.set(seq, payload);
    }
  }
  const tcp = [...segments.values()].map(({ flow, bySeq }) => {
    // Sequence numbers of one short flow do not wrap in practice; order by the offset from the first.
    const seqs = [...bySeq.keys()];
    const first = seqs[0]!;
    seqs.sort((a, b) => ((a - first) >>> 0) - ((b - first) >>> 0));
    const parts = seqs.map((q) => bySeq.get(q)!);
    const payload = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) payload.set(p, (o += p.length) - p.length);
    return { ...flow, payload };
  });
  return { udp, tcp };
}
