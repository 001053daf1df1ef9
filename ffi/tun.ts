/**
 * Raw libc symbol table for the TUN device and the udp backend's packet loop: open/ioctl
 * for /dev/net/tun, read/write/poll on the fds, and a UDP socket with sendto/recvfrom.
 * Constants and struct layouts (ifreq, sockaddr_in, pollfd) as data. No logic.
 *
 * `open` and `ioctl` are variadic in C; fixed-argument declarations work on x86-64 and
 * aarch64 Linux, where variadic integer/pointer arguments travel in the same registers.
 */
import { dlopen, FFIType as T, read } from "bun:ffi";

const { ptr, i32, u32, u64, i64_fast, cstring } = T;

export const TUN_SYMBOLS = {
  open: { args: [cstring, i32], returns: i32 },
  // The third argument is a pointer (TUNSETIFF) or an int (TUNSETPERSIST): pass ptr(buf) or n.
  ioctl: { args: [i32, u64, u64], returns: i32 },
  read: { args: [i32, ptr, u64], returns: i64_fast },
  write: { args: [i32, ptr, u64], returns: i64_fast },
  close: { args: [i32], returns: i32 },
  poll: { args: [ptr, u64, i32], returns: i32 },
  socket: { args: [i32, i32, i32], returns: i32 },
  bind: { args: [i32, ptr, u32], returns: i32 },
  setsockopt: { args: [i32, i32, i32, ptr, u32], returns: i32 },
  sendto: { args: [i32, ptr, u64, i32, ptr, u32], returns: i64_fast },
  recvfrom: { args: [i32, ptr, u64, i32, ptr, ptr], returns: i64_fast },
  getsockname: { args: [i32, ptr, ptr], returns: i32 },
  __errno_location: { args: [], returns: ptr },
  strerror: { args: [i32], returns: cstring },
} as const;

export type TunSymbols = ReturnType<typeof dlopen<typeof TUN_SYMBOLS>>["symbols"];

let libc: TunSymbols | undefined;

/** libc, opened once per thread (each Worker has its own JS heap and loads its own). */
export function loadTunLibc(): TunSymbols {
  libc ??= dlopen("libc.so.6", TUN_SYMBOLS).symbols;
  return libc;
}

/** The calling thread's errno; read it right after the failing call. */
export function errno(): number {
  const p = loadTunLibc().__errno_location();
  return p ? read.i32(p, 0) : 0;
}

export function strerror(code: number): string {
  return String(loadTunLibc().strerror(code) ?? `errno ${code}`);
}

// fcntl.h / socket.h / poll.h / if_tun.h (x86-64 and aarch64 values)
export const O_RDWR = 2;
export const O_NONBLOCK = 0x800;
export const O_CLOEXEC = 0x80000;
export const AF_INET = 2;
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0x800;
export const SOCK_CLOEXEC = 0x80000;
export const SOL_SOCKET = 1;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_SNDBUFFORCE = 32;
export const SO_RCVBUFFORCE = 33;
export const POLLIN = 0x1;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;
export const EAGAIN = 11;
export const EINTR = 4;
export const EADDRINUSE = 98;
export const EBADFD = 77;
export const TUNSETIFF = 0x400454ca;
export const TUNSETPERSIST = 0x400454cb;
export const IFF_TUN = 0x0001;
export const IFF_NO_PI = 0x1000;
export const IFF_VNET_HDR = 0x4000;
export const TUNSETOFFLOAD = 0x400454d0;
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO_ECN = 0x08;
/** struct virtio_net_hdr (TUN's default vnet header size): flags u8, gso_type u8,
 *  hdr_len u16, gso_size u16, csum_start u16, csum_offset u16, host byte order. */
export const VNET_HDR_SIZE = 10;
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
export const VIRTIO_NET_HDR_GSO_NONE = 0;
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
export const VIRTIO_NET_HDR_GSO_ECN = 0x80;

/** struct ifreq: 40 bytes on 64-bit Linux; name at 0 (IFNAMSIZ 16), flags (u16) at 16. */
export const IFREQ_SIZE = 40;
export const IFREQ_FLAGS_OFFSET = 16;
export const IFNAMSIZ = 16;
/** struct sockaddr_in: family u16 (host order), port u16 (network order), addr 4 bytes, 8 zero. */
export const SOCKADDR_IN_SIZE = 16;
/** struct pollfd: fd i32, events i16, revents i16. */
export const POLLFD_SIZE = 8;
