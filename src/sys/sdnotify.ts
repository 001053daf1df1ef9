/**
 * systemd's notify protocol (sd_notify(3)) without libsystemd: one AF_UNIX datagram per
 * state change to $NOTIFY_SOCKET ("/path" or "@abstract"). With Type=notify the unit is
 * "started" only after READY=1; with WatchdogSec= systemd restarts us unless WATCHDOG=1
 * arrives within WATCHDOG_USEC, so the watchdog pings only while the agent says it is
 * healthy — a wedged agent then gets restarted instead of pinging from a live timer.
 */
import { closeFd, sendDatagram, unixDatagramSocket } from "./unix-socket.ts";
import { realClock, type Clock, type TimerHandle } from "../clock.ts";
import { silentLogger, type Logger } from "../log.ts";

export interface Notifier {
  /** The socket address in use ($NOTIFY_SOCKET). */
  readonly socket: string;
  /** Sends raw newline-separated assignments, e.g. "READY=1\nSTATUS=up". True if sent. */
  notify(state: string): boolean;
  /** READY=1: startup finished (lease settled, dataplane programmed, API up). */
  ready(): boolean;
  /** STOPPING=1: shutdown began. */
  stopping(): boolean;
  /** STATUS=<text>: one line shown by `systemctl status`. */
  status(text: string): boolean;
  /** WATCHDOG=1: one keep-alive. */
  watchdog(): boolean;
  /**
   * Sends WATCHDOG=1 every WATCHDOG_USEC/2 while `healthy()` holds. Returns null when the
   * watchdog is not enabled for this process (WATCHDOG_USEC unset/invalid, or
   * WATCHDOG_PID names another process).
   */
  startWatchdog(clock?: Clock, healthy?: () => boolean): TimerHandle | null;
  /** Closes the socket; later calls reopen it. */
  close(): void;
}

export interface NotifierOptions {
  logger?: Logger;
  pid?: number;
}

/**
 * A notifier for $NOTIFY_SOCKET, or null when not started by systemd with Type=notify.
 * Sending is best effort: failures are logged (once per kind) and reported as `false`,
 * never thrown, because losing a notification must not stop the agent.
 * @example
 * const sd = createNotifier();
 * sd?.startWatchdog(realClock, () => agent.healthy());
 * // ... once ready:
 * sd?.ready();
 */
export function createNotifier(env: Record<string, string | undefined> = process.env, { logger = silentLogger, pid = process.pid }: NotifierOptions = {}): Notifier | null {
  const socket = env.NOTIFY_SOCKET;
  if (!socket || (!socket.startsWith("/") && !socket.startsWith("@"))) {
    if (socket) logger.warn("ignoring NOTIFY_SOCKET: expected an absolute path or @abstract name", { NOTIFY_SOCKET: socket });
    return null;
  }
  let fd = -1;
  let lastError = "";
  const encoder = new TextEncoder();

  const notify = (state: string): boolean => {
    try {
      if (fd < 0) fd = unixDatagramSocket();
      sendDatagram(fd, socket, encoder.encode(state));
      lastError = "";
      return true;
    } catch (e) {
      const msg = (e as Error).message;
      if (msg !== lastError) logger.warn("sd_notify failed", { state: state.split("\n")[0], error: msg });
      lastError = msg;
      return false;
    }
  };

  return {
    socket,
    notify,
    ready: () => notify("READY=1"),
    stopping: () => notify("STOPPING=1"),
    // A newline would start a new assignment: keep STATUS to one line.
    status: (text) => notify(`STATUS=${text.replace(/[\r\n]+/g, " ")}`),
    watchdog: () => notify("WATCHDOG=1"),
    startWatchdog(clock = realClock, healthy = () => true) {
      const intervalMs = watchdogIntervalMs(env, pid);
      if (intervalMs === null) return null;
      let timer: TimerHandle | null = null;
      let cancelled = false;
      const tick = () => {
        if (cancelled) return;
        if (healthy()) notify("WATCHDOG=1");
        else logger.warn("skipping watchdog keep-alive: agent unhealthy");
        timer = clock.after(intervalMs, tick);
      };
      timer = clock.after(intervalMs, tick);
      return {
        cancel() {
          cancelled = true;
          timer?.cancel();
        },
      };
    },
    close() {
      if (fd >= 0) closeFd(fd);
      fd = -1;
    },
  };
}

/** Half of WATCHDOG_USEC in ms (sd_watchdog_enabled's rule), or null if not for this pid. */
export function watchdogIntervalMs(env: Record<string, string | undefined>, pid: number): number | null {
  const usecText = env.WATCHDOG_USEC;
  if (!usecText || !/^\d+$/.test(usecText)) return null;
  const usec = Number(usecText);
  if (usec <= 0) return null;
  const pidText = env.WATCHDOG_PID;
  if (pidText !== undefined && pidText !== "" && Number(pidText) !== pid) return null;
  return Math.max(1, Math.floor(usec / 2000));
}
