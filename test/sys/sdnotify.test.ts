/**
 * sd_notify against real AF_UNIX datagram sockets (a path one and an abstract one) made
 * with the same libc FFI: what systemd would receive, byte for byte.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bindUnix, closeFd, recvDatagram, sockaddrUn, unixDatagramSocket } from "../../src/sys/unix-socket.ts";
import { createLogger } from "../../src/log.ts";
import { createNotifier, watchdogIntervalMs } from "../../src/sys/sdnotify.ts";
import { FakeClock } from "../../sim/fake-clock.ts";

const dir = mkdtempSync(join(tmpdir(), "wop-sdnotify-"));
const fds: number[] = [];
afterAll(() => {
  for (const fd of fds) closeFd(fd);
  rmSync(dir, { recursive: true, force: true });
});

function listen(address: string): number {
  const fd = unixDatagramSocket({ nonBlocking: true });
  fds.push(fd);
  bindUnix(fd, address);
  return fd;
}
const recvText = (fd: number, timeoutMs = 1000) => {
  const b = recvDatagram(fd, timeoutMs);
  return b === null ? null : new TextDecoder().decode(b);
};

const addresses = [
  ["path", () => join(dir, `notify-${Math.random().toString(36).slice(2)}.sock`)],
  ["abstract", () => `@wop-sdnotify-${process.pid}-${Math.random().toString(36).slice(2)}`],
] as const;

describe.each(addresses)("%s socket", (_kind, makeAddress) => {
  test("READY=1, STATUS=..., STOPPING=1, WATCHDOG=1 arrive as sent", () => {
    const address = makeAddress();
    const fd = listen(address);
    const sd = createNotifier({ NOTIFY_SOCKET: address })!;
    expect(sd).not.toBeNull();
    try {
      expect(sd.ready()).toBe(true);
      expect(sd.status("lease 10.244.3.0/24\nprogrammed")).toBe(true);
      expect(sd.watchdog()).toBe(true);
      expect(sd.stopping()).toBe(true);
      expect(recvText(fd)).toBe("READY=1");
      expect(recvText(fd)).toBe("STATUS=lease 10.244.3.0/24 programmed");
      expect(recvText(fd)).toBe("WATCHDOG=1");
      expect(recvText(fd)).toBe("STOPPING=1");
      expect(recvText(fd, 50)).toBeNull();
    } finally {
      sd.close();
    }
  });

  test("startWatchdog pings at half of WATCHDOG_USEC, only while healthy, until cancelled", () => {
    const address = makeAddress();
    const fd = listen(address);
    const clock = new FakeClock();
    let healthy = true;
    const sd = createNotifier({ NOTIFY_SOCKET: address, WATCHDOG_USEC: "30000000", WATCHDOG_PID: String(process.pid) })!;
    const h = sd.startWatchdog(clock, () => healthy)!;
    expect(h).not.toBeNull();
    clock.advance(14_999);
    expect(recvText(fd, 20)).toBeNull();
    clock.advance(1);
    expect(recvText(fd)).toBe("WATCHDOG=1");
    clock.advance(15_000);
    expect(recvText(fd)).toBe("WATCHDOG=1");
    healthy = false;
    clock.advance(15_000);
    expect(recvText(fd, 20)).toBeNull();
    healthy = true;
    clock.advance(15_000);
    expect(recvText(fd)).toBe("WATCHDOG=1");
    h.cancel();
    clock.advance(60_000);
    expect(recvText(fd, 20)).toBeNull();
    expect(clock.pending).toBe(0);
    sd.close();
  });
});

describe("configuration", () => {
  test("no NOTIFY_SOCKET (or a relative one) means no notifier", () => {
    expect(createNotifier({})).toBeNull();
    expect(createNotifier({ NOTIFY_SOCKET: "" })).toBeNull();
    expect(createNotifier({ NOTIFY_SOCKET: "relative.sock" })).toBeNull();
  });

  test.each([
    [{ WATCHDOG_USEC: "30000000" }, 15_000],
    [{ WATCHDOG_USEC: "30000000", WATCHDOG_PID: "4242" }, 15_000],
    [{ WATCHDOG_USEC: "30000000", WATCHDOG_PID: "999" }, null],
    [{ WATCHDOG_USEC: "0" }, null],
    [{ WATCHDOG_USEC: "abc" }, null],
    [{}, null],
  ] as const)("watchdogIntervalMs(%j) for pid 4242 = %p", (env, want) => {
    expect(watchdogIntervalMs(env, 4242)).toBe(want);
  });

  test("startWatchdog returns null when WATCHDOG_PID names another process", () => {
    const sd = createNotifier({ NOTIFY_SOCKET: "@wop-unused", WATCHDOG_USEC: "1000000", WATCHDOG_PID: String(process.pid + 1) })!;
    expect(sd.startWatchdog(new FakeClock())).toBeNull();
  });

  test("a socket nobody listens on: false and one warning, never a throw", () => {
    const lines: string[] = [];
    const sd = createNotifier({ NOTIFY_SOCKET: join(dir, "nobody.sock") }, { logger: createLogger({ write: (l) => lines.push(l) }) })!;
    expect(sd.ready()).toBe(false);
    expect(sd.ready()).toBe(false);
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain("No such file or directory");
    sd.close();
  });

  test.each([
    ["/run/systemd/notify", 2 + 19 + 1, "path keeps its NUL"],
    ["@abc", 2 + 1 + 3, "abstract: leading NUL, exact length"],
  ])("sockaddrUn(%s) has length %d (%s)", (addr, len) => {
    const sa = sockaddrUn(addr);
    expect(sa.len).toBe(len);
    expect(sa.buf[0]).toBe(1); // AF_UNIX, little-endian u16
    expect(sa.buf[2]).toBe(addr.startsWith("@") ? 0 : "/".charCodeAt(0));
  });

  test("sockaddrUn rejects an address that does not fit", () => {
    expect(() => sockaddrUn("/" + "x".repeat(200))).toThrow(/longer than 107/);
    expect(() => sockaddrUn("")).toThrow(/empty/);
  });
});
