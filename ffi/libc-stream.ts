/**
 * Raw dlopen symbol table for a blocking-with-deadline AF_UNIX stream client (the
 * wireguard-go UAPI socket): socket, connect, send, recv, poll, close. Only signatures
 * and constants; the sockaddr_un layout comes from ffi/libc-socket.ts, errno/strerror
 * from ffi/libc.ts.
 */
import { dlopen, FFIType } from "bun:ffi";
import { LIBC_PATH } from "./libc.ts";
import type { Narrowed } from "./libnl.ts";

export const SOCK_STREAM = 1;
export const POLLIN = 0x1;
export const POLLOUT = 0x4;
export const MSG_NOSIGNAL = 0x4000;
export const MSG_DONTWAIT = 0x40;
export const EINPROGRESS = 115;

export const LIBC_STREAM_SYMBOLS = {
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  connect: { args: ["i32", "ptr", "u32"], returns: "i32" },
  send: { args: ["i32", "ptr", "u64", "i32"], returns: FFIType.i64_fast },
  recv: { args: ["i32", "ptr", "u64", "i32"], returns: FFIType.i64_fast },
  // struct pollfd { int fd; short events; short revents; } = 8 bytes
  poll: { args: ["ptr", "u64", "i32"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
} as const;

export type LibcStreamSymbols = Narrowed<ReturnType<typeof dlopen<typeof LIBC_STREAM_SYMBOLS>>["symbols"]>;

let lib: LibcStreamSymbols | undefined;

/** Opens the table once per process. */
export function loadLibcStream(): LibcStreamSymbols {
  lib ??= dlopen(LIBC_PATH, LIBC_STREAM_SYMBOLS).symbols as unknown as LibcStreamSymbols;
  return lib;
}
