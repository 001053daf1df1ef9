/**
 * Whatever arrives from the network — garbage, truncated or tampered packets, valid
 * msgpack that breaks the schema, oversized data — is dropped and counted, never
 * thrown, and the node keeps working.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { T } from "../../src/gossip/messages.ts";
import { compound, encode } from "../../src/gossip/codec.ts";
import { PACKET, REQUEST, Sealer } from "../../src/gossip/security.ts";
import type { Keyring } from "../../src/gossip/types.ts";
import { Sim, allSee } from "../../sim/gossip-sim.ts";

const keyring: Keyring = (() => {
  const k = new Uint8Array(32).fill(9);
  return { primary: k, keys: [k] };
})();

async function pair() {
  const sim = new Sim({ seed: 31, keyring });
  const nodes = await sim.cluster(2);
  await sim.runUntil(() => allSee(nodes, ["n0", "n1"], "alive"), 5_000);
  const evil = sim.net.transport("10.66.0.1:7946");
  // A key holder's sealer at evil's address (what it seals must come from there).
  const sealer = new Sealer({ keyring, clusterName: "test", addr: "10.66.0.1:7946", clock: sim.clock });
  return { sim, target: nodes[0]!, nodes, evil, sealer };
}

describe("hostile input", () => {
  test("random bytes are counted as decrypt failures and never throw", async () => {
    const { sim, target, evil, nodes } = await pair();
    const before = target.gossip.metrics();
    let sent = 0;
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 1400 }), (data) => {
        evil.sendPacket(target.addr, data);
        sent++;
      }),
      { numRuns: 300, seed: 5 },
    );
    await sim.run(50);
    const after = target.gossip.metrics();
    expect(after.decryptFailures - before.decryptFailures).toBe(sent);
    await sim.run(3_000);
    expect(allSee(nodes, ["n0", "n1"], "alive")).toBe(true);
  });

  test("sealed but malformed content is counted as decode failures", async () => {
    const { sim, target, evil, sealer } = await pair();
    const before = target.gossip.metrics().decodeFailures;
    const bad: Uint8Array[] = [
      new Uint8Array([0xc1]), // reserved msgpack byte
      encode("not an array"),
      encode({ t: T.ping }),
      compound([encode({ t: 99, seq: 1 }), encode({ t: T.alive, name: "", addr: "x", inc: -1 })]), // two bad messages
      compound([encode({ t: T.alive, name: "n".repeat(500), addr: "1.2.3.4:5", inc: 1 })]),
      compound([encode({ t: T.alive, name: "m", addr: "1.2.3.4:5", inc: 1, meta: new Uint8Array(300) })]),
      encode(new Array(1000).fill(0)),
    ];
    for (const p of bad) evil.sendPacket(target.addr, sealer.seal(p, PACKET));
    await sim.run(50);
    expect(target.gossip.metrics().decodeFailures - before).toBe(8);
    expect(target.gossip.members().map((m) => m.name).sort()).toEqual(["n0", "n1"]);
  });

  test("fuzzed message objects inside valid packets never throw", async () => {
    const { sim, target, evil, nodes, sealer } = await pair();
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ t: fc.integer({ min: 0, max: 9 }), seq: fc.anything(), name: fc.oneof(fc.string(), fc.constant("n1")), inc: fc.anything(), addr: fc.string(), from: fc.string(), target: fc.string(), payload: fc.anything() }, { requiredKeys: ["t"] }),
          { maxLength: 4 },
        ),
        (msgs) => {
          const parts = msgs.map((m) => {
            try {
              return encode(m);
            } catch {
              return encode(null);
            }
          });
          const plain = compound(parts);
          if (plain.length < 1300) evil.sendPacket(target.addr, sealer.seal(plain, PACKET));
        },
      ),
      { numRuns: 300, seed: 6 },
    );
    await sim.run(100);
    await sim.run(5_000);
    // Still a working cluster: n1 may have had to refute forged rumours, but is alive.
    expect(allSee(nodes, ["n0", "n1"], "alive")).toBe(true);
  });

  test("oversized packets are dropped before decryption", async () => {
    const { sim, target, evil } = await pair();
    const before = target.gossip.metrics();
    evil.sendPacket(target.addr, new Uint8Array(5000));
    await sim.run(10);
    const after = target.gossip.metrics();
    expect(after.decodeFailures - before.decodeFailures).toBe(1);
    expect(after.decryptFailures).toBe(before.decryptFailures);
  });

  test("garbage and wrong-key push-pull streams are refused and counted", async () => {
    const { sim, target, evil, sealer: right } = await pair();
    const ac = new AbortController();
    const before = target.gossip.metrics();
    const p1 = evil.stream(target.addr, new Uint8Array([1, 2, 3]), { signal: ac.signal, maxBytes: 1 << 20 });
    const other = new Sealer({ keyring: { primary: new Uint8Array(32), keys: [new Uint8Array(32)] }, clusterName: "test", addr: "10.66.0.1:7946", clock: sim.clock });
    const p2 = evil.stream(target.addr, other.seal(encode({ join: true, from: "x", members: [], user: new Uint8Array() }), REQUEST), { signal: ac.signal, maxBytes: 1 << 20 });
    const p3 = evil.stream(target.addr, right.seal(encode({ join: true, from: "x", members: "lots", user: 5 }), REQUEST), { signal: ac.signal, maxBytes: 1 << 20 });
    const results = await sim.runUntilSettled(Promise.allSettled([p1, p2, p3]), 1_000);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected", "rejected"]);
    const after = target.gossip.metrics();
    expect(after.decryptFailures - before.decryptFailures).toBe(2);
    expect(after.decodeFailures - before.decodeFailures).toBe(1);
  });

  test("a delegate that throws does not break gossip", async () => {
    const sim = new Sim({ seed: 32 });
    const nodes = await sim.cluster(3);
    await sim.runUntil(() => allSee(nodes, ["n0", "n1", "n2"], "alive"), 5_000);
    nodes[1]!.delegate.notifyMessage = () => {
      throw new Error("boom");
    };
    nodes[1]!.delegate.mergeRemoteState = () => {
      throw new Error("boom");
    };
    nodes[0]!.gossip.broadcast("k", new Uint8Array([1]));
    await sim.runUntilSettled(nodes[0]!.gossip.pushPull("n1"), 2_000);
    expect(await sim.runUntil(() => nodes[2]!.delegate.messages.length === 1, 3_000)).toBeGreaterThanOrEqual(0);
    await sim.run(3_000);
    expect(allSee(nodes, ["n0", "n1", "n2"], "alive")).toBe(true);
  });
});
