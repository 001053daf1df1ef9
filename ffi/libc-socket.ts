/**
 * Thin libc bindings for AF_UNIX datagram sockets (sd_notify and its tests): the dlopen
 * symbol table, constants, the sockaddr_un layout and errno helpers. No policy here.
 *
 * sockaddr_un is { sa_family_t sun_family (u16); char sun_path[108] }. A path address is
 * passed with its trailing NUL; an abstract address ("@name") starts with a NUL byte and
 * its length is exact (abstract names are not NUL-terminated; extra bytes would be part
 * of the name).
 */
import { dlopen, FFIType, read, type Pointer } from "bun:ffi";

export const AF_UNIX = 1;
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0x800;
export const SOCK_CLOEXEC = 0x80000;
export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
export const POLLIN = 0x1;
export const EAGAIN = 11;
export const EINTR = 4;

const SUN_PATH_MAX = 108;
const SA_FAMILY_SIZE = 2;

let lib: ReturnType<typeof load> | null = null;

function load() {
  return dlopen("libc.so.6", {
    socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    sendto: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i64_fast },
    recv: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64_fast },
    poll: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
    strerror: { args: [FFIType.i32], returns: FFIType.cstring },
  }).symbols;
}

/** The libc symbols, loaded on first use. */
export function libc() {
  return (lib ??= load());
}

export function errno(): number {
  return read.i32(libc().__errno_location() as Pointer, 0);
}

/** An Error for a failed libc call: "<action>: <strerror> (errno N)". */
export function errnoError(action: string, code = errno()): Error & { errno: number } {
  const e = new Error(`${action}: ${String(libc().strerror(code))} (errno ${code})`) as Error & { errno: number };
  e.errno = code;
  return e;
}

/**
 * Builds a sockaddr_un for `address`: a filesystem path, or "@name" for the abstract
 * namespace. Returns the bytes and the exact length to pass to bind/sendto.
 */
export function sockaddrUn(address: string): { buf: Uint8Array; len: number } {
  if (address.length === 0) throw new Error("build sockaddr_un: address is empty");
  const abstract = address.startsWith("@");
  const name = new TextEncoder().encode(abstract ? address.slice(1) : address);
  // A path needs room for its NUL; an abstract name needs room for its leading NUL.
  if (name.length + 1 > SUN_PATH_MAX) throw new Error(`build sockaddr_un: address ${JSON.stringify(address)} is longer than ${SUN_PATH_MAX - 1} bytes`);
  if (!abstract && name.includes(0)) throw new Error(`build sockaddr_un: path ${JSON.stringify(address)} contains a NUL byte`);
  const buf = new Uint8Array(SA_FAMILY_SIZE + SUN_PATH_MAX);
  new DataView(buf.buffer).setUint16(0, AF_UNIX, true);
  if (abstract) {
    buf.set(name, SA_FAMILY_SIZE + 1);
    return { buf, len: SA_FAMILY_SIZE + 1 + name.length };
  }
  buf.set(name, SA_FAMILY_SIZE);
  return { buf, len: SA_FAMILY_SIZE + name.length + 1 };
}

/** socket(AF_UNIX, SOCK_DGRAM|SOCK_CLOEXEC[|SOCK_NONBLOCK]); throws on failure. */
export function unixDatagramSocket({ nonBlocking = false } = {}): number {
  const fd = libc().socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | (nonBlocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) throw errnoError("create AF_UNIX datagram socket");
  return fd;
}

/** Sends one datagram to `address` (path or "@abstract"); throws with errno text on failure. */
export function sendDatagram(fd: number, address: string, payload: Uint8Array): void {
  const sa = sockaddrUn(address);
  const n = libc().sendto(fd, payload, payload.length, MSG_NOSIGNAL, sa.buf, sa.len);
  if (n < 0) throw errnoError(`send datagram to ${address}`);
  if (n !== payload.length) throw new Error(`send datagram to ${address}: short write (${n} of ${payload.length} bytes)`);
}

/** Binds `fd` to `address` (path or "@abstract"). */
export function bindUnix(fd: number, address: string): void {
  const sa = sockaddrUn(address);
  if (libc().bind(fd, sa.buf, sa.len) !== 0) throw errnoError(`bind AF_UNIX socket to ${address}`);
}

/**
 * Waits up to `timeoutMs` for one datagram on `fd` and returns it, or null on timeout.
 * Blocks the calling thread while waiting (poll); meant for tests and short waits.
 */
export function recvDatagram(fd: number, timeoutMs: number, maxBytes = 4096): Uint8Array | null {
  const buf = new Uint8Array(maxBytes);
  const pfd = new Uint8Array(8); // struct pollfd { int fd; short events; short revents; }
  const view = new DataView(pfd.buffer);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = libc().recv(fd, buf, buf.length, MSG_DONTWAIT);
    if (n >= 0) return buf.slice(0, Number(n));
    const code = errno();
    if (code !== EAGAIN && code !== EINTR) throw errnoError("receive datagram", code);
    const left = deadline - Date.now();
    if (left <= 0) return null;
    view.setInt32(0, fd, true);
    view.setInt16(4, POLLIN, true);
    view.setInt16(6, 0, true);
    const r = libc().poll(pfd, 1, Math.min(left, 1000));
    if (r < 0 && errno() !== EINTR) throw errnoError("poll datagram socket");
  }
}

export function closeFd(fd: number): void {
  libc().close(fd);
}
