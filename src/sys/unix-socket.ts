/**
 * AF_UNIX addresses and datagram sockets (sd_notify and its tests). sockaddr_un is
 * { sa_family_t sun_family (u16); char sun_path[108] }. A path address is passed with its
 * trailing NUL; an abstract address ("@name") starts with a NUL byte and its length is
 * exact (abstract names are not NUL-terminated; extra bytes would be part of the name).
 */
import { AF_UNIX, EAGAIN, EINTR, MSG_DONTWAIT, MSG_NOSIGNAL, POLLIN, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK } from "../../ffi/constants.ts";
import { loadLibc } from "../../ffi/libc.ts";
import { SOCKADDR_UN } from "../../ffi/structs.ts";
import { errno, pollOne, sysError } from "./libc.ts";

/**
 * Builds a sockaddr_un for `address`: a filesystem path, or "@name" for the abstract
 * namespace. Returns the bytes and the exact length to pass to bind/connect/sendto.
 */
export function sockaddrUn(address: string): { buf: Uint8Array; len: number } {
  const { familySize, pathMax } = SOCKADDR_UN;
  if (address.length === 0) throw new Error("build sockaddr_un: address is empty");
  const abstract = address.startsWith("@");
  const name = new TextEncoder().encode(abstract ? address.slice(1) : address);
  // A path needs room for its NUL; an abstract name needs room for its leading NUL.
  if (name.length + 1 > pathMax) throw new Error(`build sockaddr_un: address ${JSON.stringify(address)} is longer than ${pathMax - 1} bytes`);
  if (!abstract && name.includes(0)) throw new Error(`build sockaddr_un: path ${JSON.stringify(address)} contains a NUL byte`);
  const buf = new Uint8Array(familySize + pathMax);
  new DataView(buf.buffer).setUint16(0, AF_UNIX, true);
  if (abstract) {
    buf.set(name, familySize + 1);
    return { buf, len: familySize + 1 + name.length };
  }
  buf.set(name, familySize);
  return { buf, len: familySize + name.length + 1 };
}

/** socket(AF_UNIX, SOCK_DGRAM|SOCK_CLOEXEC[|SOCK_NONBLOCK]); throws on failure. */
export function unixDatagramSocket({ nonBlocking = false } = {}): number {
  const fd = loadLibc().socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | (nonBlocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) throw sysError("create AF_UNIX datagram socket");
  return fd;
}

/** Sends one datagram to `address` (path or "@abstract"); throws with errno text on failure. */
export function sendDatagram(fd: number, address: string, payload: Uint8Array): void {
  const sa = sockaddrUn(address);
  const n = loadLibc().sendto(fd, payload, payload.length, MSG_NOSIGNAL, sa.buf, sa.len);
  if (n < 0) throw sysError(`send datagram to ${address}`);
  if (n !== payload.length) throw new Error(`send datagram to ${address}: short write (${n} of ${payload.length} bytes)`);
}

/** Binds `fd` to `address` (path or "@abstract"). */
export function bindUnix(fd: number, address: string): void {
  const sa = sockaddrUn(address);
  if (loadLibc().bind(fd, sa.buf, sa.len) !== 0) throw sysError(`bind AF_UNIX socket to ${address}`);
}

/**
 * Waits up to `timeoutMs` for one datagram on `fd` and returns it, or null on timeout.
 * Blocks the calling thread while waiting (poll); meant for tests and short waits.
 */
export function recvDatagram(fd: number, timeoutMs: number, maxBytes = 4096): Uint8Array | null {
  const buf = new Uint8Array(maxBytes);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = loadLibc().recv(fd, buf, buf.length, MSG_DONTWAIT);
    if (n >= 0) return buf.slice(0, Number(n));
    const code = errno();
    if (code !== EAGAIN && code !== EINTR) throw sysError("receive datagram", code);
    const left = deadline - Date.now();
    if (left <= 0) return null;
    pollOne(fd, POLLIN, Math.min(left, 1000), "receive datagram");
  }
}

export function closeFd(fd: number): void {
  loadLibc().close(fd);
}
