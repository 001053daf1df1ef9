/**
 * Anti-replay on the in-memory network: captured packets and streams, replayed from their
 * original source or from elsewhere, get no reply and change nothing; replies are never
 * larger than their request; clocks may disagree within maxClockSkewMs; a full seen-id
 * cache lets no replay in; gossip addresses are IP:port only; the three-step rolling
 * upgrade of the wire format keeps the cluster whole.
 */
import { describe, expect, test } from "bun:test";
import { type Message, T } from "../../src/gossip/messages.ts";
import { compound, encode } from "../../src/gossip/codec.ts";
import { decodePacket } from "./decode-packet.ts";
import type { LegacyWire } from "../../src/gossip/config.ts";
import { Opened, PACKET, REQUEST, Sealer } from "../../src/gossip/security.ts";
import type { GossipMetrics, Keyring } from "../../src/gossip/types.ts";
import { createLogger } from "../../src/log.ts";
import { Sim, type SimNode, allSee, view } from "../../sim/gossip-sim.ts";

const keyring: Keyring = (() => {
  const k = new Uint8Array(32).fill(9);
  return { primary: k, keys: [k] };
})();
const signal = new AbortController().signal;

/** A key holder at `addr`: seals fresh messages from there and records the packets it receives. */
function keyHolder(sim: Sim, addr: string) {
  const t = sim.net.transport(addr);
  const got: Uint8Array[] = [];
  t.onPacket((d) => void got.push(d));
  const sealer = new Sealer({ keyring, clusterName: "test", addr, clock: sim.clock });
  return { addr, t, got, sealer, packet: (...msgs: object[]): Uint8Array => sealer.seal(compound(msgs.map(encode)), PACKET) };
}

const opener = (sim: Sim) => new Sealer({ keyring, clusterName: "test", addr: "10.66.0.250:1", clock: sim.clock });
/** The messages of a sealed packet (it must open). */
function messagesOf(sim: Sim, data: Uint8Array): Message[] {
  return decodePacket(opener(sim).open(data, PACKET, new Opened())!).messages;
}

const counts = (m: GossipMetrics) => ({ replays: m.replaysRejected, stale: m.staleRejected, mismatches: m.senderMismatches, decrypt: m.decryptFailures, decode: m.decodeFailures });
const diff = (a: GossipMetrics, b: GossipMetrics) => {
  const x = counts(a);
  const y = counts(b);
  return Object.fromEntries(Object.entries(y).map(([k, v]) => [k, v! - x[k as keyof typeof x]!]));
};

/** Records every stream request and its reply on the network. */
function recordStreams(sim: Sim) {
  const log: { from: string; to: string; req: Uint8Array; reply?: Uint8Array }[] = [];
  const stream = sim.net.stream.bind(sim.net);
  sim.net.stream = (from, to, req, sig, maxBytes) => {
    const e: (typeof log)[number] = { from, to, req: req.slice() };
    log.push(e);
    const p = stream(from, to, req, sig, maxBytes);
    p.then((r) => void (e.reply = r.slice()), () => {});
    return p;
  };
  return log;
}

describe("replayed packets", () => {
  test("a ping replayed from its own source gets no reply and spends no retransmits; the one ack was no larger than the ping", async () => {
    const sim = new Sim({ seed: 61, keyring });
    const [target] = await sim.cluster(1);
    // Broadcasts waiting for a ride (the target has nobody to gossip them to but us).
    for (let i = 0; i < 30; i++) target!.gossip.broadcast(`k${i}`, new Uint8Array(100));
    const queued = target!.gossip.queuedBroadcasts();
    const p = keyHolder(sim, "10.66.0.1:7946");
    const ping = p.packet({ t: T.ping, seq: 7, target: "n0", from: "p" });
    p.t.sendPacket(target!.addr, ping);
    await sim.run(50);
    expect(p.got.length).toBe(1);
    expect(messagesOf(sim, p.got[0]!)[0]).toEqual({ t: T.ack, seq: 7 });
    expect(p.got[0]!.length).toBeLessThanOrEqual(ping.length);
    const afterAck = target!.gossip.queuedBroadcasts();
    const m0 = target!.gossip.metrics();
    for (let i = 0; i < 200; i++) p.t.sendPacket(target!.addr, ping);
    await sim.run(200);
    expect(p.got.length).toBe(1);
    expect(target!.gossip.queuedBroadcasts()).toBe(afterAck);
    expect(afterAck).toBeGreaterThan(queued - 5);
    expect(diff(m0, target!.gossip.metrics())).toEqual({ replays: 200, stale: 0, mismatches: 0, decrypt: 0, decode: 0 });
  });

  test("a ping resent from another address gets nothing back: the sealed sender is not its source", async () => {
    const sim = new Sim({ seed: 62, keyring });
    const [target] = await sim.cluster(1);
    const p = keyHolder(sim, "10.66.0.1:7946");
    const q = keyHolder(sim, "10.66.0.2:7946");
    const m0 = target!.gossip.metrics();
    // Never seen from p: fresh, but from q's address.
    for (let i = 0; i < 50; i++) q.t.sendPacket(target!.addr, p.packet({ t: T.ping, seq: i, target: "n0", from: "p" }));
    await sim.run(200);
    expect({ p: p.got.length, q: q.got.length }).toEqual({ p: 0, q: 0 });
    expect(diff(m0, target!.gossip.metrics())).toEqual({ replays: 0, stale: 0, mismatches: 50, decrypt: 0, decode: 0 });
  });

  test("no reply is larger than the request: acks, the relayed ping and the nack of an indirect probe", async () => {
    const sim = new Sim({ seed: 63, keyring });
    const [target] = await sim.cluster(1);
    for (let i = 0; i < 200; i++) target!.gossip.broadcast(`k${i}`, new Uint8Array(50));
    const p = keyHolder(sim, "10.66.0.1:7946");
    const q = keyHolder(sim, "10.66.0.2:7946"); // the member to probe indirectly; never answers
    const sent: [string, number, number][] = [];
    for (let i = 0; i < 20; i++) {
      // Small pings, and pings that carry news of their own (room for broadcasts in the ack).
      const news = { t: T.user, origin: "p", key: "k", seq: i + 1, payload: new Uint8Array(i % 2 ? 600 : 0) };
      const ping = p.packet({ t: T.ping, seq: i, target: "n0", from: "p" }, news);
      p.t.sendPacket(target!.addr, ping);
      await sim.run(20);
      sent.push(["ack", ping.length, p.got.at(-1)!.length]);
    }
    const before = p.got.length;
    const indirect = p.packet({ t: T.indirect, seq: 99, target: "q", targetAddr: q.addr, from: "p" });
    p.t.sendPacket(target!.addr, indirect);
    await sim.run(500);
    expect(q.got.length).toBe(1);
    expect(messagesOf(sim, q.got[0]!)[0]).toMatchObject({ t: T.ping, target: "q" });
    expect(p.got.length).toBe(before + 1);
    expect(messagesOf(sim, p.got.at(-1)!)[0]).toEqual({ t: T.nack, seq: 99 });
    sent.push(["relayed ping", indirect.length, q.got[0]!.length], ["nack", indirect.length, p.got.at(-1)!.length]);
    expect(sent.filter(([, req, reply]) => reply > req)).toEqual([]);
    // The acks still carried broadcasts (the budget is the request's size, not zero).
    expect(p.got.some((d) => messagesOf(sim, d).length > 1)).toBe(true);
  });

  test("IPv6 gossip addresses of very different lengths: a ping still gets its ack, larger than the ping by at most the difference of the two addresses", async () => {
    const sim = new Sim({ seed: 65, keyring });
    const long = "[2001:db8:1234:5678:9abc:def0:1234:5678]:7946";
    const target = await sim.add("n0", 0, { addr: long });
    for (let i = 0; i < 50; i++) target.gossip.broadcast(`k${i}`, new Uint8Array(40));
    const p = keyHolder(sim, "[::2]:7946");
    const slack = long.length - p.addr.length;
    for (let i = 0; i < 10; i++) {
      const ping = p.packet({ t: T.ping, seq: i, target: "n0", from: "p" });
      p.t.sendPacket(target.addr, ping);
      await sim.run(20);
      expect(p.got.length).toBe(i + 1);
      expect(messagesOf(sim, p.got[i]!)[0]).toEqual({ t: T.ack, seq: i });
      expect(p.got[i]!.length).toBeLessThanOrEqual(ping.length + slack);
    }
    // The other way round the reply is held to the request's own size.
    const q = keyHolder(sim, long.replace("5678]", "5679]"));
    const short = await sim.add("n1", 1, { addr: "[::3]:7946" });
    const ping = q.packet({ t: T.ping, seq: 1, target: "n1", from: "q" });
    q.t.sendPacket(short.addr, ping);
    await sim.run(20);
    expect(q.got.length).toBe(1);
    expect(q.got[0]!.length).toBeLessThanOrEqual(ping.length);
  });

  test("a packet with many pings gets replies only up to its own size in total", async () => {
    const sim = new Sim({ seed: 64, keyring });
    const [target] = await sim.cluster(1);
    const p = keyHolder(sim, "10.66.0.1:7946");
    const pings = Array.from({ length: 40 }, (_, i) => ({ t: T.ping, seq: i, target: "n0", from: "p" }));
    const packet = p.packet(...pings);
    p.t.sendPacket(target!.addr, packet);
    await sim.run(50);
    const total = p.got.reduce((n, d) => n + d.length, 0);
    expect(p.got.length).toBeGreaterThan(0);
    expect(total).toBeLessThanOrEqual(packet.length);
  });
});

describe("replayed streams", () => {
  test("a push-pull request replayed from its sender's address is refused without a reply; the original merged once", async () => {
    const sim = new Sim({ seed: 65, keyring });
    const streams = recordStreams(sim);
    const [n0, n1] = await sim.cluster(2);
    const join = streams.find((s) => s.from === n1!.addr && s.to === n0!.addr)!;
    expect(join.reply).toBeDefined();
    const merges = n0!.delegate.merges.length;
    const m0 = n0!.gossip.metrics();
    const replay = sim.net.stream(join.from, join.to, join.req, signal, 1 << 20);
    const outcome = await sim.runUntilSettled(replay.then(() => "answered", (e: Error) => e.message), 2_000);
    expect(outcome).toContain("closed by peer");
    expect(n0!.delegate.merges.length).toBe(merges);
    expect(diff(m0, n0!.gossip.metrics())).toEqual({ replays: 1, stale: 0, mismatches: 0, decrypt: 0, decode: 0 });
    // From another address it is refused as well, as coming from the wrong sender.
    sim.net.transport("10.66.0.3:7946");
    const elsewhere = sim.net.stream("10.66.0.3:7946", join.to, join.req, signal, 1 << 20);
    expect(await sim.runUntilSettled(elsewhere.then(() => "answered", (e: Error) => e.message), 2_000)).toContain("closed by peer");
    expect(n0!.gossip.metrics().senderMismatches).toBe(m0.senderMismatches! + 1);
  });

  test("an old stream reply replayed to a new request is rejected by the requester; its state is not merged", async () => {
    const sim = new Sim({ seed: 66, keyring });
    const streams = recordStreams(sim);
    const nodes = await sim.cluster(3);
    const [n0, n1, n2] = nodes as [SimNode, SimNode, SimNode];
    expect(await sim.runUntil(() => allSee(nodes, ["n0", "n1", "n2"], "alive"), 10_000)).toBeGreaterThanOrEqual(0);
    await sim.runUntilSettled(n1.gossip.pushPull("n0"), 2_000);
    const old = streams.filter((s) => s.from === n1.addr && s.to === n0.addr && s.reply).at(-1)!;
    // n2 dies and is reaped everywhere; the old reply still lists it alive.
    await n2.gossip.shutdown();
    expect(await sim.runUntil(() => [n0, n1].every((n) => !view(n).has("n2")), 30_000)).toBeGreaterThanOrEqual(0);
    // A man in the middle answers n1's next request with the old reply.
    const stream = sim.net.stream;
    sim.net.stream = (from, to, req, sig, maxBytes) => (from === n1.addr && to === n0.addr ? Promise.resolve(old.reply!) : stream(from, to, req, sig, maxBytes));
    const merges = n1.delegate.merges.length;
    const m0 = n1.gossip.metrics();
    const outcome = await sim.runUntilSettled(n1.gossip.pushPull("n0").then(() => "merged", (e: Error) => e.message), 2_000);
    expect(outcome).toContain("reply refused");
    expect(view(n1).has("n2")).toBe(false);
    expect(n1.delegate.merges.length).toBe(merges);
    expect(diff(m0, n1.gossip.metrics())).toEqual({ replays: 1, stale: 0, mismatches: 0, decrypt: 0, decode: 0 });
  });

  test("a TCP fallback ping replayed gets no reply", async () => {
    const sim = new Sim({ seed: 67, keyring });
    const [target] = await sim.cluster(1);
    const p = keyHolder(sim, "10.66.0.1:7946");
    const req = p.sealer.seal(encode({ t: T.ping, seq: 5, target: "n0", from: "p" }), REQUEST);
    const first = await sim.runUntilSettled(p.t.stream(target!.addr, req, { signal, maxBytes: 1 << 20 }), 1_000);
    expect(first.length).toBeGreaterThan(0);
    const again = p.t.stream(target!.addr, req, { signal, maxBytes: 1 << 20 });
    expect(await sim.runUntilSettled(again.then(() => "answered", (e: Error) => e.message), 1_000)).toContain("closed by peer");
    expect(target!.gossip.metrics().replaysRejected).toBe(1);
  });
});

describe("clock skew", () => {
  test("within maxClockSkewMs all works; beyond it packets are dropped and counted, a rate-limited warning names the offset; fixed, the node comes back", async () => {
    const sim = new Sim({ seed: 68, keyring });
    const lines: string[] = [];
    const logger = createLogger({ level: "warn", write: (l) => void lines.push(l) });
    let drift = 0;
    // Pairwise differences up to 28 s: inside the 30 s bound.
    const n0 = await sim.add("n0", 0, { logger });
    const n1 = await sim.add("n1", 1, { clockOffsetMs: 14_000 });
    const n2 = await sim.add("n2", 2, { clockOffsetMs: () => -14_000 + drift });
    const nodes = [n0, n1, n2];
    await sim.runUntilSettled(Promise.all([n1.gossip.join([n0.addr]), n2.gossip.join([n0.addr])]), 10_000);
    expect(await sim.runUntil(() => allSee(nodes, ["n0", "n1", "n2"], "alive"), 10_000)).toBeGreaterThanOrEqual(0);
    n2.gossip.broadcast("k", new TextEncoder().encode("from the slow clock"));
    expect(await sim.runUntil(() => [n0, n1].every((n) => n.delegate.messages.length === 1), 5_000)).toBeGreaterThanOrEqual(0);
    await sim.runUntilSettled(n1.gossip.pushPull("n2"), 2_000);
    await sim.run(10_000);
    expect(allSee(nodes, ["n0", "n1", "n2"], "alive")).toBe(true);
    expect(nodes.map((n) => n.gossip.metrics().staleRejected)).toEqual([0, 0, 0]);
    expect(lines).toEqual([]);

    // n2's clock falls 45 s behind n0's (59 s behind n1's): its packets are refused, and it refuses theirs.
    drift = -31_000;
    expect(await sim.runUntil(() => allSee([n0, n1], ["n2"], "dead"), 30_000)).toBeGreaterThanOrEqual(0);
    const SPAN = 60_000;
    const t0 = sim.clock.now();
    await sim.run(SPAN);
    for (const n of nodes) expect(n.gossip.metrics().staleRejected).toBeGreaterThan(10);
    const warned = lines.filter((l) => l.includes("clock is off by about 45 s"));
    expect(warned.length).toBeGreaterThan(0);
    // At most one such line per 10 s (plus the ones before t0).
    expect(warned.length).toBeLessThanOrEqual(Math.ceil((sim.clock.now() - t0) / 10_000) + 3);
    expect(lines.every((l) => l.includes("allowed ±30 s"))).toBe(true);

    // Clock fixed: n2 is let back in (it refutes its death, or reconnects), and stays.
    drift = 0;
    expect(await sim.runUntil(() => allSee(nodes, ["n0", "n1", "n2"], "alive"), 30_000)).toBeGreaterThanOrEqual(0);
  });
});

describe("a full seen-id cache", () => {
  test("overflows without letting a replay in, and honest traffic keeps flowing", async () => {
    const sim = new Sim({ seed: 69, keyring, config: { replayCacheMax: 16 } });
    const captured: { from: string; to: string; data: Uint8Array }[] = [];
    const send = sim.net.sendPacket.bind(sim.net);
    sim.net.sendPacket = (from, to, data) => {
      if (captured.length < 200) captured.push({ from, to, data });
      send(from, to, data);
    };
    const nodes = await sim.cluster(3);
    expect(await sim.runUntil(() => allSee(nodes, ["n0", "n1", "n2"], "alive"), 10_000)).toBeGreaterThanOrEqual(0);
    await sim.run(5_000); // far more than 16 packets each: the early ids are long evicted
    const target = nodes[1]!;
    const toTarget = captured.filter((c) => c.to === target.addr);
    const m0 = target.gossip.metrics();
    for (const c of toTarget) sim.net.sendPacket(c.from, c.to, c.data);
    await sim.run(100);
    expect(diff(m0, target.gossip.metrics())).toMatchObject({ replays: toTarget.length, stale: 0, mismatches: 0 });
    nodes[0]!.gossip.broadcast("k", new TextEncoder().encode("after the flood"));
    expect(await sim.runUntil(() => nodes.slice(1).every((n) => n.delegate.messages.length === 1), 5_000)).toBeGreaterThanOrEqual(0);
    await sim.run(5_000);
    expect(allSee(nodes, ["n0", "n1", "n2"], "alive")).toBe(true);
  });
});

describe("gossip addresses are IP:port only", () => {
  test("an alive message or a push-pull entry naming a host is refused and counted", async () => {
    const sim = new Sim({ seed: 70, keyring });
    const [target] = await sim.cluster(1);
    const p = keyHolder(sim, "10.66.0.1:7946");
    const m0 = target!.gossip.metrics();
    p.t.sendPacket(target!.addr, p.packet({ t: T.alive, name: "x", addr: "x.example.com:7946", inc: 1 }, { t: T.alive, name: "ok", addr: "10.66.0.7:7946", inc: 1 }));
    const pushPull = { join: true, from: "p", members: [{ name: "y", addr: "y.example.com:7946", inc: 1, state: 0 }], user: new Uint8Array() };
    const r = p.t.stream(target!.addr, p.sealer.seal(encode(pushPull), REQUEST), { signal, maxBytes: 1 << 20 });
    expect(await sim.runUntilSettled(r.then(() => "answered", (e: Error) => e.message), 1_000)).toContain("closed by peer");
    expect(diff(m0, target!.gossip.metrics())).toMatchObject({ decode: 2 });
    expect([...view(target!).keys()].sort()).toEqual(["n0", "ok"]);
  });
});

describe("rolling upgrade of the wire format", () => {
  test("send everywhere, then accept node by node, then off node by node: the cluster stays whole; send emits only the legacy format", async () => {
    const sim = new Sim({ seed: 71, keyring });
    const formats = new Map<string, Set<number>>();
    const note = (from: string, b: Uint8Array) => {
      if (!formats.has(from)) formats.set(from, new Set());
      formats.get(from)!.add(b[0]!);
    };
    const send = sim.net.sendPacket.bind(sim.net);
    sim.net.sendPacket = (from, to, data) => {
      note(from, data);
      send(from, to, data);
    };
    const stream = sim.net.stream.bind(sim.net);
    sim.net.stream = (from, to, req, sig, maxBytes) => {
      note(from, req);
      const p = stream(from, to, req, sig, maxBytes);
      p.then((r) => note(to, r), () => {});
      return p;
    };
    const N = 4;
    const names = Array.from({ length: N }, (_, i) => `n${i}`);
    const nodes: SimNode[] = [];
    const start = async (i: number, mode: LegacyWire) => {
      const n = await sim.add(names[i]!, i, { config: { legacyWire: mode } });
      nodes[i] = n;
      const others = nodes.filter((o, j) => j !== i && o).map((o) => o.addr);
      if (others.length) await sim.runUntilSettled(n.gossip.join(others), 10_000);
      return n;
    };
    const whole = async () => expect(await sim.runUntil(() => allSee(nodes, names, "alive"), 20_000)).toBeGreaterThanOrEqual(0);
    let news = 0;
    const spreads = async (from: SimNode) => {
      from.gossip.broadcast("k", new TextEncoder().encode(`news ${++news}`));
      expect(await sim.runUntil(() => nodes.every((n) => n === from || n.delegate.messages.some((m) => m.payload === `news ${news}`)), 5_000)).toBeGreaterThanOrEqual(0);
    };
    // Step 1: every node runs the new version with "send" (as old nodes would, they speak only the legacy format).
    for (let i = 0; i < N; i++) await start(i, "send");
    await whole();
    await spreads(nodes[0]!);
    await sim.run(5_000);
    expect([...formats.values()].every((f) => f.size === 1 && f.has(1))).toBe(true);
    // Steps 2 and 3: restart node by node with "accept", then with "off".
    for (const mode of ["accept", "off"] as const) {
      for (let i = 0; i < N; i++) {
        await nodes[i]!.gossip.shutdown();
        await start(i, mode);
        await whole();
        await spreads(nodes[(i + 1) % N]!);
        await spreads(nodes[i]!);
      }
    }
    formats.clear();
    await sim.run(5_000);
    expect([...formats.values()].every((f) => f.size === 1 && f.has(2))).toBe(true);
    // Now a legacy packet is refused everywhere.
    const legacy = new Sealer({ keyring, clusterName: "test", addr: "10.66.0.1:7946", clock: sim.clock, legacyWire: "send" });
    const evil = sim.net.transport("10.66.0.1:7946");
    const m0 = nodes[0]!.gossip.metrics();
    evil.sendPacket(nodes[0]!.addr, legacy.seal(compound([encode({ t: T.ping, seq: 1, target: "n0", from: "x" })]), PACKET));
    await sim.run(50);
    expect(diff(m0, nodes[0]!.gossip.metrics())).toMatchObject({ decrypt: 1 });
  }, 60_000);
});
