/**
 * The udp backend's packet loop, on its own thread so the agent's event loop never
 * waits for packets and packets never wait for the event loop. Both directions run
 * here on raw fds owned by the main thread:
 *   TUN → look up the destination's peer (longest prefix) → sendto(peer:port)
 *   UDP → from a peer's public IP, IPv4 for our own subnet, inner source inside that
 *         peer's subnet, a well-formed virtio_net_hdr if marked → write to the TUN
 * One poll() covers both fds; each wake-up drains up to BATCH packets per fd. The loop
 * runs synchronously for a slice, then yields once so messages (peer table, stop) are
 * delivered; the stop word in shared memory is checked on every poll.
 */
import { errno, strerror } from "../sys/libc.ts";
import { addressOf, offsetPointer, pollFds, readFd, recvFrom, sendTo, writeFd, type Pointer } from "../sys/packet-io.ts";
import { EAGAIN, EBADFD, POLLERR, POLLHUP, POLLIN, POLLNVAL, VIRTIO_NET_HDR_F_NEEDS_CSUM, VNET_HDR_SIZE, sockaddrIn } from "../sys/tun.ts";
import { ipv4Mask, parseIpv4U32 } from "../net/ipv4.ts";
import { readU32 } from "../wire/bytes.ts";
import { inSubnets, ipv4Length, vnetHdrProblem } from "./udp-packet.ts";
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
const pfd = new Uint8Array(new ArrayBuffer(16));
const pfdView = new DataView(pfd.buffer);
const txPtr = addressOf(txBuf);
const rxPtr = addressOf(rxBuf);
const pfdPtr = addressOf(pfd);
const srcAddr = new Uint8Array(new ArrayBuffer(16));
const srcAddrLen = new Uint32Array(new ArrayBuffer(4));
const srcAddrPtr = addressOf(srcAddr);
const srcAddrLenPtr = addressOf(srcAddrLen);

let tunFd = -1;
let udpFd = -1;
let port = 0;
let offload = false;
let ownNet = 0;
let ownMask = 0;
let ctrl: Int32Array;
let shared: Float64Array;
const local = new Float64Array(COUNTER_SLOTS);
let table = new PrefixTable<Pointer>([]);
/**
 * Peers' public IPs (u32) → their lease subnets as [network, mask, ...]: only a peer may
 * send into our pods, and only packets whose source lies in its own subnets.
 */
let senders = new Map<number, number[]>();
/** Keeps every sockaddr referenced as long as its pointer is in the table. */
let sockaddrs: Uint8Array[] = [];
let running = false;

function post(m: FromWorker): void {
  self.postMessage(m);
}

function setPollFds(): void {
  pfdView.setInt32(0, tunFd, true);
  pfdView.setInt16(4, POLLIN, true);
  pfdView.setInt16(6, 0, true);
  pfdView.setInt32(8, udpFd, true);
  pfdView.setInt16(12, POLLIN, true);
  pfdView.setInt16(14, 0, true);
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
    if (n < 20 || txBuf[off]! >> 4 !== 4) {
      local[C_DROP_INVALID]!++;
      continue;
    }
    const sa = table.lookup(readU32(txBuf, off + 16));
    if (sa === undefined) {
      local[C_DROP_NO_ROUTE]!++;
      continue;
    }
    let sent: number;
    // DATA_VALID ("checksum already verified") means nothing to the receiving TUN: such a
    // packet is complete and crosses plain.
    if (offload && ((txBuf[1]! & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0 || txBuf[2] !== 0)) {
      // The peer would refuse a header it cannot trust; drop it here, where it is counted on the node that made it.
      const total = ipv4Length(txBuf, off, n);
      if (total < 0 || vnetHdrProblem(txBuf, 1, off, total) !== undefined) {
        local[C_DROP_OFFLOAD]!++;
        continue;
      }
      txBuf[0] = WEFT_OFFLOAD_MARK;
      sent = sendTo(udpFd, txPtr, r + 1, sa);
      if (sent >= 0) local[C_TX_SUPER]!++;
    } else {
      sent = sendTo(udpFd, offsetPointer(txPtr, off), n, sa);
    }
    if (sent < 0) {
      local[C_DROP_IO]!++;
      continue;
    }
    local[C_TX_PACKETS]!++;
    local[C_TX_BYTES]! += n;
  }
}

function udpToTun(): void {
  // Received at rxBuf[10..]: a plain packet then gets a zero virtio_net_hdr in [0..9]
  // for an offload TUN; a marked datagram already carries its header at [11..20].
  const base = offload ? VNET_HDR_SIZE : 0;
  const recvPtr = offsetPointer(rxPtr, base);
  for (let i = 0; i < BATCH; i++) {
    srcAddrLen[0] = 16;
    const n = recvFrom(udpFd, recvPtr, BUF - base, srcAddrPtr, srcAddrLenPtr);
    if (n < 0) return; // EAGAIN, or a transient ICMP error reported on the socket
    const peerNets = senders.get(readU32(srcAddr, 4));
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
    const total = ipv4Length(rxBuf, ip, len);
    if (total < 0 || ((readU32(rxBuf, ip + 16) & ownMask) >>> 0) !== ownNet) {
      local[C_DROP_INVALID]!++;
      continue;
    }
    if (!inSubnets(readU32(rxBuf, ip + 12), peerNets)) {
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
    const r = pollFds(pfdPtr, 2, POLL_MS);
    if (r > 0) {
      const tunEv = pfdView.getInt16(6, true);
      const udpEv = pfdView.getInt16(14, true);
      if (tunEv & POLLIN) tunToUdp();
      else if (tunEv & (POLLERR | POLLHUP | POLLNVAL)) tunFailed(errno() || EBADFD);
      if (udpEv & (POLLIN | POLLERR)) udpToTun();
      flush(); // eight stores; keeps /metrics current to the last wake-up
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
      port = m.port;
      offload = m.offload;
      ownMask = ipv4Mask(m.ownPrefix);
      ownNet = (m.ownNet & ownMask) >>> 0;
      shared = new Float64Array(m.counters);
      setPollFds();
      running = true;
      post({ type: "started" });
      setImmediate(loop);
    } else if (m.type === "peers") {
      const addrs: Uint8Array[] = [];
      const entries = m.peers.map((p) => {
        const sa = new Uint8Array(new ArrayBuffer(16));
        sa.set(sockaddrIn(p.ip, port));
        addrs.push(sa);
        return { net: p.net, prefix: p.prefix, value: addressOf(sa) };
      });
      table = new PrefixTable(entries);
      sockaddrs = addrs;
      const bySender = new Map<number, number[]>();
      for (const p of m.peers) {
        const mask = ipv4Mask(p.prefix);
        const key = parseIpv4U32(p.ip);
        const nets = bySender.get(key) ?? [];
        nets.push((p.net & mask) >>> 0, mask);
        bySender.set(key, nets);
      }
      senders = bySender;
    } else if (m.type === "tun") {
      tunFd = m.fd;
      Atomics.store(ctrl, CTRL_TUN_DEAD, 0);
      setPollFds();
    }
  } catch (e) {
    post({ type: "error", message: (e as Error).message });
  }
};
