/**
 * The real wire on loopback: 5 gossip layers over UDP + TCP on distinct 127.0.0.x
 * addresses with free ports, real clock, localConfig(). Waits are polls with deadlines.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { realClock } from "../../src/clock.ts";
import { silentLogger } from "../../src/log.ts";
import { localConfig } from "../../src/gossip/config.ts";
import { createGossip, type GossipNode } from "../../src/gossip/index.ts";
import { createUdpTransport } from "../../src/gossip/udp-transport.ts";
import type { Keyring, MemberState } from "../../src/gossip/types.ts";
import { RecordingDelegate } from "../../sim/gossip-sim.ts";
import { FakeClock } from "../../sim/fake-clock.ts";
import { type Socket, connect } from "node:net";
import { PACKET, Sealer } from "../../src/gossip/security.ts";
import { T } from "../../src/gossip/messages.ts";
import { compound, encode } from "../../src/gossip/codec.ts";
import { poll } from "../../sim/wait.ts";

const key = (b: number): Keyring => {
  const k = new Uint8Array(32).fill(b);
  return { primary: k, keys: [k] };
};

const hasV6 = await createUdpTransport({ bindAddr: "::1", port: 0, logger: silentLogger }).then(
  async (t) => (await t.close(), true),
  () => false,
);

const running: GossipNode[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((g) => g.shutdown()));
});

async function node(name: string, ip: string, keyring: Keyring | null, port = 0) {
  const transport = await createUdpTransport({ bindAddr: ip, port, logger: silentLogger });
  const delegate = new RecordingDelegate();
  const gossip = createGossip({
    name,
    advertiseAddr: transport.localAddr(),
    transport,
    // Generous stream deadline: CI machines may be busy; membership timings stay local.
    config: localConfig({ streamTimeoutMs: 10_000 }),
    deps: { clock: realClock, logger: silentLogger, delegate, keyring, clusterName: "udp-test" },
  });
  await gossip.start();
  running.push(gossip);
  return { name, gossip, delegate, addr: transport.localAddr() };
}

const stateOf = (g: GossipNode, name: string): MemberState | undefined => g.members().find((m) => m.name === name)?.state;

describe("gossip over real UDP/TCP on 127.0.0.x", () => {
  test("5 nodes join, broadcast, detect a killed member as dead, and see it come back", async () => {
    const k = key(7);
    const nodes: Awaited<ReturnType<typeof node>>[] = [];
    for (let i = 0; i < 5; i++) nodes.push(await node(`u${i}`, `127.0.0.${20 + i}`, k));
    const seed = nodes[0]!.addr;
    expect(await Promise.all(nodes.slice(1).map((n) => n.gossip.join([seed])))).toEqual([1, 1, 1, 1]);
    const names = nodes.map((n) => n.name);
    expect(await poll(() => nodes.every((n) => names.every((x) => stateOf(n.gossip, x) === "alive")), 5_000)).toBe(true);

    nodes[1]!.gossip.broadcast("hello", new TextEncoder().encode("from-u1"));
    const receivers = nodes.filter((_, i) => i !== 1);
    expect(await poll(() => receivers.every((n) => n.delegate.messages.some((m) => m.payload === "from-u1" && m.from === "u1")), 5_000)).toBe(true);

    const victim = nodes[3]!;
    await victim.gossip.shutdown();
    const rest = nodes.filter((n) => n !== victim);
    expect(await poll(() => rest.every((n) => stateOf(n.gossip, "u3") === "dead"), 10_000)).toBe(true);

    // Restart: a new gossip instance with the same name (and address) rejoins and refutes.
    const port = Number(victim.addr.split(":")[1]);
    const again = await node("u3", "127.0.0.23", k, port);
    expect(await again.gossip.join([seed])).toBe(1);
    expect(await poll(() => rest.every((n) => stateOf(n.gossip, "u3") === "alive") && names.every((x) => stateOf(again.gossip, x) === "alive"), 10_000)).toBe(true);
    for (const n of nodes) expect(n.gossip.metrics().decryptFailures).toBe(0);
  }, 30_000);

  test("a node with another key cannot join and its packets count as decrypt failures", async () => {
    const a = await node("k0", "127.0.0.30", key(1));
    const b = await node("k1", "127.0.0.31", key(1));
    expect(await b.gossip.join([a.addr])).toBe(1);
    const intruder = await node("x", "127.0.0.32", key(2));
    const ac = new AbortController();
    const joined = intruder.gossip.join([a.addr], ac.signal);
    expect(await poll(() => a.gossip.metrics().decryptFailures > 0, 5_000)).toBe(true);
    ac.abort();
    expect(await joined).toBe(0);
    expect(a.gossip.members().map((m) => m.name).sort()).toEqual(["k0", "k1"]);
    expect(intruder.gossip.members().map((m) => m.name)).toEqual(["x"]);
    // A well-formed ping sealed under the wrong key, sent as a UDP packet, is counted too.
    const before = a.gossip.metrics();
    const raw = await Bun.udpSocket({ hostname: "127.0.0.32", port: 0 });
    const wrongKey = new Sealer({ keyring: key(2), clusterName: "udp-test", addr: `127.0.0.32:${raw.port}`, clock: realClock });
    const wrong = wrongKey.seal(compound([encode({ t: T.ping, seq: 1, target: "k0", from: "x" })]), PACKET);
    const [host, port] = a.addr.split(":");
    raw.send(wrong, Number(port), host!);
    expect(await poll(() => a.gossip.metrics().decryptFailures === before.decryptFailures + 1, 5_000)).toBe(true);
    raw.close();
    expect(a.gossip.metrics().packetsIn).toBeGreaterThan(before.packetsIn);
    expect(a.gossip.metrics().decodeFailures).toBe(0);
  }, 20_000);

  test("push-pull carries multi-megabyte delegate state over TCP both ways", async () => {
    const a = await node("big0", "127.0.0.40", key(3));
    const b = await node("big1", "127.0.0.41", key(3));
    a.delegate.state.set("blob-a", "a".repeat(3_000_000));
    b.delegate.state.set("blob-b", "b".repeat(2_000_000));
    expect(await b.gossip.join([a.addr])).toBe(1);
    expect(a.delegate.state.get("blob-b")?.length).toBe(2_000_000);
    expect(b.delegate.state.get("blob-a")?.length).toBe(3_000_000);
    expect(b.gossip.metrics().bytesIn).toBeGreaterThan(3_000_000);
  }, 20_000);

  test("transport: refused streams reject, oversized replies reject, packets above the limit are dropped", async () => {
    const t1 = await createUdpTransport({ bindAddr: "127.0.0.50", port: 0, logger: silentLogger, maxPacket: 100 });
    const t2 = await createUdpTransport({ bindAddr: "127.0.0.51", port: 0, logger: silentLogger });
    try {
      expect(t1.localAddr()).toMatch(/^127\.0\.0\.50:\d+$/);
      const ac = new AbortController();
      await expect(t2.stream("127.0.0.52:9", new Uint8Array([1]), { signal: ac.signal, maxBytes: 10 })).rejects.toThrow(/stream to 127.0.0.52:9/);
      t1.onStream(async () => new Uint8Array(1000), { maxBytes: 10 });
      await expect(t2.stream(t1.localAddr(), new Uint8Array([1]), { signal: ac.signal, maxBytes: 10 })).rejects.toThrow();
      await expect(t2.stream(t1.localAddr(), new Uint8Array(50), { signal: ac.signal, maxBytes: 5000 })).rejects.toThrow(/closed without a reply|ECONNRESET/);
      expect((await t2.stream(t1.localAddr(), new Uint8Array(5), { signal: ac.signal, maxBytes: 5000 })).length).toBe(1000);
      const got: number[] = [];
      t1.onPacket((d) => got.push(d.length));
      t2.sendPacket(t1.localAddr(), new Uint8Array(200));
      t2.sendPacket(t1.localAddr(), new Uint8Array(80)); // loopback keeps order: once 80 is in, 200 was dropped
      expect(await poll(() => got.length > 0, 2_000)).toBe(true);
      expect(got).toEqual([80]);
      t2.sendPacket("not-an-address", new Uint8Array(1)); // dropped, no throw
    } finally {
      await t1.close();
      await t2.close();
    }
  }, 10_000);

  test("transport: an ICMP error from a dead peer does not swallow the next packet to a live one", async () => {
    const a = await createUdpTransport({ bindAddr: "127.0.0.53", port: 0, logger: silentLogger });
    const b = await createUdpTransport({ bindAddr: "127.0.0.54", port: 0, logger: silentLogger });
    try {
      let got = 0;
      b.onPacket(() => got++);
      for (let i = 0; i < 500; i++) {
        a.sendPacket("127.0.0.55:9", new Uint8Array([1])); // nobody there: port unreachable
        await new Promise((r) => setImmediate(r)); // let the ICMP error arrive
        a.sendPacket(b.localAddr(), new Uint8Array([2]));
      }
      expect(await poll(() => got === 500, 3_000)).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  }, 10_000);

  // Skipped (with this reason) on hosts where IPv6 loopback is disabled.
  test.skipIf(!hasV6)("IPv6 loopback: two nodes join over [::1]", async () => {
    const a = await node("v6a", "::1", key(4));
    const b = await node("v6b", "::1", key(4));
    expect(a.addr).toMatch(/^\[::1\]:\d+$/);
    expect(await b.gossip.join([a.addr])).toBe(1);
    expect(await poll(() => stateOf(a.gossip, "v6b") === "alive" && stateOf(b.gossip, "v6a") === "alive", 5_000)).toBe(true);
    b.gossip.broadcast("k", new TextEncoder().encode("over-v6"));
    expect(await poll(() => a.delegate.messages.some((m) => m.payload === "over-v6"), 5_000)).toBe(true);
  }, 10_000);

  test("a keyless slow-stream flood from one host cannot lock honest joins out", async () => {
    const a = await node("s0", "127.0.0.56", key(5));
    const b = await node("s1", "127.0.0.57", key(5));
    const [host, port] = a.addr.split(":") as [string, string];
    let stopped = false;
    let opened = 0;
    let refusedOrClosed = 0;
    const socks = new Set<Socket>();
    // 40 connections from 127.0.0.59, each announcing 4 MiB and trickling it a byte at a
    // time, reopened as soon as they are closed or refused.
    const open = () => {
      if (stopped) return;
      const s = connect({ host, port: Number(port), localAddress: "127.0.0.59" });
      s.on("connect", () => {
        opened++;
        s.write(Uint8Array.of(0, 0x40, 0, 0));
        socks.add(s);
      });
      s.on("error", () => {});
      s.on("close", () => {
        socks.delete(s);
        refusedOrClosed++;
        if (!stopped) setTimeout(open, 1);
      });
    };
    const trickle = setInterval(() => socks.forEach((s) => s.write(Uint8Array.of(0x42))), 50);
    try {
      for (let i = 0; i < 40; i++) open();
      expect(await poll(() => opened >= 40, 5_000)).toBe(true);
      const t0 = Date.now();
      expect(await b.gossip.join([a.addr])).toBe(1);
      expect(Date.now() - t0).toBeLessThan(5_000); // ~20 ms idle; generous for busy CI machines
      expect(await poll(() => stateOf(a.gossip, "s1") === "alive", 5_000)).toBe(true);
      expect(refusedOrClosed).toBeGreaterThan(0); // the flood was refused beyond its share
    } finally {
      stopped = true;
      clearInterval(trickle);
      for (const s of socks) s.destroy();
    }
  }, 20_000);

  test("an incoming stream that never sends its length prefix is closed by the deadline", async () => {
    const clock = new FakeClock();
    const t = await createUdpTransport({ bindAddr: "127.0.0.58", port: 0, logger: silentLogger, clock, prefixTimeoutMs: 2_000 });
    t.onStream(async (r) => r, { maxBytes: 100 });
    const [host, port] = t.localAddr().split(":") as [string, string];
    let closed = false;
    const s = await Bun.connect({ hostname: host, port: Number(port), socket: { data() {}, close: () => void (closed = true), error() {} } });
    try {
      clock.advance(1_999);
      expect(await poll(() => closed, 100)).toBe(false);
      clock.advance(1);
      expect(await poll(() => closed, 2_000)).toBe(true);
    } finally {
      s.end();
      await t.close();
    }
  }, 10_000);
});
