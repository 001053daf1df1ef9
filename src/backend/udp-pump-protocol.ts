/**
 * What the udp backend's main thread and its packet Worker share: message shapes, the
 * control words and counter slots in SharedArrayBuffers. Counters are written only by
 * the worker (plain Float64 stores, flushed every loop slice) and read by the main
 * thread for /metrics, so no message round trip is needed to read them.
 */
import { ipv4Mask } from "../net/ipv4.ts";

/** Int32 control words. */
export const CTRL_STOP = 0; // main → worker: 1 = leave the loop
export const CTRL_DONE = 1; // worker → main: 1 = loop left, fds no longer touched
export const CTRL_TUN_DEAD = 2; // worker → main: 1 = TUN fd reported an error (device deleted)
export const CTRL_STATE = 3; // 0 = not started, 1 = worker owns the fds, 2 = main gave up before start
export const CTRL_WORDS = 4;

/** Float64 counter slots. */
export const C_TX_PACKETS = 0; // TUN → UDP, encapsulated and sent
export const C_TX_BYTES = 1;
export const C_RX_PACKETS = 2; // UDP → TUN, decapsulated and written
export const C_RX_BYTES = 3;
export const C_DROP_NO_ROUTE = 4; // from the TUN, destination in no peer subnet
export const C_DROP_INVALID = 5; // not IP / truncated / received for a subnet not ours
export const C_DROP_IO = 6; // sendto/write failed (buffers full, peer unreachable)
export const C_LOOPS = 7; // loop slices run (liveness)
export const C_TX_SUPER = 8; // TUN → UDP datagrams that carried an offloaded (GSO/partial-checksum) packet
export const C_RX_SUPER = 9;
export const C_DROP_SENDER = 10; // UDP datagram from an address that is no peer's public IP
export const C_DROP_SPOOFED = 11; // from a peer, but the inner source is outside that peer's subnet
export const C_DROP_OFFLOAD = 12; // marked datagram (or own TUN read) whose virtio_net_hdr does not fit its packet
export const COUNTER_SLOTS = 13;

/**
 * Wire format. A datagram is either a plain IPv4 or IPv6 packet (flannel's udp format),
 * or, with offload, WEFT_OFFLOAD_MARK (a byte whose version nibble is 5, never an IP
 * packet) + the 10-byte virtio_net_hdr the sending TUN produced + the packet, which may
 * be a TCP super-packet up to 64 KiB with a partial checksum. The receiving TUN gets the
 * same header and segments/finishes it in the kernel, so neither side segments in JS.
 * The receiver accepts a header only in the shapes udp-packet.ts allows. The outer
 * datagram goes over IPv4 or IPv6, whichever the two nodes share (IPv4 first).
 */
export const WEFT_OFFLOAD_MARK = 0x57;

export interface PumpPeer {
  /** One of the peer's lease subnets, IPv4 or IPv6 ("10.244.2.0/24", "fd00:10:244:2::/64"). */
  subnet: string;
  /** The peer's public address the datagrams go to (IPv4 or IPv6). */
  ip: string;
  /** Its other public address, if any: datagrams from it are the peer's too. */
  otherIp?: string;
}

export type ToWorker =
  | {
      type: "start";
      tunFd: number;
      /** UDP sockets on the IPv4 and the IPv6 public address (-1: none). */
      udpFd: number;
      udpFd6: number;
      port: number;
      /** This node's own subnets (each family it runs): only packets for them are decapsulated. */
      ownSubnets: string[];
      /** The TUN fd was opened with a virtio_net_hdr and TSO/checksum offload. */
      offload: boolean;
      ctrl: SharedArrayBuffer;
      counters: SharedArrayBuffer;
    }
  | { type: "peers"; peers: PumpPeer[] }
  | { type: "tun"; fd: number };

export type FromWorker = { type: "started" } | { type: "error"; message: string } | { type: "stopped" };

/**
 * Longest-prefix lookup over peer subnets: one Map per distinct prefix length, longest
 * first (a cluster has one SubnetLen, so this is usually a single Map probe).
 */
export class PrefixTable<T> {
  private levels: { mask: number; map: Map<number, T> }[] = [];

  constructor(entries: { net: number; prefix: number; value: T }[]) {
    const byLen = new Map<number, Map<number, T>>();
    for (const e of entries) {
      let m = byLen.get(e.prefix);
      if (!m) byLen.set(e.prefix, (m = new Map()));
      m.set((e.net & ipv4Mask(e.prefix)) >>> 0, e.value);
    }
    this.levels = [...byLen.entries()].sort((a, b) => b[0] - a[0]).map(([len, map]) => ({ mask: ipv4Mask(len), map }));
  }

  lookup(addr: number): T | undefined {
    for (const l of this.levels) {
      const v = l.map.get((addr & l.mask) >>> 0);
      if (v !== undefined) return v;
    }
    return undefined;
  }
}

/** The four big-endian u32 words of a 16-byte IPv6 address. */
export function ipv6Words(bytes: Uint8Array, at = 0): [number, number, number, number] {
  const w = (i: number) => ((bytes[at + i]! << 24) | (bytes[at + i + 1]! << 16) | (bytes[at + i + 2]! << 8) | bytes[at + i + 3]!) >>> 0;
  return [w(0), w(4), w(8), w(12)];
}

/** The four u32 mask words of an IPv6 prefix length. */
export function ipv6MaskWords(prefix: number): [number, number, number, number] {
  const word = (i: number) => {
    const bits = Math.max(0, Math.min(32, prefix - 32 * i));
    return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  };
  return [word(0), word(1), word(2), word(3)];
}

/**
 * Longest-prefix lookup over IPv6 subnets, reading the address in place (no allocation
 * per packet): one level per distinct prefix length, longest first; each level a Map
 * from a 32-bit hash of the masked address to its entries, checked word by word.
 */
export class PrefixTable6<T> {
  private levels: { mask: [number, number, number, number]; map: Map<number, { w: number[]; value: T }[]> }[] = [];

  /** `net`: 16 address bytes. */
  constructor(entries: { net: Uint8Array; prefix: number; value: T }[]) {
    const byLen = new Map<number, Map<number, { w: number[]; value: T }[]>>();
    for (const e of entries) {
      const mask = ipv6MaskWords(e.prefix);
      const w = ipv6Words(e.net).map((x, i) => (x & mask[i]!) >>> 0);
      let m = byLen.get(e.prefix);
      if (!m) byLen.set(e.prefix, (m = new Map()));
      const h = hashWords(w[0]!, w[1]!, w[2]!, w[3]!);
      m.set(h, [...(m.get(h) ?? []), { w, value: e.value }]);
    }
    this.levels = [...byLen.entries()].sort((a, b) => b[0] - a[0]).map(([len, map]) => ({ mask: ipv6MaskWords(len), map }));
  }

  /** The value of the longest prefix holding the address at buf[at..at+16), if any. */
  lookup(buf: Uint8Array, at: number): T | undefined {
    const [a0, a1, a2, a3] = ipv6Words(buf, at);
    for (const l of this.levels) {
      const w0 = (a0 & l.mask[0]) >>> 0, w1 = (a1 & l.mask[1]) >>> 0, w2 = (a2 & l.mask[2]) >>> 0, w3 = (a3 & l.mask[3]) >>> 0;
      const hits = l.map.get(hashWords(w0, w1, w2, w3));
      if (hits) for (const e of hits) if (e.w[0] === w0 && e.w[1] === w1 && e.w[2] === w2 && e.w[3] === w3) return e.value;
    }
    return undefined;
  }
}

/** A 32-bit mix of four words (a key for a Map, checked against the words on a hit). */
function hashWords(a: number, b: number, c: number, d: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ b ^ (h >>> 13), 0xc2b2ae35);
  h = Math.imul(h ^ c ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ d ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 0;
}
