/**
 * The one errno path for libc calls made through ffi/libc.ts: a failed call becomes a
 * SysError "<action>: <strerror text>" that keeps the errno (as `errno` and in `cause`),
 * and a single-fd poll with a deadline that retries EINTR. Code outside src/sys that
 * needs errno text (the udp packet loop) reads it here.
 */
import { EINTR } from "../../ffi/constants.ts";
import { errno, loadLibc, strerror } from "../../ffi/libc.ts";
import { POLLFD } from "../../ffi/structs.ts";

export { errno, strerror };

export class SysError extends Error {
  override name = "SysError";
  constructor(
    action: string,
    readonly errno: number,
  ) {
    super(`${action}: ${strerror(errno)}`, { cause: { errno } });
  }
}

/** The Error for a failed libc call; read right after it (`code` defaults to the current errno). */
export const sysError = (action: string, code = errno()): SysError => new SysError(action, code);

/**
 * Waits until `fd` reports one of `events` or `timeoutMs` passes; returns the reported
 * events (0 on timeout). Blocks the calling thread: for short waits and worker threads.
 */
export function pollOne(fd: number, events: number, timeoutMs: number, what: string): number {
  const pfd = new Uint8Array(POLLFD.size);
  const v = new DataView(pfd.buffer);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    v.setInt32(POLLFD.fd, fd, true);
    v.setInt16(POLLFD.events, events, true);
    v.setInt16(POLLFD.revents, 0, true);
    const r = loadLibc().poll(pfd, 1, Math.max(0, deadline - Date.now()));
    if (r > 0) return v.getInt16(POLLFD.revents, true);
    if (r === 0) return 0;
    const e = errno();
    if (e !== EINTR) throw sysError(`${what}: poll`, e);
  }
}
