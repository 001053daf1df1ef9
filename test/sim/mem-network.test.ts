import { describe, expect, test } from "bun:test";
import { type CrossItem, MemNetwork } from "../../sim/mem-network.ts";
import { FakeClock } from "../../sim/fake-clock.ts";
import { Sim, allSee } from "../../sim/gossip-sim.ts";
import { flush } from "../../sim/run.ts";

function setup(opts: Partial<ConstructorParameters<typeof MemNetwork>[0]> = {}) {
  const clock = new FakeClock(0);
  const net = new MemNetwork({ clock, seed: 1, ...opts });
  const a = net.transport("a:1");
  const b = net.transport("b:1");
  const got: number[] = [];
  b.onPacket((d) => got.push(d[0]!));
  return { clock, net, a, b, got };
}

describe("MemNetwork", () => {
  test("delivers through the clock, in order when reorder is off", () => {
    const { clock, a, got } = setup({ delayMs: [1, 50] });
    for (let i = 0; i < 50; i++) a.sendPacket("b:1", new Uint8Array([i]));
    expect(got).toEqual([]);
    clock.advance(100);
    expect(got).toEqual([...Array(50).keys()]);
  });

  test("reorders when asked, deterministically per seed", () => {
    const run = () => {
      const { clock, a, got } = setup({ delayMs: [1, 50], reorder: true });
      for (let i = 0; i < 50; i++) a.sendPacket("b:1", new Uint8Array([i]));
      clock.advance(100);
      return got;
    };
    const g = run();
    expect(g.length).toBe(50);
    expect(g).not.toEqual([...Array(50).keys()]);
    expect(run()).toEqual(g);
  });

  test("loss and duplication follow their probabilities", () => {
    const { clock, net, a, got } = setup({ loss: 0.3, duplicate: 0.2 });
    for (let i = 0; i < 2000; i++) a.sendPacket("b:1", new Uint8Array([1]));
    clock.advance(10);
    const s = net.stats();
    expect(s.dropped).toBeGreaterThan(500);
    expect(s.dropped).toBeLessThan(700);
    const delivered = 2000 - s.dropped;
    expect(got.length).toBeGreaterThan(delivered * 1.1);
    expect(got.length).toBeLessThan(delivered * 1.3);
    net.setLoss(0);
    expect(() => net.setLoss(2)).toThrow(/loss/);
  });

  test("partitions cut packets, including ones in flight; heal restores", () => {
    const { clock, net, a, got } = setup({ delayMs: [5, 5] });
    a.sendPacket("b:1", new Uint8Array([1]));
    net.partition([["a:1"], ["b:1"]]);
    a.sendPacket("b:1", new Uint8Array([2]));
    clock.advance(10);
    expect(got).toEqual([]);
    net.heal();
    a.sendPacket("b:1", new Uint8Array([3]));
    clock.advance(10);
    expect(got).toEqual([3]);
  });

  test("streams: reply, refused, and black-holed by a partition until the caller aborts", async () => {
    const { clock, net, a, b } = setup();
    b.onStream(async (req) => new Uint8Array([req[0]! + 1]), { maxBytes: 100 });
    const ac = new AbortController();
    const ok = a.stream("b:1", new Uint8Array([41]), { signal: ac.signal, maxBytes: 100 });
    clock.advance(5);
    await flush();
    clock.advance(5);
    expect((await ok)[0]).toBe(42);

    const refused = a.stream("nobody:1", new Uint8Array([1]), { signal: ac.signal, maxBytes: 100 });
    clock.advance(5);
    await expect(refused).rejects.toThrow(/refused/);

    const big = a.stream("b:1", new Uint8Array(500), { signal: ac.signal, maxBytes: 100 });
    clock.advance(5);
    await expect(big).rejects.toThrow(/too large/);

    net.partition([["a:1"], ["b:1"]]);
    let settled = false;
    const hung = a.stream("b:1", new Uint8Array([1]), { signal: ac.signal, maxBytes: 100 });
    hung.then(() => (settled = true), () => (settled = true));
    clock.advance(60_000);
    await flush();
    expect(settled).toBe(false);
    ac.abort();
    await expect(hung).rejects.toThrow(/aborted/);
  });

  test("an address can be rebound only after its transport closed", async () => {
    const { net, a } = setup();
    expect(() => net.transport("a:1")).toThrow(/in use/);
    await a.close();
    expect(() => net.transport("a:1")).not.toThrow();
  });
});

describe("gossip over a hostile MemNetwork", () => {
  test("a push-pull to a partitioned peer fails after the stream timeout", async () => {
    const sim = new Sim({ seed: 41 });
    const nodes = await sim.cluster(2);
    await sim.runUntil(() => allSee(nodes, ["n0", "n1"], "alive"), 5_000);
    sim.net.partition([[nodes[0]!.addr], [nodes[1]!.addr]]);
    const start = sim.clock.now();
    let err: Error | undefined;
    const p = nodes[0]!.gossip.pushPull("n1").catch((e: Error) => void (err = e));
    await sim.runUntilSettled(p, 10_000);
    expect(err?.message).toMatch(/no reply within 2000 ms/);
    expect(sim.clock.now() - start).toBeGreaterThanOrEqual(2000);
  });

  test("an isolated node raises its own health score instead of only accusing others", async () => {
    const sim = new Sim({ seed: 42 });
    const nodes = await sim.cluster(5);
    await sim.runUntil(() => allSee(nodes, nodes.map((n) => n.name), "alive"), 5_000);
    expect(nodes[0]!.gossip.health()).toBe(0);
    sim.net.partition([[nodes[0]!.addr], nodes.slice(1).map((n) => n.addr)]);
    await sim.run(3_000);
    // No acks and no nacks from the indirect peers: the fault is likely ours.
    expect(nodes[0]!.gossip.health()).toBeGreaterThanOrEqual(3);
    expect(nodes.slice(1).every((n) => n.gossip.health() <= 1)).toBe(true);
    sim.net.heal();
    await sim.runUntil(() => allSee(nodes, nodes.map((n) => n.name), "alive"), 30_000);
    await sim.run(20_000);
    expect(nodes[0]!.gossip.health()).toBe(0);
  });
});

describe("MemNetwork split into parts (linked)", () => {
  /** Two parts on their own clocks; items cross when `swap()` is called, like the bench's lockstep. */
  function twoParts() {
    const clocks = [new FakeClock(0), new FakeClock(0)];
    const out: CrossItem[][] = [[], []];
    const owner = (addr: string) => (addr.startsWith("a") ? 0 : 1);
    const nets = [0, 1].map(
      (p) =>
        new MemNetwork({
          clock: clocks[p]!,
          seed: 1 + p,
          delayMs: [1, 1],
          link: { isRemote: (addr) => owner(addr) !== p, send: (item) => out[owner(item.k === "reply" ? item.from : item.to)]!.push(item) },
        }),
    );
    const step = async (ms = 1) => {
      for (const c of clocks) c.advance(ms);
      await flush();
      const moving = out.map((items) => items.splice(0));
      moving.forEach((items, p) => items.forEach((item) => nets[p]!.receive(item)));
    };
    return { nets, step, a: nets[0]!.transport("a:1"), b: nets[1]!.transport("b:1") };
  }

  test("packets cross parts with their delay, and count at the sender", async () => {
    const { nets, step, a, b } = twoParts();
    const got: number[] = [];
    b.onPacket((d, from) => got.push(d[0]!, from === "a:1" ? 1 : 0));
    a.sendPacket("b:1", new Uint8Array([7]));
    expect(nets[0]!.stats().packets).toBe(1);
    await step(); // sent at 0, handed over at 1 ms
    expect(got).toEqual([]);
    await step(); // due at 1 ms on b's clock: delivered in b's next window
    expect(got).toEqual([7, 1]);
  });

  test("a stream crosses parts both ways; refused and black-holed streams behave as within one network", async () => {
    const { nets, step, a, b } = twoParts();
    b.onStream(async (req) => new Uint8Array([req[0]! + 1]), { maxBytes: 100 });
    const p = a.stream("b:1", new Uint8Array([41]), { signal: new AbortController().signal, maxBytes: 100 });
    let reply: Uint8Array | undefined;
    void p.then((r) => (reply = r));
    for (let i = 0; i < 5 && !reply; i++) await step();
    expect(reply).toEqual(new Uint8Array([42]));
    expect(nets[1]!.stats().bytes).toBe(1); // the reply's byte, counted where it was sent

    const refused = a.stream("b:9", new Uint8Array([1]), { signal: new AbortController().signal, maxBytes: 100 });
    let err: Error | undefined;
    refused.catch((e: Error) => (err = e));
    for (let i = 0; i < 5 && !err; i++) await step();
    expect(err?.message).toMatch(/b:9: connection refused/);

    for (const n of nets) n.partition([["a:1"], ["b:1"]]);
    const ac = new AbortController();
    const holed = a.stream("b:1", new Uint8Array([1]), { signal: ac.signal, maxBytes: 100 });
    let settled = false;
    holed.then(() => (settled = true), () => (settled = true));
    for (let i = 0; i < 10; i++) await step();
    expect(settled).toBe(false); // never answers: the caller's timeout decides
    ac.abort();
    await flush();
    expect(settled).toBe(true);
  });
});
