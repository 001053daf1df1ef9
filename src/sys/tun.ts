/**
 * TUN device and UDP socket handles for the udp backend (ffi/tun.ts numbers, libc calls). Each function
 * throws an Error naming the operation and the object, then the errno text, e.g.
 * "open TUN weft0: Operation not permitted".
 *
 * The packet loop (a Worker) does its per-packet I/O through packet-io.ts.
 */
import { ptr } from "bun:ffi";
import { AF_INET, AF_INET6, EADDRINUSE, IPPROTO_IPV6, IPV6_V6ONLY, O_CLOEXEC, O_NONBLOCK, O_RDWR, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK, SOL_SOCKET, SO_RCVBUF, SO_RCVBUFFORCE, SO_SNDBUF, SO_SNDBUFFORCE } from "../../ffi/constants.ts";
import { cstr, loadLibc } from "../../ffi/libc.ts";
import { SOCKADDR_IN6_SIZE, SOCKADDR_IN_SIZE } from "../../ffi/structs.ts";
import { IFF_NO_PI, IFF_TUN, IFF_VNET_HDR, IFNAMSIZ, IFREQ_FLAGS_OFFSET, IFREQ_SIZE, TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_TSO_ECN, TUNSETIFF, TUNSETOFFLOAD, TUNSETPERSIST } from "../../ffi/tun.ts";
import { ipToBytes, parseIp } from "../net/cidr.ts";
import { ipv4ToU32 } from "../net/ipv4.ts";
import { errno, strerror, sysError } from "./libc.ts";

export { EAGAIN, EBADFD, POLLERR, POLLHUP, POLLIN, POLLNVAL } from "../../ffi/constants.ts";
export { POLLFD, SOCKADDR_IN6_SIZE, SOCKADDR_IN_SIZE } from "../../ffi/structs.ts";
export { VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_ECN, VIRTIO_NET_HDR_GSO_NONE, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6, VNET_HDR_SIZE } from "../../ffi/tun.ts";


export interface TunOptions {
  /** Keep the device, its address and routes when the fd closes (default true). */
  persist?: boolean;
  /**
   * Prefix every packet with a virtio_net_hdr and accept checksum-offloaded TCP segments
   * up to 64 KiB (TSO, IPv4 and IPv6) from the kernel: one read per super-packet instead
   * of per MTU.
   */
  offload?: boolean;
}

/**
 * Opens (creating if needed) the TUN device `name`, non-blocking, without packet info
 * headers. `persist` keeps the device, its address and routes when the fd closes, so an
 * agent restart does not disturb pods' routes; the next open re-attaches to it.
 */
export function openTun(name: string, { persist = true, offload = false }: TunOptions = {}): number {
  if (!/^[^\s/]{1,15}$/.test(name)) throw new Error(`open TUN ${JSON.stringify(name)}: expected an interface name of 1-15 characters`);
  const c = loadLibc();
  const path = cstr("/dev/net/tun");
  const fd = c.open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC, 0);
  if (fd < 0) throw sysError(`open TUN ${name}: /dev/net/tun`);
  // A shorter ifreq than the kernel's 40 bytes corrupts the heap (see ffi-findings).
  const ifr = new Uint8Array(IFREQ_SIZE);
  const nameBytes = new TextEncoder().encode(name);
  if (nameBytes.length >= IFNAMSIZ) throw new Error(`open TUN ${name}: name longer than ${IFNAMSIZ - 1} bytes`);
  ifr.set(nameBytes, 0);
  new DataView(ifr.buffer).setUint16(IFREQ_FLAGS_OFFSET, IFF_TUN | IFF_NO_PI | (offload ? IFF_VNET_HDR : 0), true);
  if (c.ioctl(fd, TUNSETIFF, ptr(ifr)) < 0) {
    const err = sysError(`open TUN ${name}: TUNSETIFF`);
    c.close(fd);
    throw err;
  }
  if (offload && c.ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN) < 0) {
    const err = sysError(`open TUN ${name}: TUNSETOFFLOAD`);
    c.close(fd);
    throw err;
  }
  if (persist && c.ioctl(fd, TUNSETPERSIST, 1) < 0) {
    const err = sysError(`open TUN ${name}: TUNSETPERSIST`);
    c.close(fd);
    throw err;
  }
  return fd;
}

/** Makes a persistent TUN device go away once its last fd closes (tests, teardown). */
export function unpersistTun(fd: number, name: string): void {
  if (loadLibc().ioctl(fd, TUNSETPERSIST, 0) < 0) throw sysError(`clear persist on TUN ${name}`);
}

export function closeFd(fd: number, what: string): void {
  if (loadLibc().close(fd) < 0) throw sysError(`close ${what}`);
}

/** struct sockaddr_in6 for [ip]:port (flow info and scope 0). */
export function sockaddrIn6(ip: string, port: number): Uint8Array {
  let addr: Uint8Array;
  try {
    const p = parseIp(ip);
    if (p.family !== 6 || ip.includes("%")) throw new Error("not IPv6");
    addr = ipToBytes(p);
  } catch {
    throw new Error(`Cannot build sockaddr for ${JSON.stringify(ip)}: not an IPv6 address`);
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`Cannot build sockaddr for port ${port}: expected 0..65535`);
  const sa = new Uint8Array(SOCKADDR_IN6_SIZE);
  const dv = new DataView(sa.buffer);
  dv.setUint16(0, AF_INET6, true);
  dv.setUint16(2, port, false);
  sa.set(addr, 8);
  return sa;
}

/** struct sockaddr_in or sockaddr_in6 for ip:port, by the address's family. */
export const sockaddrOf = (ip: string, port: number): Uint8Array => (ip.includes(":") ? sockaddrIn6(ip, port) : sockaddrIn(ip, port));

/** struct sockaddr_in for ip:port. */
export function sockaddrIn(ip: string, port: number): Uint8Array {
  const addr = typeof ip === "string" ? ipv4ToU32(ip) : -1;
  if (addr < 0) throw new Error(`Cannot build sockaddr for ${JSON.stringify(ip)}: not an IPv4 address`);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`Cannot build sockaddr for port ${port}: expected 0..65535`);
  const sa = new Uint8Array(SOCKADDR_IN_SIZE);
  const dv = new DataView(sa.buffer);
  dv.setUint16(0, AF_INET, true);
  dv.setUint16(2, port, false);
  dv.setUint32(4, addr, false);
  return sa;
}

/**
 * A non-blocking UDP socket bound to ip:port (IPv4, or IPv6 only for an IPv6 address) with
 * large buffers (a burst of pod traffic must not overflow the default ~200 KiB). Returns
 * the fd.
 *
 * Deliberately without SO_REUSEADDR or SO_REUSEPORT: with SO_REUSEADDR on both sockets
 * Linux lets any local user bind the same UDP address and port and receive the
 * datagrams meant for this one (every pod packet for the node). Without it a second bind
 * fails with EADDRINUSE, and ours fails the same way if somebody got there first.
 */
export function openUdpSocket(ip: string, port: number, { bufferBytes = 4 << 20 }: { bufferBytes?: number } = {}): number {
  const c = loadLibc();
  const v6 = ip.includes(":");
  const what = v6 ? `bind UDP [${ip}]:${port}` : `bind UDP ${ip}:${port}`;
  const sa = sockaddrOf(ip, port);
  const fd = c.socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw sysError(`${what}: socket`);
  const val = new Int32Array([bufferBytes]);
  if (v6) {
    const one = new Int32Array([1]);
    if (c.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, ptr(one), 4) < 0) {
      const err = sysError(`${what}: IPV6_V6ONLY`);
      c.close(fd);
      throw err;
    }
  }
  // FORCE variants pass rmem_max/wmem_max as root; fall back to the capped ones.
  if (c.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, ptr(val), 4) < 0) c.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, ptr(val), 4);
  if (c.setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, ptr(val), 4) < 0) c.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, ptr(val), 4);
  if (c.bind(fd, ptr(sa), sa.length) < 0) {
    const code = errno();
    const err = code === EADDRINUSE ? new Error(`${what}: ${strerror(code)}: another socket holds it (another weft, or another program on this port); weft does not share its port`, { cause: { errno: code } }) : sysError(what, code);
    c.close(fd);
    throw err;
  }
  return fd;
}
