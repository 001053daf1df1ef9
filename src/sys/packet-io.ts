/**
 * The udp backend's packet loop I/O: read/write on the TUN fd, sendto/recvfrom on the UDP
 * socket, one poll over both. Called per packet, so these take pointers the loop made
 * once (addressOf) and return the raw result: a count, or < 0 with errno() saying why.
 * No Error is built on this path; the loop counts drops instead.
 */
import { ptr, type Pointer } from "bun:ffi";
import { loadLibc } from "../../ffi/libc.ts";

export type { Pointer };

/** The address of `buf`'s storage. Keep `buf` referenced (and never resized) while the address is in use. */
export const addressOf = (buf: Uint8Array | Uint32Array): Pointer => ptr(buf);

/** Offset `off` bytes into the storage at `p`. */
export const offsetPointer = (p: Pointer, off: number): Pointer => (p + off) as Pointer;

const libc = loadLibc();

export const readFd = (fd: number, buf: Pointer, len: number): number => libc.read(fd, buf, len) as number;
export const writeFd = (fd: number, buf: Pointer, len: number): number => libc.write(fd, buf, len) as number;
/** sendto(fd, buf, len, 0, the sockaddr of `toLen` bytes at `to`: sockaddr_in 16, sockaddr_in6 28). */
export const sendTo = (fd: number, buf: Pointer, len: number, to: Pointer, toLen: number): number => libc.sendto(fd, buf, len, 0, to, toLen) as number;
/** recvfrom(fd, buf, len, 0, from, fromLen): the sender's sockaddr (in or in6) lands at `from`. */
export const recvFrom = (fd: number, buf: Pointer, len: number, from: Pointer, fromLen: Pointer): number => libc.recvfrom(fd, buf, len, 0, from, fromLen) as number;
/** poll(fds, n, timeoutMs) over `n` struct pollfd at `fds`. */
export const pollFds = (fds: Pointer, n: number, timeoutMs: number): number => libc.poll(fds, n, timeoutMs);
