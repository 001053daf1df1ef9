import { describe, expect, test } from "bun:test";
import { T } from "../../src/gossip/messages.ts";
import { compound, encode } from "../../src/gossip/codec.ts";
import { PACKET, Sealer } from "../../src/gossip/security.ts";
import { Sim, allSee, view } from "../../sim/gossip-sim.ts";

const enc = (s: string) => new TextEncoder().encode(s);

describe("membership on MemNetwork (FakeClock)", () => {
  test("N nodes join through one seed and all see all alive", async () => {
    const sim = new Sim({ seed: 11 });
    const nodes = await sim.cluster(8);
    const names = nodes.map((n) => n.name);
    expect(await sim.runUntil(() => allSee(nodes, names, "alive"), 10_000)).toBeGreaterThanOrEqual(0);
    // Every join is a push-pull, so the joiners delivered their delegate state too.
    expect(nodes[0]!.delegate.merges.filter((m) => m.join).length).toBe(7);
  });

  test("a killed node is suspected, then declared dead by all within a bound", async () => {
    const sim = new Sim({ seed: 12 });
    const nodes = await sim.cluster(6);
    await sim.runUntil(() => allSee(nodes, nodes.map((n) => n.name), "alive"), 10_000);
    await nodes[3]!.gossip.shutdown();
    const rest = nodes.filter((_, i) => i !== 3);
    let suspected = false;
    const took = await sim.runUntil(() => {
      suspected ||= rest.some((n) => view(n).get("n3") === "suspect");
      return allSee(rest, ["n3"], "dead");
    }, 10_000);
    expect(suspected).toBe(true);
    // Bound: a probe round over 5 peers (5 × 200 ms), plus the maximum suspicion timeout
    // (4 × 600 ms), plus dissemination; suspicion confirmations usually make it faster.
    expect(took).toBeGreaterThan(0);
    expect(took).toBeLessThan(5 * 200 + 4 * 600 + 1000);
    expect(rest[0]!.delegate.events).toContain("leave n3 dead");
  });

  test("member(name) is the members() entry for that name, undefined for strangers", async () => {
    const sim = new Sim({ seed: 15 });
    const nodes = await sim.cluster(4);
    await sim.runUntil(() => allSee(nodes, nodes.map((n) => n.name), "alive"), 10_000);
    await nodes[3]!.gossip.shutdown();
    await sim.runUntil(() => view(nodes[0]!).get("n3") === "dead", 10_000);
    const g = nodes[0]!.gossip;
    for (const m of g.members()) expect(g.member!(m.name)).toEqual(m);
    expect(g.member!("n3")?.state).toBe("dead");
    expect(g.member!("nobody")).toBeUndefined();
  });

  test("broadcasts reach every node, once each, attributed to their origin", async () => {
    const sim = new Sim({ seed: 13 });
    const nodes = await sim.cluster(10);
    await sim.runUntil(() => allSee(nodes, nodes.map((n) => n.name), "alive"), 10_000);
    nodes[4]!.gossip.broadcast("lease/n4", enc("v1"));
    const others = nodes.filter((_, i) => i !== 4);
    expect(await sim.runUntil(() => others.every((n) => n.delegate.messages.length === 1), 5_000)).toBeGreaterThanOrEqual(0);
    await sim.run(3_000); // let retransmissions finish: no duplicate deliveries
    for (const n of others) expect(n.delegate.messages).toEqual([{ payload: "v1", from: "n4" }]);
    expect(nodes[4]!.delegate.messages).toEqual([]); // not delivered to its own origin
  });

  test("a broadcast under our own name from another machine (a name clash) reaches us; our own echoes do not", async () => {
    const sim = new Sim({ seed: 29 });
    const nodes = await sim.cluster(4);
    await sim.runUntil(() => allSee(nodes, nodes.map((n) => n.name), "alive"), 5_000);
    const original = nodes[3]!;
    original.gossip.broadcast("lease/n3", enc("mine"));
    await sim.run(3_000);
    expect(original.delegate.messages).toEqual([]);
    // A clone started with the same name: peers keep n3 at the original's address, so only
    // relays carry the clone's news to the original, under the origin "n3".
    await sim.run(1_000); // the clone's clock-based seq is newer than the original's
    const clone = await sim.add("n3", 9);
    await sim.runUntilSettled(clone.gossip.join([nodes[0]!.addr]), 5_000);
    clone.gossip.broadcast("lease/n3", enc("clone"));
    expect(await sim.runUntil(() => original.delegate.messages.length > 0, 5_000)).toBeGreaterThanOrEqual(0);
    expect(original.delegate.messages).toEqual([{ payload: "clone", from: "n3" }]);
  });

  test("a node whose broadcast backlog drained does one catch-up push-pull (none without a backlog)", async () => {
    const sim = new Sim({ seed: 30, config: { pushPullIntervalMs: 0, reconnectIntervalMs: 0 } });
    const nodes = await sim.cluster(6);
    await sim.runUntil(() => allSee(nodes, nodes.map((n) => n.name), "alive"), 5_000);
    const pulls = () => nodes.reduce((k, n) => k + n.delegate.merges.filter((m) => !m.join).length, 0);
    const before = pulls();
    // A few broadcasts: no backlog, no extra exchange.
    for (let i = 0; i < 10; i++) nodes[2]!.gossip.broadcast(`small${i}`, enc("x"));
    await sim.run(5_000);
    expect(pulls()).toBe(before);
    // More than the backlog threshold at once (a join storm's worth).
    for (let i = 0; i < 200; i++) nodes[2]!.gossip.broadcast(`big${i}`, enc("y"));
    expect(await sim.runUntil(() => pulls() > before, 20_000)).toBeGreaterThanOrEqual(0);
    await sim.run(5_000);
    // Each exchange is merged on both sides. Node 2 exchanged once, and so did every
    // receiver whose relay queue backed up too: at most one each.
    expect(pulls() - before).toBeGreaterThanOrEqual(2);
    expect(pulls() - before).toBeLessThanOrEqual(2 * nodes.length);
    const again = pulls();
    await sim.run(10_000);
    expect(pulls()).toBe(again); // once per backlog, not again while idle
  });

  test("periodic push-pull goes digest-first: equal nodes exchange only hashes, a difference still gets through", async () => {
    const sim = new Sim({ seed: 31, digest: true, config: { pushPullIntervalMs: 1000, reconnectIntervalMs: 0 } });
    const nodes = await sim.cluster(4);
    await sim.runUntil(() => allSee(nodes, nodes.map((n) => n.name), "alive"), 5_000);
    await sim.run(3_000); // let the joins' own exchanges finish
    const merges = () => nodes.reduce((k, n) => k + n.delegate.merges.length, 0);
    const before = { merges: merges(), streams: sim.net.stats().streams, bytes: sim.net.stats().bytes };
    await sim.run(10_000);
    const after = sim.net.stats();
    // About one periodic exchange per node per second happened, and none was a full
    // exchange (every full exchange is merged on both sides).
    expect(after.streams - before.streams).toBeGreaterThanOrEqual(20);
    expect(merges()).toBe(before.merges);
    // A state difference: the digests differ, so the full exchange runs and spreads it.
    nodes[2]!.delegate.state.set("k", "v");
    expect(await sim.runUntil(() => nodes.every((n) => n.delegate.state.get("k") === "v"), 10_000)).toBeGreaterThanOrEqual(0);
    expect(merges()).toBeGreaterThan(before.merges);
  });

  test("pushPull(name) is digest-first too; a membership change alone makes the digests differ", async () => {
    const sim = new Sim({ seed: 32, digest: true, config: { pushPullIntervalMs: 0, reconnectIntervalMs: 0 } });
    const nodes = await sim.cluster(3);
    await sim.runUntil(() => allSee(nodes, nodes.map((n) => n.name), "alive"), 5_000);
    await sim.run(3_000);
    const [a, b] = [nodes[0]!, nodes[1]!];
    const merges = () => a.delegate.merges.length + b.delegate.merges.length;
    const m0 = merges();
    await sim.runUntilSettled(a.gossip.pushPull("n1"), 5_000);
    expect(merges()).toBe(m0); // equal states: hashes only, no merge on either side
    // Only a member's meta changes (the delegate states stay equal); b hears of it at
    // once, a not at all (it is cut off), so their digests differ.
    sim.net.partition([[a.addr]]);
    nodes[2]!.gossip.updateMeta(new Uint8Array([7]));
    await sim.runUntil(() => b.gossip.member!("n2")?.meta?.[0] === 7, 5_000);
    sim.net.heal();
    expect(a.gossip.member!("n2")?.meta).toBeUndefined();
    await sim.runUntilSettled(a.gossip.pushPull("n1"), 5_000);
    expect(merges()).toBe(m0 + 2); // a full exchange, merged on both sides
    expect(a.gossip.member!("n2")?.meta?.[0]).toBe(7);
  });

  test("push-pull merges delegate state both ways", async () => {
    const sim = new Sim({ seed: 14, config: { pushPullIntervalMs: 0 } });
    const nodes = await sim.cluster(3);
    await sim.runUntil(() => allSee(nodes, ["n0", "n1", "n2"], "alive"), 5_000);
    nodes[1]!.delegate.state.set("a", "from-n1");
    nodes[2]!.delegate.state.set("b", "from-n2");
    await sim.runUntilSettled(nodes[1]!.gossip.pushPull("n2"), 5_000);
    expect(nodes[1]!.delegate.state.get("b")).toBe("from-n2");
    expect(nodes[2]!.delegate.state.get("a")).toBe("from-n1");
    expect(nodes[2]!.delegate.merges.at(-1)).toEqual({ from: "n1", join: false });
    await expect(nodes[1]!.gossip.pushPull("nobody")).rejects.toThrow(/unknown member/);
  });

  test("an alive node that is suspected refutes with a higher incarnation", async () => {
    const sim = new Sim({ seed: 15 });
    const nodes = await sim.cluster(5);
    const names = nodes.map((n) => n.name);
    await sim.runUntil(() => allSee(nodes, names, "alive"), 10_000);
    const inc0 = nodes[2]!.gossip.members().find((m) => m.name === "n2")!.incarnation;
    // A forged (but correctly sealed) rumour that n2 is suspect, sent to n0 only.
    const liar = sim.net.transport("10.9.9.9:1");
    const forged = new Sealer({ keyring: null, clusterName: "test", addr: "10.9.9.9:1", clock: sim.clock }).seal(compound([encode({ t: T.suspect, name: "n2", inc: inc0, from: "n4" })]), PACKET);
    liar.sendPacket(nodes[0]!.addr, forged);
    await sim.run(5);
    expect(view(nodes[0]!).get("n2")).toBe("suspect");
    const took = await sim.runUntil(() => nodes.every((n) => n.gossip.members().find((m) => m.name === "n2")?.incarnation === inc0 + 1 && view(n).get("n2") === "alive"), 2_000);
    expect(took).toBeGreaterThanOrEqual(0);
    await sim.run(5_000);
    expect(allSee(nodes, names, "alive")).toBe(true); // the refutation won for good
    expect(nodes[0]!.delegate.events).toContain("update n2 suspect");
    expect(nodes[0]!.delegate.events).toContain("update n2 alive");
  });

  test("a node partitioned longer than the suspicion timeout is declared dead, and alive again after heal", async () => {
    const sim = new Sim({ seed: 16 });
    const nodes = await sim.cluster(6);
    const names = nodes.map((n) => n.name);
    await sim.runUntil(() => allSee(nodes, names, "alive"), 10_000);
    const lonely = nodes[5]!;
    const rest = nodes.slice(0, 5);
    sim.net.partition([rest.map((n) => n.addr), [lonely.addr]]);
    expect(await sim.runUntil(() => allSee(rest, ["n5"], "dead"), 10_000)).toBeGreaterThan(0);
    expect(await sim.runUntil(() => allSee([lonely], rest.map((n) => n.name), "dead"), 10_000)).toBeGreaterThanOrEqual(0);
    // Stay apart past the gossip-to-the-dead window, so both sides reap each other.
    await sim.run(12_000);
    expect(view(rest[0]!).has("n5")).toBe(false);
    sim.net.heal();
    const took = await sim.runUntil(() => allSee(nodes, names, "alive"), 20_000);
    expect(took).toBeGreaterThanOrEqual(0);
    expect(rest[0]!.delegate.events.filter((e) => e === "join n5").length).toBe(2);
  });

  for (const loss of [0.1, 0.2]) {
    test(`converges with ${loss * 100}% packet loss (plus delay, duplicates, reordering)`, async () => {
      const sim = new Sim({ seed: 17, net: { loss, delayMs: [1, 20], duplicate: 0.05, reorder: true } });
      const nodes = await sim.cluster(12);
      const names = nodes.map((n) => n.name);
      expect(await sim.runUntil(() => allSee(nodes, names, "alive"), 30_000)).toBeGreaterThanOrEqual(0);
      nodes[7]!.gossip.broadcast("k", enc("lossy"));
      expect(await sim.runUntil(() => nodes.every((n, i) => i === 7 || n.delegate.messages.some((m) => m.payload === "lossy")), 10_000)).toBeGreaterThanOrEqual(0);
      for (const n of nodes) n.delegate.events.length = 0;
      await nodes[3]!.gossip.shutdown();
      const rest = nodes.filter((_, i) => i !== 3);
      expect(await sim.runUntil(() => allSee(rest, ["n3"], "dead"), 20_000)).toBeGreaterThan(0);
      await sim.run(20_000);
      // Lossy links cause passing suspicions that the suspects refute; at 10% loss none
      // should get as far as a false death (measured: 0 in 6 seeds × 60 s).
      const falseDeaths = rest.flatMap((n) => n.delegate.events.filter((e) => e.endsWith(" dead") && e !== "leave n3 dead"));
      if (loss <= 0.1) expect(falseDeaths).toEqual([]);
      expect(await sim.runUntil(() => allSee(rest, rest.map((n) => n.name), "alive"), 15_000)).toBeGreaterThanOrEqual(0);
    });
  }

  for (const tcp of [true, false]) {
    test(`with UDP fully lost, the TCP fallback ping ${tcp ? "prevents" : "(disabled) does not prevent"} suspicion`, async () => {
      const sim = new Sim({ seed: 24, config: { tcpFallbackPing: tcp } });
      const nodes = await sim.cluster(4);
      await sim.runUntil(() => allSee(nodes, nodes.map((n) => n.name), "alive"), 5_000);
      for (const n of nodes) n.delegate.events.length = 0;
      sim.net.setLoss(1);
      await sim.run(3_000);
      const suspicions = nodes.flatMap((n) => n.delegate.events.filter((e) => e.endsWith("suspect")));
      if (tcp) expect(suspicions).toEqual([]);
      else expect(suspicions.length).toBeGreaterThan(0);
    });
  }

  test("a newer broadcast with the same key replaces a queued older one", async () => {
    const sim = new Sim({ seed: 18 });
    const nodes = await sim.cluster(4);
    await sim.runUntil(() => allSee(nodes, nodes.map((n) => n.name), "alive"), 10_000);
    await sim.run(3_000); // drain membership broadcasts
    const before = nodes[0]!.gossip.queuedBroadcasts();
    nodes[0]!.gossip.broadcast("lease", enc("v1"));
    sim.clock.advance(1); // distinct clock-based sequence numbers, no gossip round in between
    nodes[0]!.gossip.broadcast("lease", enc("v2"));
    nodes[0]!.gossip.broadcast("other", enc("x"));
    expect(nodes[0]!.gossip.queuedBroadcasts()).toBe(before + 2);
    await sim.runUntil(() => nodes.slice(1).every((n) => n.delegate.messages.length === 2), 5_000);
    await sim.run(3_000);
    for (const n of nodes.slice(1)) expect(n.delegate.messages.map((m) => m.payload).sort()).toEqual(["v2", "x"]);
  });

  test("graceful leave: others see the member as left, not dead", async () => {
    const sim = new Sim({ seed: 19 });
    const nodes = await sim.cluster(5);
    await sim.runUntil(() => allSee(nodes, nodes.map((n) => n.name), "alive"), 10_000);
    await sim.runUntilSettled(nodes[1]!.gossip.leave(2_000), 3_000);
    const rest = nodes.filter((_, i) => i !== 1);
    expect(await sim.runUntil(() => allSee(rest, ["n1"], "left"), 2_000)).toBeGreaterThanOrEqual(0);
    await sim.run(3_000);
    expect(allSee(rest, ["n1"], "left")).toBe(true);
    expect(rest[0]!.delegate.events).toContain("leave n1 left");
    expect(rest.every((n) => !n.delegate.events.includes("leave n1 dead"))).toBe(true);
  });

  test("a restarted node (same name, same address) comes back alive with a higher incarnation", async () => {
    const sim = new Sim({ seed: 20 });
    const nodes = await sim.cluster(5);
    await sim.runUntil(() => allSee(nodes, nodes.map((n) => n.name), "alive"), 10_000);
    await nodes[4]!.gossip.shutdown();
    const rest = nodes.slice(0, 4);
    await sim.runUntil(() => allSee(rest, ["n4"], "dead"), 10_000);
    const again = await sim.add("n4", 4);
    expect(await sim.runUntilSettled(again.gossip.join([nodes[0]!.addr]), 5_000)).toBe(1);
    expect(await sim.runUntil(() => allSee([...rest, again], nodes.map((n) => n.name), "alive"), 5_000)).toBeGreaterThanOrEqual(0);
    expect(again.gossip.members().find((m) => m.name === "n4")!.incarnation).toBeGreaterThan(0);
  });

  test("meta is advertised, and updateMeta reaches everyone as an update", async () => {
    const sim = new Sim({ seed: 25 });
    const a = await sim.add("a", 0, { meta: enc("ip=192.0.2.1") });
    const b = await sim.add("b", 1);
    const c = await sim.add("c", 2);
    await sim.runUntilSettled(Promise.all([b.gossip.join([a.addr]), c.gossip.join([a.addr])]), 5_000);
    const metaOf = (n: typeof a, name: string) => new TextDecoder().decode(n.gossip.members().find((m) => m.name === name)?.meta ?? new Uint8Array());
    expect(await sim.runUntil(() => metaOf(b, "a") === "ip=192.0.2.1" && metaOf(c, "a") === "ip=192.0.2.1", 5_000)).toBeGreaterThanOrEqual(0);
    a.gossip.updateMeta(enc("ip=192.0.2.99"));
    expect(await sim.runUntil(() => metaOf(b, "a") === "ip=192.0.2.99" && metaOf(c, "a") === "ip=192.0.2.99", 5_000)).toBeGreaterThanOrEqual(0);
    expect(b.delegate.events).toContain("update a alive");
    expect(() => a.gossip.updateMeta(new Uint8Array(257))).toThrow(/at most 256 bytes/);
  });

  test("a name moves to a new address only once its old entry is dead for deadNodeReclaimMs", async () => {
    const sim = new Sim({ seed: 26, config: { deadNodeReclaimMs: 3_000 } });
    const nodes = await sim.cluster(4);
    await sim.runUntil(() => allSee(nodes, nodes.map((n) => n.name), "alive"), 5_000);
    // A second live "n3" at another address is a name clash: ignored while the first lives.
    const clash = await sim.add("n3", 9);
    await sim.runUntilSettled(clash.gossip.join([nodes[0]!.addr]), 5_000);
    await sim.run(2_000);
    expect(nodes[0]!.gossip.members().find((m) => m.name === "n3")!.addr).toBe(nodes[3]!.addr);
    await clash.gossip.shutdown();
    // The original dies; after the reclaim time a new instance at a new address takes over.
    await nodes[3]!.gossip.shutdown();
    const rest = nodes.slice(0, 3);
    await sim.runUntil(() => allSee(rest, ["n3"], "dead"), 10_000);
    await sim.run(3_000);
    const moved = await sim.add("n3", 10);
    await sim.runUntilSettled(moved.gossip.join([nodes[0]!.addr]), 5_000);
    expect(await sim.runUntil(() => rest.every((n) => n.gossip.members().some((m) => m.name === "n3" && m.state === "alive" && m.addr === moved.addr)), 5_000)).toBeGreaterThanOrEqual(0);
  });

  test("with the member table full, a new member takes a dead member's place", async () => {
    const sim = new Sim({ seed: 27, config: { maxMembers: 4 } });
    const nodes = await sim.cluster(4);
    await sim.runUntil(() => allSee(nodes, nodes.map((n) => n.name), "alive"), 5_000);
    await nodes[3]!.gossip.shutdown();
    const rest = nodes.slice(0, 3);
    await sim.runUntil(() => allSee(rest, ["n3"], "dead"), 10_000);
    const late = await sim.add("late", 9);
    await sim.runUntilSettled(late.gossip.join([nodes[0]!.addr]), 5_000);
    // Well inside the gossip-to-the-dead window (5 s), so only the full-table eviction explains it.
    expect(await sim.runUntil(() => allSee(rest, ["late"], "alive"), 2_000)).toBeGreaterThanOrEqual(0);
    expect(view(rest[0]!).has("n3")).toBe(false);
  });

  test("join retries with backoff until a seed answers, and stops when aborted", async () => {
    const sim = new Sim({ seed: 21 });
    const a = await sim.add("a", 0);
    const b = await sim.add("b", 1);
    sim.net.partition([[a.addr], [b.addr]]);
    let answered: number | undefined;
    void b.gossip.join([a.addr]).then((n) => (answered = n));
    await sim.run(5_000);
    expect(answered).toBeUndefined();
    sim.net.heal();
    expect(await sim.runUntil(() => answered !== undefined, 5_000)).toBeGreaterThanOrEqual(0);
    expect(answered).toBe(1);
    const c = await sim.add("c", 2);
    const ac = new AbortController();
    const p = c.gossip.join(["10.7.7.7:7946"], ac.signal); // nobody there: refused
    await sim.run(3_000);
    ac.abort();
    expect(await p).toBe(0);
    expect(await c.gossip.join([c.addr])).toBe(0); // only ourselves: bootstrap at once
  });

  test("a black-holed seed does not hold up a join another seed answered", async () => {
    const sim = new Sim({ seed: 28 });
    const a = await sim.add("a", 0);
    const dark = await sim.add("dark", 1);
    const b = await sim.add("b", 2);
    sim.net.partition([[a.addr, b.addr], [dark.addr]]);
    const start = sim.clock.now();
    expect(await sim.runUntilSettled(b.gossip.join([dark.addr, a.addr]), 5_000)).toBe(1);
    // One probe interval (200 ms) after the first answer, not the 2 s stream timeout.
    expect(sim.clock.now() - start).toBeLessThan(500);
  });

  test("shutdown ends a retrying join and a black-holed push-pull at once", async () => {
    const sim = new Sim({ seed: 23 });
    const a = await sim.add("a", 0);
    const b = await sim.add("b", 1);
    sim.net.partition([[a.addr], [b.addr]]);
    const joining = b.gossip.join([a.addr]);
    await sim.run(100); // first attempt is hanging in the black hole
    await b.gossip.shutdown();
    expect(await joining).toBe(0);
    sim.net.heal();
    const c = await sim.add("c", 2);
    await sim.runUntilSettled(c.gossip.join([a.addr]), 2_000);
    sim.net.partition([[a.addr], [c.addr]]);
    const pp = c.gossip.pushPull("a");
    await sim.run(100);
    await c.gossip.shutdown();
    await expect(pp).rejects.toThrow(/gossip stopped/);
  });

  test("the same seed gives the same run", async () => {
    const trace = async () => {
      const sim = new Sim({ seed: 22, net: { loss: 0.1, delayMs: [1, 30], reorder: true } });
      const nodes = await sim.cluster(6);
      await nodes[2]!.gossip.shutdown();
      await sim.run(8_000);
      return JSON.stringify([sim.net.stats(), nodes.map((n) => n.gossip.members().map((m) => [m.name, m.state, m.incarnation]))]);
    };
    expect(await trace()).toBe(await trace());
  });
});
