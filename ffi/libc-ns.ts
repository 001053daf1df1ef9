/**
 * Raw dlopen symbol table for the libc calls the CNI plugin makes itself: opening and
 * entering network namespaces (open, ioctl NS_GET_NSTYPE, setns) and advisory file locks
 * (flock). Signatures and constants only; the safe wrappers are src/sys/netns.ts and
 * src/sys/flock.ts. `open` and `ioctl` are variadic in C; the fixed-argument forms below
 * are what x86-64 and aarch64 Linux pass for them.
 */
import { dlopen } from "bun:ffi";
import { LIBC_PATH } from "./libc.ts";
import type { Narrowed } from "./libnl.ts";

export const LIBC_NS_SYMBOLS = {
  open: { args: ["ptr", "i32", "u32"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
  ioctl: { args: ["i32", "u64", "u64"], returns: "i32" },
  setns: { args: ["i32", "i32"], returns: "i32" },
  flock: { args: ["i32", "i32"], returns: "i32" },
} as const;

export type LibcNsSymbols = Narrowed<ReturnType<typeof dlopen<typeof LIBC_NS_SYMBOLS>>["symbols"]>;

let syms: LibcNsSymbols | undefined;

/** Opens the table once per process. */
export function loadLibcNs(): LibcNsSymbols {
  syms ??= dlopen(LIBC_PATH, LIBC_NS_SYMBOLS).symbols as unknown as LibcNsSymbols;
  return syms;
}

// fcntl.h (x86-64 and aarch64 share these values).
export const O_RDONLY = 0;
export const O_RDWR = 2;
export const O_CREAT = 0o100;
export const O_CLOEXEC = 0o2000000;

// sched.h: the namespace type setns() is asked to join.
export const CLONE_NEWNET = 0x40000000;

/** linux/nsfs.h: NS_GET_NSTYPE = _IO(0xb7, 0x3); returns the CLONE_NEW* type of an nsfs fd. */
export const NS_GET_NSTYPE = 0xb703;

// sys/file.h
export const LOCK_EX = 2;
export const LOCK_UN = 8;

// errno values the wrappers tell apart (asm-generic/errno-base.h).
export const ENOENT = 2;
export const EINTR = 4;
export const ENOTTY = 25;
