/**
 * The udp backend's socket (src/sys/tun.ts openUdpSocket) on loopback: it must be the
 * only socket on its address and port. No root needed (a high port on 127.0.0.1); the
 * cross-user takeover itself is tested in test/hardening/udp-tunnel.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { closeFd, openUdpSocket } from "../../src/sys/tun.ts";

describe("udp backend socket", () => {
  test("a second bind of the same address and port fails with EADDRINUSE and says why", () => {
    let first = -1;
    let port = 0;
    // A random high port; retry if some other program holds it.
    for (let i = 0; i < 20 && first < 0; i++) {
      port = 20000 + Math.floor(Math.random() * 40000);
      try {
        first = openUdpSocket("127.0.0.1", port);
      } catch {}
    }
    expect(first).toBeGreaterThanOrEqual(0);
    try {
      expect(() => openUdpSocket("127.0.0.1", port)).toThrow(`bind UDP 127.0.0.1:${port}: Address already in use: another socket holds it`);
      expect(() => openUdpSocket("0.0.0.0", port)).toThrow("Address already in use");
    } finally {
      closeFd(first, "test socket");
    }
    // Once closed, the port is free again at once (UDP has no TIME_WAIT): a restart rebinds.
    closeFd(openUdpSocket("127.0.0.1", port), "test socket");
  });
});
