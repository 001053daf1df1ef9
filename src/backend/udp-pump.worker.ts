/**
 * The udp backend's packet loop, on its own thread so the agent's event loop never
 * waits for packets and packets never wait for the event loop. Both directions run
 * here on raw fds owned by the main thread:
 *   TUN → look up the destination's peer (longest prefix, IPv4 or IPv6) → sendto(peer:port)
 *         on the socket of the peer's underlay family
 *   UDP (IPv4 or IPv6 socket) → from a peer's public address, IPv4 or IPv6 for our own
 *         subnet of that family, inner source inside that peer's subnet of the family, a
 *         well-formed virtio_net_hdr if marked → write to the TUN
 * One poll() covers the fds; each wake-up drains up to BATCH packets per fd. The loop
 * runs synchronously for a slice, then yields once so messages (peer table, stop) are
 * delivered; the stop word in shared memory is checked on every poll.
 */
import { errno, strerror } from "../sys/libc.ts";
import { addressOf, offsetPointer, pollFds, readFd, recvFrom, sendTo, writeFd, type Pointer } from "../sys/packet-io.ts";
import { EAGAIN, EBADFD, POLLERR, POLLHUP, POLLIN, POLLNVAL, VIRTIO_NET_HDR_F_NEEDS_CSUM, VNET_HDR_SIZE, sockaddrOf } from "../sys/tun.ts";
import { ipToBytes, parseCidr, parseIp } from "../net/cidr.ts";
import { ipv4Mask } from "../net/ipv4.ts";
import { readU32 } from "../wire/bytes.ts";
import { inSubnets, inSubnets6, ipLength, vnetHdrProblem } from "./udp-packet.ts";
import {
  CTRL_DONE,
  CTRL_STATE,
  CTRL_STOP,
  CTRL_TUN_DEAD,
  COUNTER_SLOTS,
  C_DROP_INVALID,
  C_DROP_IO,
  C_DROP_NO_ROUTE,
  C_DROP_OFFLOAD,
  C_DROP_SENDER,
  C_DROP_SPOOFED,
  C_LOOPS,
  C_RX_BYTES,
  C_RX_PACKETS,
  C_RX_SUPER,
  C_TX_BYTES,
  C_TX_PACKETS,
  C_TX_SUPER,
  WEFT_OFFLOAD_MARK,
  PrefixTable,
  PrefixTable6,
  ipv6MaskWords,
  ipv6Words,
  type FromWorker,
  type ToWorker,
} from "./udp-pump-protocol.ts";

declare const self: Worker;

const BATCH = 256;
const POLL_MS = 10;
const SLICE_MS = 20;
const BUF = 65536;

// Buffers backed by their own ArrayBuffer so their storage never moves under a pointer.
const txBuf = new Uint8Array(new ArrayBuffer(BUF));
const rxBuf = new Uint8Array(new ArrayBuffer(BUF));
/** struct pollfd × 3: the TUN, the IPv4 socket, the IPv6 socket (a negative fd is skipped by poll). */
const pfd = new Uint8Array(new ArrayBuffer(24));
const pfdView = new DataView(pfd.buffer);
const txPtr = addressOf(txBuf);
const rxPtr = addressOf(rxBuf);
const pfdPtr = addressOf(pfd);
/** Room for a sockaddr_in6 (28 bytes), the larger of the two. */
const srcAddr = new Uint8Array(new ArrayBuffer(28));
const srcAddrLen = new Uint32Array(new ArrayBuffer(4));
const srcAddrPtr = addressOf(srcAddr);
const srcAddrLenPtr = addressOf(srcAddrLen);

/** Where a peer's datagrams go: the socket of its underlay family and its sockaddr. */
interface Dest {
  fd: number;
  sa: Pointer;
  saLen: number;
}

/** What a peer may send into our pods: packets whose source lies in its subnets of the packet's family. */
interface PeerNets {
  /** IPv4 subnets as [network, mask, ...]. */
  nets4: number[];
  /** IPv6 subnets as [4 network words, 4 mask words, ...]. */
  nets6: Uint32Array;
}

let tunFd = -1;
let udpFd = -1;
let udpFd6 = -1;
let port = 0;
let offload = false;
/** Our own IPv4 subnet (network, mask), or mask -1 when this node runs no IPv4 pods. */
let ownNet = 0;
let ownMask = -1;
/** Our own IPv6 subnet as [4 network words, 4 mask words], empty when this node runs no IPv6 pods. */
let own6: Uint32Array = new Uint32Array(0);
let ctrl: Int32Array;
let shared: Float64Array;
const local = new Float64Array(COUNTER_SLOTS);
let table = new PrefixTable<Dest>([]);
let table6 = new PrefixTable6<Dest>([]);
/**
 * Peers' public addresses → the subnets they may send from: only a peer may send into
 * our pods, and only packets whose source lies in its own subnets. IPv4 senders by
 * their u32, IPv6 senders as /128 entries.
 */
let senders = new Map<number, PeerNets>();
let senders6 = new PrefixTable6<PeerNets>([]);
/** Keeps every sockaddr referenced as long as its pointer is in the tables. */
let sockaddrs: Uint8Array[] = [];
let running = false;

function post(m: FromWorker): void {
  self.postMessage(m);
}

function setPollFds(): void {
  [tunFd, udpFd, udpFd6].forEach((fd, i) => {
    pfdView.setInt32(8 * i, fd, true);
    pfdView.setInt16(8 * i + 4, POLLIN, true);
    pfdView.setInt16(8 * i + 6, 0, true);
  });
}

function tunToUdp(): void {
  // With offload the TUN prepends a virtio_net_hdr: read it to txBuf[1..10] so the
  // packet starts at 11 and a marked datagram (mark at 0) needs no copy.
  const off = offload ? 1 + VNET_HDR_SIZE : 0;
  const readPtr = offload ? offsetPointer(txPtr, 1) : txPtr;
  for (let i = 0; i < BATCH; i++) {
    const r = readFd(tunFd, readPtr, BUF - 1);
    if (r < 0) {
      const e = errno();
      if (e !== EAGAIN) tunFailed(e);
      return;
    }
    const n = offload ? r - VNET_HDR_SIZE : r; // IP packet length
    const version = n > 0 ? txBuf[off]! >> 4 : 0;
    if ((version !== 4 || n < 20) && (version !== 6 || n < 40)) {
      local[C_DROP_INVALID]!++;
      continue;
    }
    const dest = version === 4 ? table.lookup(readU32(txBuf, off + 16)) : table6.lookup(txBuf, off + 24);
    if (dest === undefined) {
      local[C_DROP_NO_ROUTE]!++;
      continue;
    }
    let sent: number;
    // DATA_VALID ("checksum already verified") means nothing to the receiving TUN: such a
    // packet is complete and crosses plain.
    if (offload && ((txBuf[1]! & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0 || txBuf[2] !== 0)) {
      // The peer would refuse a header it cannot trust; drop it here, where it is counted on the node that made it.
      const total = ipLength(txBuf, off, n);
      if (total < 0 || vnetHdrProblem(txBuf, 1, off, total) !== undefined) {
        local[C_DROP_OFFLOAD]!++;
        continue;
      }
      txBuf[0] = WEFT_OFFLOAD_MARK;
      sent = sendTo(dest.fd, txPtr, r + 1, dest.sa, dest.saLen);
      if (sent >= 0) local[C_TX_SUPER]!++;
    } else {
      sent = sendTo(dest.fd, offsetPointer(txPtr, off), n, dest.sa, dest.saLen);
    }
    if (sent < 0) {
      local[C_DROP_IO]!++;
      continue;
    }
    local[C_TX_PACKETS]!++;
    local[C_TX_BYTES]! += n;
  }
}

/** Drains the UDP socket `fd` of family `family` into the TUN. */
function udpToTun(fd: number, family: 4 | 6): void {
  // Received at rxBuf[10..]: a plain packet then gets a zero virtio_net_hdr in [0..9]
  // for an offload TUN; a marked datagram already carries its header at [11..20].
  const base = offload ? VNET_HDR_SIZE : 0;
  const recvPtr = offsetPointer(rxPtr, base);
  for (let i = 0; i < BATCH; i++) {
    srcAddrLen[0] = srcAddr.length;
    const n = recvFrom(fd, recvPtr, BUF - base, srcAddrPtr, srcAddrLenPtr);
    if (n < 0) return; // EAGAIN, or a transient ICMP error reported on the socket
    // sockaddr_in: the address at 4; sockaddr_in6: at 8.
    const peerNets = family === 4 ? senders.get(readU32(srcAddr, 4)) : senders6.lookup(srcAddr, 8);
    if (peerNets === undefined) {
      local[C_DROP_SENDER]!++;
      continue;
    }
    let ip = base; // where the IP header starts
    let len = n; // bytes from there on
    let super_ = false;
    if (n > 0 && rxBuf[base] === WEFT_OFFLOAD_MARK) {
      if (!offload) {
        local[C_DROP_INVALID]!++; // peer offloads, this TUN cannot take its headers
        continue;
      }
      ip = base + 1 + VNET_HDR_SIZE;
      len = n - 1 - VNET_HDR_SIZE;
      super_ = true;
    }
    const total = ipLength(rxBuf, ip, len);
    const v6 = total > 0 && rxBuf[ip]! >> 4 === 6;
    // The destination must be in our own subnet of the packet's family.
    const forUs = total < 0 ? false : v6 ? own6.length > 0 && inSubnets6(rxBuf, ip + 24, own6) : ownMask !== -1 && ((readU32(rxBuf, ip + 16) & ownMask) >>> 0) === ownNet;
    if (!forUs) {
      local[C_DROP_INVALID]!++;
      continue;
    }
    if (v6 ? !inSubnets6(rxBuf, ip + 8, peerNets.nets6) : !inSubnets(readU32(rxBuf, ip + 12), peerNets.nets4)) {
      local[C_DROP_SPOOFED]!++;
      continue;
    }
    if (super_ && vnetHdrProblem(rxBuf, base + 1, ip, total) !== undefined) {
      local[C_DROP_OFFLOAD]!++;
      continue;
    }
    let from = ip;
    if (offload) {
      from = ip - VNET_HDR_SIZE;
      if (!super_) rxBuf.fill(0, 0, VNET_HDR_SIZE);
    }
    if (tunFd < 0 || writeFd(tunFd, offsetPointer(rxPtr, from), ip - from + total) < 0) {
      local[C_DROP_IO]!++;
      continue;
    }
    if (super_) local[C_RX_SUPER]!++;
    local[C_RX_PACKETS]!++;
    local[C_RX_BYTES]! += total;
  }
}

function tunFailed(e: number): void {
  // The device was deleted under us: stop polling it until the main thread hands a new fd.
  tunFd = -1;
  setPollFds();
  Atomics.store(ctrl, CTRL_TUN_DEAD, 1);
  post({ type: "error", message: `read TUN: ${strerror(e)}` });
}

function flush(): void {
  for (let i = 0; i < COUNTER_SLOTS; i++) shared[i] = local[i]!;
}

function loop(): void {
  const until = performance.now() + SLICE_MS;
  while (Atomics.load(ctrl, CTRL_STOP) === 0) {
    const r = pollFds(pfdPtr, 3, POLL_MS);
    if (r > 0) {
      const tunEv = pfdView.getInt16(6, true);
      const udpEv = pfdView.getInt16(14, true);
      const udp6Ev = pfdView.getInt16(22, true);
      if (tunEv & POLLIN) tunToUdp();
      else if (tunEv & (POLLERR | POLLHUP | POLLNVAL)) tunFailed(errno() || EBADFD);
      if (udpEv & (POLLIN | POLLERR)) udpToTun(udpFd, 4);
      if (udp6Ev & (POLLIN | POLLERR)) udpToTun(udpFd6, 6);
      flush(); // a few stores; keeps /metrics current to the last wake-up
    }
    if (performance.now() >= until) break;
  }
  local[C_LOOPS]!++;
  flush();
  if (Atomics.load(ctrl, CTRL_STOP) !== 0) {
    running = false;
    Atomics.store(ctrl, CTRL_DONE, 1);
    Atomics.notify(ctrl, CTRL_DONE);
    post({ type: "stopped" });
    return;
  }
  setImmediate(loop);
}

self.onmessage = (ev: MessageEvent<ToWorker>) => {
  const m = ev.data;
  try {
    if (m.type === "start") {
      if (running) throw new Error("start udp pump: already running");
      ctrl = new Int32Array(m.ctrl);
      // Claim the fds unless the main thread already gave up on us (stop before start).
      if (Atomics.compareExchange(ctrl, CTRL_STATE, 0, 1) !== 0) return;
      tunFd = m.tunFd;
      udpFd = m.udpFd;
      udpFd6 = m.udpFd6;
      port = m.port;
      offload = m.offload;
      for (const text of m.ownSubnets) {
        const c = parseCidr(text);
        if (c.family === 4) {
          ownMask = ipv4Mask(c.prefix);
          ownNet = (Number(c.addr) & ownMask) >>> 0;
        } else own6 = subnetWords(ipToBytes(c), c.prefix);
      }
      shared = new Float64Array(m.counters);
      setPollFds();
      running = true;
      post({ type: "started" });
      setImmediate(loop);
    } else if (m.type === "peers") {
      const addrs: Uint8Array[] = [];
      const dests = new Map<string, Dest>();
      const destOf = (ip: string): Dest | undefined => {
        const v6 = ip.includes(":");
        const fd = v6 ? udpFd6 : udpFd;
        if (fd < 0) return undefined; // no socket of that family: the main thread does not send such peers
        let d = dests.get(ip);
        if (!d) {
          const bytes = sockaddrOf(ip, port);
          const sa = new Uint8Array(new ArrayBuffer(bytes.length));
          sa.set(bytes);
          addrs.push(sa);
          dests.set(ip, (d = { fd, sa: addressOf(sa), saLen: sa.length }));
        }
        return d;
      };
      const v4: { net: number; prefix: number; value: Dest }[] = [];
      const v6: { net: Uint8Array; prefix: number; value: Dest }[] = [];
      const nets = new Map<string, { nets4: number[]; nets6: number[] }>();
      for (const p of m.peers) {
        const c = parseCidr(p.subnet);
        const dest = destOf(p.ip);
        if (dest) {
          if (c.family === 4) v4.push({ net: Number(c.addr), prefix: c.prefix, value: dest });
          else v6.push({ net: ipToBytes(c), prefix: c.prefix, value: dest });
        }
        // Datagrams from either of the peer's addresses are the peer's.
        for (const from of p.otherIp !== undefined ? [p.ip, p.otherIp] : [p.ip]) {
          const e = nets.get(from) ?? { nets4: [], nets6: [] };
          if (c.family === 4) {
            const mask = ipv4Mask(c.prefix);
            e.nets4.push((Number(c.addr) & mask) >>> 0, mask);
          } else e.nets6.push(...subnetWords(ipToBytes(c), c.prefix));
          nets.set(from, e);
        }
      }
      table = new PrefixTable(v4);
      table6 = new PrefixTable6(v6);
      sockaddrs = addrs;
      const bySender = new Map<number, PeerNets>();
      const bySender6: { net: Uint8Array; prefix: number; value: PeerNets }[] = [];
      for (const [ip, e] of nets) {
        const value = { nets4: e.nets4, nets6: Uint32Array.from(e.nets6) };
        const a = parseIp(ip);
        if (a.family === 4) bySender.set(Number(a.addr), value);
        else bySender6.push({ net: ipToBytes(a), prefix: 128, value });
      }
      senders = bySender;
      senders6 = new PrefixTable6(bySender6);
    } else if (m.type === "tun") {
      tunFd = m.fd;
      Atomics.store(ctrl, CTRL_TUN_DEAD, 0);
      setPollFds();
    }
  } catch (e) {
    post({ type: "error", message: (e as Error).message });
  }
};

/** An IPv6 subnet as [4 network words (masked), 4 mask words]. */
function subnetWords(net: Uint8Array, prefix: number): Uint32Array {
  const mask = ipv6MaskWords(prefix);
  const w = ipv6Words(net);
  return Uint32Array.from([...w.map((x, i) => (x & mask[i]!) >>> 0), ...mask]);
}
