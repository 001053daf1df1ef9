/**
 * The userspace WireGuard: wireguard-go, started the way wg-quick starts it
 * (`wireguard-go <ifname>`: it creates the TUN, opens its UAPI socket
 * /var/run/wireguard/<ifname>.sock, daemonizes, and the launching process exits once
 * both exist) and configured over that socket with the text protocol of
 * wireguard-uapi-codec.ts. The daemon outlives the agent, like a kernel device would: a
 * restarted agent finds it by its socket and adopts it. wireguard-go exits by itself
 * when its TUN is deleted.
 *
 * The socket directory is compiled into wireguard-go (a linker flag, not a runtime
 * setting) and is shared by every network namespace of a machine: two nodes on one
 * machine need separate mount namespaces with their own /var/run/wireguard (the tests
 * and the benchmark do that).
 *
 * I/O is synchronous with a deadline (poll), as every Backend.apply is.
 */
import { AF_UNIX, EAGAIN, EINPROGRESS, EINTR, MSG_DONTWAIT, MSG_NOSIGNAL, POLLIN, POLLOUT, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM } from "../../ffi/constants.ts";
import { loadLibc } from "../../ffi/libc.ts";
import { errno, pollOne, strerror, sysError } from "./libc.ts";
import { sockaddrUn } from "./unix-socket.ts";
import { encodeUapiSet, parseUapiGet, UAPI_GET, uapiErrno } from "./wireguard-uapi-codec.ts";
import type { WgDeviceConfig, WgDeviceInfo } from "./wireguard.ts";

/** wireguard-go's socket directory on Linux. */
export const UAPI_SOCKET_DIR = "/var/run/wireguard";
export const uapiSocketPath = (name: string, dir = UAPI_SOCKET_DIR): string => `${dir}/${name}.sock`;

/** Waits for `events` on `fd` until `deadline`; throws when it passes. */
function waitFor(fd: number, events: number, deadline: number, what: string): void {
  if (pollOne(fd, events, Math.max(0, deadline - Date.now()), what) === 0) throw new Error(`${what}: no answer within the deadline`);
}

/**
 * Sends `request` to the stream socket at `path` and returns the answer up to and
 * including its terminating blank line. Throws "connect ...: No such file or directory"
 * (or "Connection refused") when no daemon listens there.
 */
export function uapiExchange(path: string, request: string, { timeoutMs = 5000 } = {}): string {
  const libc = loadLibc();
  const what = `UAPI ${path}`;
  const deadline = Date.now() + timeoutMs;
  const fd = libc.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) throw sysError(`${what}: socket`);
  try {
    const sa = sockaddrUn(path);
    if (libc.connect(fd, sa.buf, sa.len) < 0) {
      const e = errno();
      if (e !== EINPROGRESS && e !== EAGAIN) throw sysError(`${what}: connect`, e);
      waitFor(fd, POLLOUT, deadline, what);
    }
    const out = new TextEncoder().encode(request);
    let sent = 0;
    while (sent < out.length) {
      const n = Number(libc.send(fd, out.subarray(sent), out.length - sent, MSG_NOSIGNAL));
      if (n >= 0) {
        sent += n;
        continue;
      }
      const e = errno();
      if (e === EAGAIN) waitFor(fd, POLLOUT, deadline, what);
      else if (e !== EINTR) throw sysError(`${what}: send`, e);
    }
    const buf = new Uint8Array(64 * 1024);
    let text = "";
    const decoder = new TextDecoder();
    for (;;) {
      const n = Number(libc.recv(fd, buf, buf.length, MSG_DONTWAIT));
      if (n > 0) {
        text += decoder.decode(buf.subarray(0, n), { stream: true });
        // Every answer ends with "errno=N" and a blank line.
        if (/(^|\n)errno=-?\d+\n\n$/.test(text)) return text;
        continue;
      }
      if (n === 0) throw new Error(`${what}: the daemon closed the connection after ${text.length} bytes`);
      const e = errno();
      if (e === EAGAIN) waitFor(fd, POLLIN, deadline, what);
      else if (e !== EINTR) throw sysError(`${what}: recv`, e);
    }
  } finally {
    libc.close(fd);
  }
}

/** get/set on a wireguard-go device through its UAPI socket. */
export class UserspaceWireguard {
  constructor(private readonly socketDir = UAPI_SOCKET_DIR) {}

  get(name: string): WgDeviceInfo {
    try {
      return parseUapiGet(uapiExchange(uapiSocketPath(name, this.socketDir), UAPI_GET));
    } catch (e) {
      throw new Error(`get wireguard device ${name} (wireguard-go): ${(e as Error).message}`, { cause: e });
    }
  }

  set(name: string, cfg: WgDeviceConfig): void {
    const op = `configure wireguard device ${name} (wireguard-go, ${cfg.peers.length} peer change(s))`;
    let answer: string;
    try {
      answer = uapiExchange(uapiSocketPath(name, this.socketDir), encodeUapiSet(cfg));
    } catch (e) {
      throw new Error(`${op}: ${(e as Error).message}`, { cause: e });
    }
    const code = uapiErrno(answer);
    if (code !== 0) throw new Error(`${op}: wireguard-go answered errno ${code}${code < 0 ? ` (${strerror(-code)})` : ""}`);
  }
}

/** The wireguard-go executable: $WG_QUICK_USERSPACE_IMPLEMENTATION (as wg-quick) or `wireguard-go` on PATH. */
export function findWireguardGo(env: Record<string, string | undefined> = process.env): string | undefined {
  const name = env.WG_QUICK_USERSPACE_IMPLEMENTATION || "wireguard-go";
  if (name.includes("/")) return name;
  return Bun.which(name, { PATH: `${env.PATH ?? ""}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` }) ?? undefined;
}

/**
 * Starts `bin <name>` and waits for its launcher to exit (the daemon then runs on with
 * the TUN and the UAPI socket in place). Throws with the daemon's own words on failure.
 */
export function startWireguardGo(bin: string, name: string, { timeoutMs = 10_000 } = {}): void {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== "LOG_LEVEL") env[k] = v;
  // Without LOG_LEVEL the daemon's stdio is /dev/null, so our pipes close when the
  // launcher exits. The Debian build refuses to run where the kernel advertises
  // WireGuard unless told the operator prefers it.
  env.WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD = "1";
  const p = Bun.spawnSync([bin, name], { env, stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout: timeoutMs });
  if (p.exitCode !== 0) {
    const said = `${p.stderr.toString()}${p.stdout.toString()}`.trim().split("\n").slice(-3).join(" / ");
    throw new Error(`start ${bin} ${name}: exited ${p.exitCode ?? `on ${p.signalCode ?? "timeout"}`}${said ? `: ${said}` : ""}`);
  }
}
