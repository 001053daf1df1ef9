/**
 * A TCP transfer between two namespaces with socat, checked end to end: random bytes
 * sent from one namespace to a listener in the other arrive with the same SHA-256.
 * IPv4 or IPv6 (the address says which). For kernel tests.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exec } from "./netns.ts";

export interface TransferResult {
  /** The sender connected and sent everything. */
  sent: boolean;
  /** The listener saw EOF and wrote everything within the deadline. */
  received: boolean;
  /** The received bytes are exactly the sent ones. */
  intact: boolean;
}

/** Sends `bytes` random bytes from `fromNs` to `toIp`:`port` (a listener in `toNs`) over TCP. */
export async function tcpTransfer(fromNs: string, toNs: string, toIp: string, { port = 9000, bytes = 4 << 20 }: { port?: number; bytes?: number } = {}): Promise<TransferResult> {
  const dir = mkdtempSync(join(tmpdir(), "weft-xfer-"));
  const v6 = toIp.includes(":");
  try {
    const src = join(dir, "src");
    const dst = join(dir, "dst");
    writeFileSync(src, randomBytes(bytes));
    const listen = v6 ? `TCP6-LISTEN:${port},reuseaddr,ipv6only=1` : `TCP-LISTEN:${port},reuseaddr`;
    const srv = Bun.spawn(["ip", "netns", "exec", toNs, "socat", "-u", listen, `OPEN:${dst},creat,trunc`], { stdout: "ignore", stderr: "pipe" });
    try {
      let sent = false;
      for (let i = 0; i < 50 && !sent; i++) {
        sent = exec(fromNs, ["timeout", "20", "socat", "-u", `OPEN:${src}`, v6 ? `TCP:[${toIp}]:${port}` : `TCP:${toIp}:${port}`], { check: false, timeoutMs: 25_000 }).code === 0;
        if (!sent) Bun.sleepSync(50); // listener not up yet: retry until it is
      }
      // The listener exits by itself once it has read EOF and written everything.
      const received = sent && (await Promise.race([srv.exited.then(() => true), Bun.sleep(10_000).then(() => false)]));
      const hash = (f: string) => new Bun.CryptoHasher("sha256").update(readFileSync(f)).digest("hex");
      return { sent, received, intact: received && hash(dst) === hash(src) };
    } finally {
      srv.kill();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
