/**
 * Replays on the real wire: UDP + TCP on 127.0.0.8x, real clock. What a node's transport
 * sends is recorded (as a capture on the path would be), then replayed with raw sockets
 * once the node is gone: pings from its own address and from another one, and an old
 * push-pull after its lease was swept and another node took the subnet. Waits are polls
 * with deadlines; "no reply" is a bounded wait for one that must not come.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { realClock } from "../../src/clock.ts";
import { parseNetConf } from "../../src/net-conf.ts";
import { type GossipConfig, localConfig } from "../../src/gossip/config.ts";
import { createGossip, type GossipNode } from "../../src/gossip/index.ts";
import type { Transport } from "../../src/gossip/transport.ts";
import type { Keyring } from "../../src/gossip/types.ts";
import { createUdpTransport } from "../../src/gossip/udp-transport.ts";
import { createCluster } from "../../src/lease/cluster.ts";
import type { ClusterCore } from "../../src/lease/cluster-options.ts";
import { silentLogger } from "../../src/log.ts";
import { RecordingDelegate } from "../../sim/gossip-sim.ts";
import { poll } from "../../sim/wait.ts";

const base = mkdtempSync(join(tmpdir(), "weft-replay-udp-"));
const stops: (() => Promise<void>)[] = [];
afterAll(async () => {
  await Promise.all(stops.map((s) => s().catch(() => {})));
  rmSync(base, { recursive: true, force: true });
});
const keyring: Keyring = (() => {
  const k = new Uint8Array(32).fill(11);
  return { primary: k, keys: [k] };
})();

interface Sent {
  kind: "packet" | "stream";
  to: string;
  data: Uint8Array;
}
/** `t`, recording a copy of every packet and stream request it sends. */
function recording(t: Transport, log: Sent[]): Transport {
  return {
    localAddr: () => t.localAddr(),
    sendPacket(to, data) {
      log.push({ kind: "packet", to, data: data.slice() });
      t.sendPacket(to, data);
    },
    onPacket: (h) => t.onPacket(h),
    stream(to, request, opts) {
      log.push({ kind: "stream", to, data: request.slice() });
      return t.stream(to, request, opts);
    },
    onStream: (h, opts) => t.onStream(h, opts),
    close: () => t.close(),
  };
}
const split = (addr: string): [string, number] => {
  const i = addr.lastIndexOf(":");
  return [addr.slice(0, i), Number(addr.slice(i + 1))];
};

/** Sends `req` as one framed stream request from `localAddress`; resolves to what came back before the close. */
function tcpRequest(to: string, req: Uint8Array, localAddress: string): Promise<number> {
  const [host, port] = split(to);
  return new Promise((resolve) => {
    let got = 0;
    const sock = connect({ host, port, localAddress });
    const frame = new Uint8Array(4 + req.length);
    new DataView(frame.buffer).setUint32(0, req.length);
    frame.set(req, 4);
    sock.on("connect", () => sock.write(frame));
    sock.on("data", (d: Buffer) => void (got += d.length));
    sock.on("close", () => resolve(got));
    sock.on("error", () => {});
    sock.setTimeout(5_000, () => sock.destroy());
  });
}

describe("replays over real UDP/TCP on 127.0.0.x", () => {
  test("pings replayed from the dead sender's own address, or from another, get no reply", async () => {
    const mk = async (ip: string, log?: Sent[]) => {
      const t = await createUdpTransport({ bindAddr: ip, port: 0, logger: silentLogger });
      const transport = log ? recording(t, log) : t;
      const g: GossipNode = createGossip({
        name: ip, advertiseAddr: t.localAddr(), transport, config: localConfig(),
        deps: { clock: realClock, logger: silentLogger, delegate: new RecordingDelegate(), keyring, clusterName: "replay-udp" },
      });
      stops.push(() => g.shutdown());
      return { g, addr: t.localAddr() };
    };
    const sent: Sent[] = [];
    const a = await mk("127.0.0.81");
    const x = await mk("127.0.0.82", sent);
    await a.g.start();
    expect(await x.g.join([a.addr])).toBe(1);
    // A few probe rounds: x pings a every probe interval.
    expect(await poll(() => sent.filter((s) => s.kind === "packet" && s.to === a.addr).length >= 20, 10_000)).toBe(true);
    await x.g.shutdown();
    const captured = sent.filter((s) => s.kind === "packet" && s.to === a.addr).map((s) => s.data);
    // Wait until a has reaped x: from then on a sends nothing to x's address of its own accord.
    expect(await poll(() => !a.g.members().some((m) => m.name === x.g.localName()), 20_000)).toBe(true);
    const [xIp, xPort] = split(x.addr);
    const [aIp, aPort] = split(a.addr);
    for (const [from, port] of [[xIp, xPort], ["127.0.0.83", 0]] as const) {
      const got: Uint8Array[] = [];
      const sock = await Bun.udpSocket({ hostname: from, port, socket: { data: (_s, d) => void got.push(d) } });
      const before = a.g.metrics();
      for (const d of captured) while (!sock.send(d, aPort, aIp)) await Bun.sleep(1);
      expect(await poll(() => a.g.metrics().packetsIn >= before.packetsIn + captured.length, 5_000)).toBe(true);
      // Replies go out from within the packet handler: any would have arrived by now, or shortly.
      expect(await poll(() => got.length > 0, 500)).toBe(false);
      sock.close();
      const after = a.g.metrics();
      const refused = port === 0 ? after.senderMismatches! - before.senderMismatches! : after.replaysRejected! - before.replaysRejected!;
      expect({ from, refused }).toEqual({ from, refused: captured.length });
    }
  }, 60_000);

  test("an old push-pull replayed after the sender's lease was swept and its subnet re-leased changes nothing and gets no reply", async () => {
    // Three subnets; short lease TTL and clock-skew window so that the test runs in seconds.
    const net = parseNetConf({ Network: "10.244.0.0/16", SubnetLen: 24, SubnetMin: "10.244.1.0", SubnetMax: "10.244.3.0", Backend: { Type: "vxlan" } });
    const gossipConfig: GossipConfig = localConfig();
    const clusters = new Map<string, ClusterCore>();
    const node = async (name: string, ip: string, seeds: string[], port = 0, log?: Sent[]) => {
      const t = await createUdpTransport({ bindAddr: ip, port, logger: silentLogger });
      const cluster = createCluster({
        net, nodeName: name,
        // Peers refuse loopback public IPs; the record's address is not the loopback bind address.
        publicIp: ip.replace(/^127\.0\./, "198.51."),
        advertiseAddr: t.localAddr(), seeds,
        backend: (nodeId) => ({ type: "vxlan", vtepMac: `0e:${nodeId.slice(0, 10).replace(/(..)(?!$)/g, "$1:")}` }),
        stateDir: join(base, name), transport: log ? recording(t, log) : t, gossipConfig, keyring, clusterName: "replay-udp",
        clock: realClock, logger: silentLogger, settleMs: 300, leaseTtlMs: 2_000, sweepMs: 250, clockSkewMs: 2_000,
      });
      stops.push(() => cluster.stop({ leave: false }));
      clusters.set(name, cluster);
      return { cluster, addr: t.localAddr() };
    };
    const a = await node("a", "127.0.0.84", []);
    await a.cluster.start(AbortSignal.timeout(10_000));
    const b = await node("b", "127.0.0.85", [a.addr]);
    const x = await node("x", "127.0.0.86", [a.addr]);
    await Promise.all([b.cluster.start(AbortSignal.timeout(10_000)), x.cluster.start(AbortSignal.timeout(10_000))]);
    const xSubnet = x.cluster.ownLease()!.subnet;
    // x restarts with its persisted lease; its join push-pull (its record inside) is recorded.
    await x.cluster.stop({ leave: false });
    const sent: Sent[] = [];
    const [, xPort] = split(x.addr);
    const x2 = await node("x", "127.0.0.86", [a.addr], xPort, sent);
    await x2.cluster.start(AbortSignal.timeout(10_000));
    expect(await poll(() => sent.some((s) => s.kind === "stream" && s.to === a.addr), 5_000)).toBe(true);
    const rejoin = sent.find((s) => s.kind === "stream" && s.to === a.addr)!;
    await x2.cluster.stop({ leave: false });
    // x's lease expires and is swept; y takes its subnet, the only free one.
    const gone = () => ["a", "b"].every((n) => clusters.get(n)!.table().get("x") === undefined);
    expect(await poll(gone, 20_000)).toBe(true);
    const y = await node("y", "127.0.0.87", [a.addr]);
    await y.cluster.start(AbortSignal.timeout(10_000));
    expect(y.cluster.ownLease()!.subnet).toBe(xSubnet);
    const holder = (n: string) => clusters.get(n)!.leases().find((l) => l.subnet === xSubnet)?.nodeName;
    expect(await poll(() => ["a", "b", "y"].every((n) => holder(n) === "y"), 10_000)).toBe(true);

    const before = a.cluster.gossipMetrics();
    // From x's own IP, as x would have sent it.
    expect(await tcpRequest(a.addr, rejoin.data, "127.0.0.86")).toBe(0);
    // Whatever it could have changed would spread within a second or two: wait that long.
    expect(await poll(() => ["a", "b"].some((n) => clusters.get(n)!.table().get("x") !== undefined || holder(n) !== "y"), 2_000)).toBe(false);
    for (const n of ["a", "b", "y"]) expect({ n, holder: holder(n), x: clusters.get(n)!.table().get("x") }).toEqual({ n, holder: "y", x: undefined });
    expect(a.cluster.gossipMetrics().staleRejected! - before.staleRejected!).toBe(1);
  }, 60_000);
});
