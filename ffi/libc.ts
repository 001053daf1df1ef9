/**
 * Raw dlopen symbol table for the few libc calls weft makes itself (the netlink event
 * socket), plus C string and errno helpers. No logic beyond byte handling.
 */
import { CString, dlopen, FFIType, read, type Pointer } from "bun:ffi";
import type { Narrowed } from "./libnl.ts";

export const LIBC_PATH = "libc.so.6";


export const LIBC_SYMBOLS = {
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  bind: { args: ["i32", "ptr", "u32"], returns: "i32" },
  recv: { args: ["i32", "ptr", "u64", "i32"], returns: FFIType.i64_fast },
  send: { args: ["i32", "ptr", "u64", "i32"], returns: FFIType.i64_fast },
  close: { args: ["i32"], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
  strerror: { args: ["i32"], returns: "ptr" },
  if_nametoindex: { args: ["ptr"], returns: "u32" },
} as const;

export type LibcSymbols = Narrowed<ReturnType<typeof dlopen<typeof LIBC_SYMBOLS>>["symbols"]>;

let libc: LibcSymbols | undefined;

/** Opens libc once per process. */
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
