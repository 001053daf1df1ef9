/**
 * An exclusive advisory lock on a file (flock(2)), held until released or the process
 * dies — the kernel drops it with the last descriptor, so a crashed holder never leaves
 * the lock taken. Blocks the calling thread while another process holds it; meant for
 * short critical sections in short-lived processes (the CNI plugin's IPAM).
 *
 * @example
 * const lock = lockFile("/var/lib/cni/networks/weft/lock");
 * try { ... } finally { lock.release(); }
 */
import { EINTR, LOCK_EX, LOCK_UN, O_CLOEXEC, O_CREAT, O_RDWR } from "../../ffi/constants.ts";
import { cstr, loadLibc } from "../../ffi/libc.ts";
import { errno, sysError } from "./libc.ts";

export interface FileLock {
  release(): void;
}

/** Creates `path` if needed (mode 0644) and takes an exclusive lock on it. */
export function lockFile(path: string): FileLock {
  const libc = loadLibc();
  const pathBuf = cstr(path);
  const fd = libc.open(pathBuf, O_RDWR | O_CREAT | O_CLOEXEC, 0o644);
  if (fd < 0) throw sysError(`open lock file ${path}`);
  for (;;) {
    if (libc.flock(fd, LOCK_EX) === 0) break;
    const e = errno();
    if (e === EINTR) continue;
    libc.close(fd);
    throw sysError(`lock ${path}`, e);
  }
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      libc.flock(fd, LOCK_UN);
      libc.close(fd);
    },
  };
}
