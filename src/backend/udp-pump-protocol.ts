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
export const C_DROP_INVALID = 5; // not IPv4 / truncated / received for a subnet not ours
export const C_DROP_IO = 6; // sendto/write failed (buffers full, peer unreachable)
export const C_LOOPS = 7; // loop slices run (liveness)
export const C_TX_SUPER = 8; // TUN → UDP datagrams that carried an offloaded (GSO/partial-checksum) packet
export const C_RX_SUPER = 9;
export const C_DROP_SENDER = 10; // UDP datagram from an address that is no peer's public IP
export const C_DROP_SPOOFED = 11; // from a peer, but the inner source is outside that peer's subnet
export const C_DROP_OFFLOAD = 12; // marked datagram (or own TUN read) whose virtio_net_hdr does not fit its packet
export const COUNTER_SLOTS = 13;

/**
 * Wire format. A datagram is either a plain IPv4 packet (flannel's udp format), or, with
 * offload, WEFT_OFFLOAD_MARK (a byte whose version nibble is 5, never an IP packet)
 * + the 10-byte virtio_net_hdr the sending TUN produced + the packet, which may be a
 * TCP super-packet up to 64 KiB with a partial checksum. The receiving TUN gets the same
 * header and segments/finishes it in the kernel, so neither side segments in JS.
 * The receiver accepts a header only in the shapes udp-packet.ts allows.
 */
export const WEFT_OFFLOAD_MARK = 0x57;

export interface PumpPeer {
  /** Subnet network address as an unsigned 32-bit number, and its prefix length. */
  net: number;
  prefix: number;
  /** Peer's public IP (UDP destination). */
  ip: string;
}

export type ToWorker =
  | { type: "start"; tunFd: number; udpFd: number; port: number; ownNet: number; ownPrefix: number; offload: boolean; ctrl: SharedArrayBuffer; counters: SharedArrayBuffer }
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
