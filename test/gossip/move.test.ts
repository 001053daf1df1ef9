/**
 * A node's gossip address moves (its underlay address changed): it re-binds, and every
 * member takes the new address from its new incarnation — directly from the node, or,
 * for a relayed copy, once a ping naming the node is answered there. A rumour of a name at
 * another address where nobody of that name answers changes nothing, and two live nodes
 * under one name do not out-bid each other forever.
 */
import { describe, expect, test } from "bun:test";
import { Awareness } from "../../src/gossip/awareness.ts";
import { lanConfig } from "../../src/gossip/config.ts";
import { parseKeyFile } from "../../src/gossip/keyring.ts";
import { Membership } from "../../src/gossip/membership.ts";
import { type AliveMsg, T } from "../../src/gossip/messages.ts";
import { seededRandom } from "../../src/gossip/prng.ts";
import { PACKET, Opened, Sealer } from "../../src/gossip/security.ts";
import { silentLogger } from "../../src/log.ts";
import { FakeClock } from "../../sim/fake-clock.ts";
import { Sim, allSee } from "../../sim/gossip-sim.ts";

const keyring = parseKeyFile(Buffer.alloc(32, 7).toString("base64"));
const addrOf = (n: { gossip: { members(): { name: string; addr: string }[] } }, name: string) => n.gossip.members().find((m) => m.name === name)?.addr;

describe("a member table hearing of a member at a new address", () => {
  function table() {
    const checks: { name: string; addr: string; timeoutMs: number; done: (answered: boolean) => void }[] = [];
    const sent: string[] = [];
    const m = new Membership({
      name: "me",
      addr: "10.0.0.1:7946",
      clock: new FakeClock(),
      config: lanConfig(),
      awareness: new Awareness(8),
      rnd: seededRandom(1),
      logger: silentLogger,
      broadcast: (_k, msg) => void sent.push(msg.t === T.alive ? `alive ${msg.name} ${msg.addr} ${msg.inc}` : `t${msg.t}`),
      checkAddress: (name, addr, timeoutMs, done) => void checks.push({ name, addr, timeoutMs, done }),
    });
    m.aliveNode({ t: T.alive, name: "n2", addr: "10.0.0.2:7946", inc: 3 });
    sent.length = 0;
    const asked = () => checks.map((c) => `${c.name} ${c.addr} ${c.timeoutMs}`);
    const answer = (addr: string, answered: boolean) => checks.find((c) => c.addr === addr)!.done(answered);
    return { m, checks, sent, asked, answer };
  }
  const moved: AliveMsg = { t: T.alive, name: "n2", addr: "10.0.0.22:7946", inc: 4 };
  const OLD = "10.0.0.2:7946";
  const NEW = "10.0.0.22:7946";

  test("from the member itself at the new address: taken once its old address no longer answers (probe timeout)", () => {
    const { m, sent, asked, answer } = table();
    m.aliveNode(moved, undefined, NEW);
    expect(asked()).toEqual([`n2 ${OLD} 500`]);
    expect(m.get("n2")!.addr).toBe(OLD);
    answer(OLD, false);
    expect(m.get("n2")).toMatchObject({ addr: NEW, incarnation: 4, state: "alive" });
    expect(sent).toEqual([`alive n2 ${NEW} 4`]);
  });

  test("a relayed copy: taken once the new address answers and the old one does not; a second copy asks nothing more", () => {
    const { m, asked, answer } = table();
    m.aliveNode(moved, undefined, "10.0.0.3:7946");
    m.aliveNode(moved, undefined, "10.0.0.4:7946");
    expect(asked()).toEqual([`n2 ${OLD} 500`, `n2 ${NEW} 1000`]);
    answer(NEW, true);
    expect(m.get("n2")!.addr).toBe(OLD); // the old address has not been heard from yet
    answer(OLD, false);
    expect(m.get("n2")).toMatchObject({ addr: NEW, incarnation: 4 });
  });

  test("the member still answering at its old address: nothing moves (a second node under its name, not a move)", () => {
    const { m, sent, answer } = table();
    m.aliveNode(moved, undefined, NEW);
    answer(OLD, true);
    expect(m.get("n2")).toMatchObject({ addr: OLD, incarnation: 3 });
    expect(sent).toEqual([]);
  });

  test("nobody of that name answering at the new address: nothing moves", () => {
    const { m, answer } = table();
    m.aliveNode(moved, undefined, "10.0.0.3:7946");
    answer(OLD, false);
    answer(NEW, false);
    expect(m.get("n2")).toMatchObject({ addr: OLD, incarnation: 3 });
  });

  test("an older or equal incarnation at another address is ignored, even from there", () => {
    const { m, checks } = table();
    m.aliveNode({ ...moved, inc: 3 }, undefined, NEW);
    m.aliveNode({ ...moved, inc: 2 }, undefined, "10.0.0.3:7946");
    expect(m.get("n2")!.addr).toBe(OLD);
    expect(checks).toEqual([]);
  });

  test("news of ourselves elsewhere is refuted only when nobody of our name answers there", () => {
    const { m, checks, sent } = table();
    m.aliveNode({ t: T.alive, name: "me", addr: "10.0.0.9:7946", inc: 5 }, undefined, "10.0.0.3:7946");
    expect(checks.map((c) => `${c.name} ${c.addr}`)).toEqual(["me 10.0.0.9:7946"]);
    expect(sent).toEqual([]);
    checks[0]!.done(false);
    expect(sent).toEqual(["alive me 10.0.0.1:7946 6"]);
    m.aliveNode({ t: T.alive, name: "me", addr: "10.0.0.9:7946", inc: 7 }, undefined, "10.0.0.3:7946");
    checks[1]!.done(true); // another machine under our name: left be
    expect(sent).toEqual(["alive me 10.0.0.1:7946 6"]);
    expect(m.self().incarnation).toBe(6);
  });

  test("moveSelf announces the new address with a new incarnation", () => {
    const { m, sent } = table();
    m.moveSelf("10.0.0.11:7946");
    expect(m.self()).toMatchObject({ addr: "10.0.0.11:7946", incarnation: 1 });
    expect(sent).toEqual(["alive me 10.0.0.11:7946 1"]);
  });
});

describe("Sealer after a re-bind or a key change", () => {
  test("seals the new address; the old one no longer matches", () => {
    const clock = new FakeClock();
    const s = new Sealer({ keyring, clusterName: "weft", addr: "10.0.0.1:7946", clock });
    s.setAddr("10.0.0.11:7946");
    const o = new Opened();
    expect(s.open(s.seal(new Uint8Array([1]), PACKET), PACKET, o)).not.toBeNull();
    expect(o.sender()).toBe("10.0.0.11:7946");
    expect(o.senderIs("10.0.0.1:7946")).toBe(false);
  });

  test("a new keyring seals with its primary and opens with every key; encryption cannot be switched on or off", () => {
    const clock = new FakeClock();
    const k2 = parseKeyFile(Buffer.alloc(32, 8).toString("base64"));
    const old = new Sealer({ keyring, clusterName: "weft", addr: "10.0.0.1:7946", clock });
    const s = new Sealer({ keyring, clusterName: "weft", addr: "10.0.0.2:7946", clock });
    s.setKeyring({ primary: k2.primary, keys: [k2.primary, keyring.primary] });
    const o = new Opened();
    expect(s.open(old.seal(new Uint8Array([1]), PACKET), PACKET, o)).not.toBeNull(); // the old key still opens
    expect(old.open(s.seal(new Uint8Array([1]), PACKET), PACKET, o)).toBeNull(); // sealed with the new one
    expect(() => s.setKeyring(null)).toThrow("cannot switch off encryption while running; restart the agent");
    expect(() => new Sealer({ keyring: null, clusterName: "weft", addr: "10.0.0.3:7946", clock }).setKeyring(keyring)).toThrow("cannot switch on encryption");
  });
});

describe("gossip re-bind on MemNetwork (FakeClock, sealed)", () => {
  for (const [label, nodes, config] of [
    ["6 nodes", 6, {}],
    ["12 nodes, gossip to one peer per round (most members hear it relayed)", 12, { gossipNodes: 1 }],
  ] as const) {
    test(`${label}: every member knows the moved node at its new address within 2 s, none suspects it`, async () => {
      const sim = new Sim({ seed: 41, keyring, config });
      const all = await sim.cluster(nodes);
      const names = all.map((n) => n.name);
      expect(await sim.runUntil(() => allSee(all, names, "alive"), 20_000)).toBeGreaterThanOrEqual(0);
      const mover = all[3]!;
      const to = "10.0.9.9:7946";
      const others = all.filter((n) => n !== mover);
      await mover.gossip.rebind(sim.net.transport(to));
      let suspected = false;
      const took = await sim.runUntil(() => {
        suspected ||= others.some((n) => n.gossip.member!("n3")?.state !== "alive");
        return others.every((n) => addrOf(n, "n3") === to);
      }, 10_000);
      expect(took).toBeGreaterThanOrEqual(0);
      expect(took).toBeLessThan(2_000);
      expect(suspected).toBe(false);
      // And it stays that way: probes reach it at the new address, its own view is whole.
      await sim.run(10_000);
      expect(allSee(all, names, "alive")).toBe(true);
      for (const n of others) expect(addrOf(n, "n3")).toBe(to);
      for (const n of all) expect(n.gossip.metrics().senderMismatches).toBe(0);
    });
  }

  test("a key holder's rumour of a member at an address where that member does not answer changes nothing", async () => {
    const sim = new Sim({ seed: 43, keyring });
    const all = await sim.cluster(4);
    expect(await sim.runUntil(() => allSee(all, all.map((n) => n.name), "alive"), 10_000)).toBeGreaterThanOrEqual(0);
    // n3 relays an alive of n1 at n2's address: n2 does not answer pings naming n1.
    const inc = all[1]!.gossip.member!("n1")!.incarnation + 5;
    const forged = new Sealer({ keyring, clusterName: "test", addr: all[3]!.addr, clock: sim.clock });
    const { compound, encode } = await import("../../src/gossip/codec.ts");
    for (const target of [all[0]!, all[2]!]) sim.net.sendPacket(all[3]!.addr, target.addr, forged.seal(compound([encode({ t: T.alive, name: "n1", addr: all[2]!.addr, inc })]), PACKET));
    let misled = false;
    await sim.runUntil(() => {
      misled ||= all.some((n) => n.name !== "n1" && addrOf(n, "n1") !== all[1]!.addr);
      return false;
    }, 5_000);
    expect(misled).toBe(false);
  });

  test("a live member is not moved while it still answers at its own address: a second node under its name announcing itself, newer, from elsewhere takes nothing", async () => {
    const sim = new Sim({ seed: 53, keyring });
    const all = await sim.cluster(4);
    expect(await sim.runUntil(() => allSee(all, all.map((n) => n.name), "alive"), 10_000)).toBeGreaterThanOrEqual(0);
    const impostor = await sim.add("n3", 9); // a key holder (or a clone) under n3's name
    await sim.runUntilSettled(impostor.gossip.join([all[0]!.addr]), 5_000);
    // Out-bid the real n3's incarnation, announced from the impostor's own address.
    for (let i = 0; i < 10; i++) impostor.gossip.updateMeta(new Uint8Array([i]));
    let taken = false;
    await sim.runUntil(() => {
      taken ||= all.some((n) => n.name !== "n3" && addrOf(n, "n3") !== all[3]!.addr);
      return false;
    }, 10_000);
    expect(taken).toBe(false);
  });

  test("two live nodes under one name do not out-bid each other: the name's incarnation settles", async () => {
    const sim = new Sim({ seed: 47, keyring });
    const all = await sim.cluster(4);
    expect(await sim.runUntil(() => allSee(all, all.map((n) => n.name), "alive"), 10_000)).toBeGreaterThanOrEqual(0);
    const clone = await sim.add("n3", 9);
    await sim.runUntilSettled(clone.gossip.join([all[0]!.addr]), 5_000);
    await sim.run(5_000);
    const inc = () => Math.max(...all.map((n) => n.gossip.member!("n3")!.incarnation), clone.gossip.member!("n3")!.incarnation);
    const before = inc();
    await sim.run(20_000);
    expect(inc()).toBe(before);
    const addrs = new Set(all.filter((n) => n.name !== "n3").map((n) => addrOf(n, "n3")));
    expect(addrs.size).toBe(1);
  });
});
