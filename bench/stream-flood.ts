/**
 * Prints the gossip node's RSS under a keyless push-pull flood (not a test: run by hand).
 *
 *   bun run bench/stream-flood.ts [connections=32] [sourceIps=8] [MiB=8]
 *
 * A gossip node with lanConfig() listens on 127.0.0.95; a separate process opens
 * `connections` TCP streams from `sourceIps` addresses 127.0.1.10+, each announcing a
 * request of MiB and sending all of it but the last byte (it can never authenticate).
 */
import { connect } from "node:net";
import { realClock } from "../src/clock.ts";
import { createGossip, createUdpTransport, lanConfig } from "../src/gossip/index.ts";
import { silentLogger } from "../src/log.ts";

if (process.argv[2] === "attack") {
  const [, , , addr, n, ips, mib] = process.argv;
  const [host, port] = addr!.split(":") as [string, string];
  const size = Number(mib) * 1024 * 1024;
  const body = new Uint8Array(size - 1).fill(7);
  for (let i = 0; i < Number(n); i++) {
    const s = connect({ host, port: Number(port), localAddress: `127.0.1.${10 + (i % Number(ips))}` });
    s.on("connect", () => {
      const h = new Uint8Array(4);
      new DataView(h.buffer).setUint32(0, size);
      s.write(h);
      s.write(body);
    });
    s.on("error", () => {});
  }
  await Bun.sleep(6_000);
  process.exit(0);
}

const [n = "32", ips = "8", mib = "8"] = process.argv.slice(2);
const k = new Uint8Array(32).fill(1);
const transport = await createUdpTransport({ bindAddr: "127.0.0.95", port: 0, logger: silentLogger });
const g = createGossip({
  name: "victim",
  advertiseAddr: transport.localAddr(),
  transport,
  config: lanConfig(),
  deps: { clock: realClock, logger: silentLogger, delegate: { notifyMessage() {}, localState: () => new Uint8Array(), mergeRemoteState() {} }, keyring: { primary: k, keys: [k] }, clusterName: "flood" },
});
await g.start();
await Bun.sleep(1_000);
const mb = (b: number) => +(b / 1048576).toFixed(1);
const before = process.memoryUsage().rss;
let peak = before;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
const attacker = Bun.spawn([process.execPath, import.meta.path, "attack", transport.localAddr(), n, ips, mib], { stdout: "inherit", stderr: "inherit" });
await attacker.exited;
await Bun.sleep(500);
clearInterval(sampler);
console.log(JSON.stringify({ connections: Number(n), sourceIps: Number(ips), requestMiB: Number(mib), rssBeforeMB: mb(before), rssPeakMB: mb(peak), rssAfterMB: mb(process.memoryUsage().rss), metrics: g.metrics() }));
await g.shutdown();
process.exit(0);
