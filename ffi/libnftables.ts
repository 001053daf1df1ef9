/**
 * Thin libnftables binding: the dlopen symbol table and one context wrapper that runs an
 * nft command buffer (one buffer = one atomic netlink transaction) and returns nft's
 * output, or throws with nft's error text. No policy here.
 */
import { dlopen, FFIType, type Pointer } from "bun:ffi";

export const SONAME = "libnftables.so.1";
export const NFT_CTX_DEFAULT = 0;
/** nft_ctx_output_set_flags: list output as JSON (libnftables.h NFT_CTX_OUTPUT_JSON). */
export const NFT_CTX_OUTPUT_JSON = 1 << 4;

let lib: ReturnType<typeof load> | null = null;

function load() {
  try {
    return dlopen(SONAME, {
      nft_ctx_new: { args: [FFIType.u32], returns: FFIType.ptr },
      nft_ctx_free: { args: [FFIType.ptr], returns: FFIType.void },
      nft_ctx_buffer_output: { args: [FFIType.ptr], returns: FFIType.i32 },
      nft_ctx_buffer_error: { args: [FFIType.ptr], returns: FFIType.i32 },
      nft_ctx_get_output_buffer: { args: [FFIType.ptr], returns: FFIType.cstring },
      nft_ctx_get_error_buffer: { args: [FFIType.ptr], returns: FFIType.cstring },
      nft_ctx_output_get_flags: { args: [FFIType.ptr], returns: FFIType.u32 },
      nft_ctx_output_set_flags: { args: [FFIType.ptr, FFIType.u32], returns: FFIType.void },
      nft_run_cmd_from_buffer: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    }).symbols;
  } catch (e) {
    throw new Error(`load ${SONAME} (Debian package libnftables1): ${(e as Error).message}`, { cause: e });
  }
}

export function nftables() {
  return (lib ??= load());
}

/** False when libnftables cannot be loaded on this host (nothing of ours can exist then). */
export function nftablesAvailable(): boolean {
  try {
    nftables();
    return true;
  } catch {
    return false;
  }
}

/** Runs nft commands; each call is its own transaction. */
export interface NftRunner {
  /** Runs `cmd` (nft syntax, several lines allowed) and returns nft's output. Throws on failure. */
  run(cmd: string, opts?: { json?: boolean }): string;
}

/** An NftRunner over a fresh libnftables context per call (contexts are cheap; no state leaks). */
export const libnftablesRunner: NftRunner = {
  run(cmd, { json = false } = {}) {
    const n = nftables();
    const ctx = n.nft_ctx_new(NFT_CTX_DEFAULT) as Pointer | null;
    if (!ctx) throw new Error("nft_ctx_new failed");
    try {
      n.nft_ctx_buffer_output(ctx);
      n.nft_ctx_buffer_error(ctx);
      if (json) n.nft_ctx_output_set_flags(ctx, n.nft_ctx_output_get_flags(ctx) | NFT_CTX_OUTPUT_JSON);
      // Keep the NUL-terminated command bytes referenced until the call returns.
      const buf = Buffer.from(cmd + "\0", "utf8");
      const rc = n.nft_run_cmd_from_buffer(ctx, buf);
      const out = String(n.nft_ctx_get_output_buffer(ctx) ?? "");
      const err = String(n.nft_ctx_get_error_buffer(ctx) ?? "");
      if (rc !== 0) {
        const e = new Error(err.trim() || `nft returned ${rc}`) as Error & { nftCommand: string };
        e.nftCommand = cmd;
        throw e;
      }
      return out;
    } finally {
      n.nft_ctx_free(ctx);
    }
  },
};
