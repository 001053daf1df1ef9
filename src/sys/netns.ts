/**
 * Network namespaces by path (a CNI runtime's CNI_NETNS: /run/netns/<name> or
 * /proc/<pid>/ns/net), entered for the length of one synchronous callback.
 *
 * setns() moves only the calling thread, i.e. the JS thread. What the callback does
 * synchronously follows it: netlink sockets opened there (a socket stays in the namespace
 * it was created in), if_nametoindex, Bun.spawnSync, sync fs calls. Async work, promises
 * and Workers do not, so the callback must not await. The thread always goes back to the
 * namespace it came from; if that fails the process can no longer tell which namespace
 * its calls reach, so it exits.
 *
 * @example
 * const ns = openNetns("/run/netns/pod1");
 * try { inNetns(ns, () => { const nl = openNetlink(); ...; nl.close(); }); } finally { ns.close(); }
 */
import { CLONE_NEWNET, ENOENT, ENOTTY, NS_GET_NSTYPE, O_CLOEXEC, O_RDONLY } from "../../ffi/constants.ts";
import { cstr, loadLibc } from "../../ffi/libc.ts";
import { errno, strerror, sysError } from "./libc.ts";

export interface Netns {
  readonly path: string;
  readonly fd: number;
  close(): void;
}

/** Why a path could not be used as a network namespace. */
export class NetnsError extends Error {
  /** "missing" when the path does not exist; "invalid" when it is not a network namespace. */
  readonly reason: "missing" | "invalid";
  constructor(message: string, reason: "missing" | "invalid") {
    super(message);
    this.name = "NetnsError";
    this.reason = reason;
  }
}

/**
 * Opens `path` and proves it is a network namespace (NS_GET_NSTYPE answers
 * CLONE_NEWNET). Throws {@link NetnsError} naming the path otherwise.
 */
export function openNetns(path: string): Netns {
  const libc = loadLibc();
  const pathBuf = cstr(path);
  const fd = libc.open(pathBuf, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) {
    const e = errno();
    throw new NetnsError(`open network namespace ${path}: ${strerror(e)}`, e === ENOENT ? "missing" : "invalid");
  }
  const type = libc.ioctl(fd, NS_GET_NSTYPE, 0);
  if (type !== CLONE_NEWNET) {
    const e = type < 0 ? errno() : 0;
    libc.close(fd);
    const why = type >= 0 ? `a namespace of another type (0x${type.toString(16)})` : e === ENOTTY ? "not a namespace file" : strerror(e);
    throw new NetnsError(`open network namespace ${path}: ${why}`, "invalid");
  }
  let open = true;
  return {
    path,
    fd,
    close() {
      if (open) libc.close(fd);
      open = false;
    },
  };
}

/** The calling thread's own network namespace. */
export function currentNetns(): Netns {
  return openNetns("/proc/thread-self/ns/net");
}

function enter(fd: number, what: string): void {
  if (loadLibc().setns(fd, CLONE_NEWNET) !== 0) throw sysError(`enter network namespace ${what}`);
}

/**
 * Runs `fn` with the JS thread inside `ns`, then moves it back. `fn` must be synchronous
 * (see the file comment). Returns what `fn` returns; rethrows what it throws.
 */
export function inNetns<T>(ns: Netns, fn: () => T): T {
  const home = currentNetns();
  try {
    enter(ns.fd, ns.path);
    try {
      const out = fn();
      if (out instanceof Promise) throw new Error(`inNetns(${ns.path}): the callback must be synchronous`);
      return out;
    } finally {
      try {
        enter(home.fd, "of origin");
      } catch (e) {
        process.stderr.write(`weft: ${(e as Error).message}; exiting\n`);
        process.exit(70);
      }
    }
  } finally {
    home.close();
  }
}
