/**
 * The one raw dlopen symbol table for libc: every libc call weft makes itself (netlink
 * sockets, the udp backend's TUN and UDP fds, AF_UNIX sockets for sd_notify and the
 * wireguard-go UAPI, namespaces and file locks for the CNI plugin, free() for buffers libnl
 * allocates), C strings and the errno accessor. Constants are in constants.ts, struct
 * layouts in structs.ts.
 * Signatures and numbers only; the safe wrappers are in src/sys (src/sys/libc.ts turns a
 * failure into an Error). Opened lazily, once per thread: a Worker has its own JS heap and
 * loads its own copy.
 *
 * `open` and `ioctl` are variadic in C; the fixed-argument forms below are what x86-64 and
 * aarch64 Linux pass for them (variadic integer/pointer arguments travel in the same
 * registers).
 */
import { CString, dlopen, FFIType, read, type Pointer } from "bun:ffi";
import type { Narrowed } from "./libnl.ts";

export const LIBC_PATH = "libc.so.6";

export const LIBC_SYMBOLS = {
  // files and fds
  open: { args: ["ptr", "i32", "u32"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
  read: { args: ["i32", "ptr", "u64"], returns: FFIType.i64_fast },
  write: { args: ["i32", "ptr", "u64"], returns: FFIType.i64_fast },
  // The third argument is a pointer (TUNSETIFF) or an int (TUNSETPERSIST, NS_GET_NSTYPE).
  ioctl: { args: ["i32", "u64", "u64"], returns: "i32" },
  // struct pollfd { int fd; short events; short revents; } = 8 bytes each
  poll: { args: ["ptr", "u64", "i32"], returns: "i32" },
  flock: { args: ["i32", "i32"], returns: "i32" },
  // sockets
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  bind: { args: ["i32", "ptr", "u32"], returns: "i32" },
  connect: { args: ["i32", "ptr", "u32"], returns: "i32" },
  setsockopt: { args: ["i32", "i32", "i32", "ptr", "u32"], returns: "i32" },
  getsockname: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  send: { args: ["i32", "ptr", "u64", "i32"], returns: FFIType.i64_fast },
  recv: { args: ["i32", "ptr", "u64", "i32"], returns: FFIType.i64_fast },
  sendto: { args: ["i32", "ptr", "u64", "i32", "ptr", "u32"], returns: FFIType.i64_fast },
  recvfrom: { args: ["i32", "ptr", "u64", "i32", "ptr", "ptr"], returns: FFIType.i64_fast },
  // namespaces, interfaces, memory
  setns: { args: ["i32", "i32"], returns: "i32" },
  if_nametoindex: { args: ["ptr"], returns: "u32" },
  free: { args: ["ptr"], returns: "void" },
  // errors
  __errno_location: { args: [], returns: "ptr" },
  strerror: { args: ["i32"], returns: "ptr" },
} as const;

export type LibcSymbols = Narrowed<ReturnType<typeof dlopen<typeof LIBC_SYMBOLS>>["symbols"]>;

let libc: LibcSymbols | undefined;

/** Opens libc once per thread. */
export function loadLibc(): LibcSymbols {
  libc ??= dlopen(LIBC_PATH, LIBC_SYMBOLS).symbols as unknown as LibcSymbols;
  return libc;
}

/** The calling thread's errno; read it right after the failing call. */
export function errno(): number {
  const p = loadLibc().__errno_location();
  return p ? read.i32(p, 0) : 0;
}

/** strerror text, e.g. "Resource temporarily unavailable". */
export function strerror(code: number): string {
  const p = loadLibc().strerror(code);
  return p ? new CString(p).toString() : `errno ${code}`;
}

/**
 * NUL-terminated UTF-8 bytes for a `ptr` argument. The caller keeps the returned buffer
 * referenced until the C call returns. Rejects embedded NULs, which C would truncate.
 */
export function cstr(text: string): Buffer {
  if (text.includes("\0")) throw new Error(`string ${JSON.stringify(text)} contains a NUL byte`);
  return Buffer.from(text + "\0", "utf8");
}

/** Reads a C string at a borrowed pointer; undefined for NULL. */
export function readCString(p: Pointer | null): string | undefined {
  return p ? new CString(p).toString() : undefined;
}
