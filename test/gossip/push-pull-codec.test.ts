/**
 * The push-pull message writer and the skipping reader (push-pull-codec.ts) against plain
 * msgpack: what encodePushPull writes decodes to the message object, readPushPull reads
 * anything decode() reads to the same checked message, and it leaves out exactly the
 * member entries identical to the held ones. Plus the one merge rule the reader must not
 * break: an identical *suspect* entry still confirms our suspicion (push-pull.ts).
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { Awareness } from "../../src/gossip/awareness.ts";
import { STATE_NAME, T } from "../../src/gossip/messages.ts";
import { decode, encode } from "../../src/gossip/codec.ts";
import { pushPullChecker } from "../../src/gossip/message-check.ts";
import { lanConfig } from "../../src/gossip/config.ts";
import { Membership } from "../../src/gossip/membership.ts";
import { seededRandom } from "../../src/gossip/prng.ts";
import { PushPull } from "../../src/gossip/push-pull.ts";
import { type MemberEntrySource, encodeMemberEntry, encodePushPull, readPushPull } from "../../src/gossip/push-pull-codec.ts";
import { Runtime } from "../../src/gossip/runtime.ts";
import { AntiReplay } from "../../src/gossip/anti-replay.ts";
import { Opened, Sealer } from "../../src/gossip/security.ts";
import { Streams } from "../../src/gossip/streams.ts";
import type { Transport } from "../../src/gossip/transport.ts";
import { silentLogger } from "../../src/log.ts";
import { FakeClock } from "../../sim/fake-clock.ts";

const sourceArb: fc.Arbitrary<MemberEntrySource> = fc
  .record(
    {
      // Names of up to 40 characters, some non-ASCII (the reader's name peek reads bytes).
      name: fc.oneof(fc.stringMatching(/^n[0-9]{1,3}$/), fc.string({ minLength: 1, maxLength: 40 })),
      addr: fc.constantFrom("10.0.0.1:7946", "10.0.0.2:7946"),
      incarnation: fc.oneof(fc.nat(3), fc.nat()),
      state: fc.constantFrom(...STATE_NAME),
      meta: fc.uint8Array({ maxLength: 40 }),
    },
    { requiredKeys: ["name", "addr", "incarnation", "state"] },
  );
const headArb = fc.record({ join: fc.boolean(), from: fc.string({ minLength: 1, maxLength: 40 }), digest: fc.uint8Array({ maxLength: 64 }) }, { requiredKeys: ["join", "from"] });

const asObject = (s: MemberEntrySource) => decode(encodeMemberEntry(s));
const noneHeld = () => undefined;

describe("encodePushPull", () => {
  test("decodes to the message object, members and all", () => {
    fc.assert(
      fc.property(headArb, fc.array(sourceArb, { maxLength: 40 }), fc.uint8Array({ maxLength: 300 }), (head, list, user) => {
        const want: Record<string, unknown> = { join: head.join, from: head.from, members: list.map(asObject), user };
        if (head.digest) want.digest = head.digest;
        expect(decode(encodePushPull(head, list.map(encodeMemberEntry), user))).toStrictEqual(want);
      }),
      { numRuns: 500 },
    );
  });

  test("long fields take the longer msgpack headers (str8/16, bin16/32, array32)", () => {
    const user = new Uint8Array(70_000).fill(7);
    const from = "f".repeat(300);
    const list = Array.from({ length: 70_000 }, (_, i) => ({ name: `n${i}`, addr: "1.2.3.4:5", incarnation: i, state: "alive" as const }));
    const got = decode(encodePushPull({ join: true, from }, list.map(encodeMemberEntry), user)) as { from: string; members: unknown[]; user: Uint8Array };
    expect(got.from).toBe(from);
    expect(got.members.length).toBe(70_000);
    expect(got.members[69_999]).toStrictEqual({ name: "n69999", addr: "1.2.3.4:5", inc: 69_999, state: 0 });
    expect(got.user).toStrictEqual(user);
  });
});

describe("readPushPull", () => {
  const check = pushPullChecker(50, 1000);
  const checked = (v: unknown) => check.safeParse(v);

  test("with nothing held, reads any encoding to the same checked message as decode()", () => {
    // Objects encoded by msgpackr in any key order, with extra keys and wrong types.
    const anyValue = fc.oneof(fc.string({ maxLength: 5 }), fc.integer(), fc.boolean(), fc.uint8Array({ maxLength: 5 }), fc.constant(null));
    const messageArb = fc
      .record(
        {
          extra: anyValue,
          members: fc.oneof({ weight: 5, arbitrary: fc.array(sourceArb.map(asObject), { maxLength: 8 }) }, { weight: 1, arbitrary: anyValue }),
          user: fc.oneof(fc.uint8Array({ maxLength: 40 }), anyValue),
          from: fc.oneof(fc.string({ minLength: 1, maxLength: 5 }), anyValue),
          join: fc.oneof(fc.boolean(), anyValue),
          digest: fc.oneof(fc.uint8Array({ maxLength: 70 }), anyValue),
        },
        { requiredKeys: [] },
      )
      .map(encode);
    const ours = fc.tuple(headArb, fc.array(sourceArb, { maxLength: 8 }), fc.uint8Array({ maxLength: 40 })).map(([h, l, u]) => encodePushPull(h, l.map(encodeMemberEntry), u));
    fc.assert(
      fc.property(fc.oneof(messageArb, ours), (bytes) => {
        const r = readPushPull(bytes, noneHeld, 50);
        expect(r.skipped).toBe(0);
        expect(checked(r.value)).toStrictEqual(checked(decode(bytes)));
      }),
      { numRuns: 2000 },
    );
  });

  test("leaves out exactly the entries identical to the held ones", () => {
    // held: per name, the entry itself, a changed one (another incarnation) or none.
    const caseArb = fc.array(fc.tuple(sourceArb, fc.constantFrom("same", "changed", "none")), { maxLength: 40 });
    fc.assert(
      fc.property(headArb, caseArb, (head, rows) => {
        const held = new Map<string, Uint8Array>();
        for (const [s, how] of rows) {
          if (how === "same") held.set(s.name, encodeMemberEntry(s));
          else if (how === "changed") held.set(s.name, encodeMemberEntry({ ...s, incarnation: s.incarnation + 1 }));
        }
        const list = rows.map(([s]) => s);
        const bytes = encodePushPull(head, list.map(encodeMemberEntry), new Uint8Array(3));
        const r = readPushPull(bytes, (n) => held.get(n), 50);
        // A name listed twice is held once: compare bytes, as the reader does.
        const kept = list.filter((s) => !Bun.deepEquals(held.get(s.name), encodeMemberEntry(s)));
        expect(r.skipped).toBe(list.length - kept.length);
        expect((r.value as { members: unknown[] }).members).toStrictEqual(kept.map(asObject));
        const full = checked(decode(bytes));
        const got = checked(r.value);
        expect(got.success).toBe(full.success);
      }),
      { numRuns: 1000 },
    );
  });

  test("more entries than maxMembers: nothing skipped, the check rejects the whole list", () => {
    const list = Array.from({ length: 5 }, (_, i) => ({ name: `n${i}`, addr: "1.2.3.4:5", incarnation: 0, state: "alive" as const }));
    const bytes = encodePushPull({ join: false, from: "x" }, list.map(encodeMemberEntry), new Uint8Array(0));
    const r = readPushPull(bytes, (n) => encodeMemberEntry(list.find((s) => s.name === n)!), 4);
    expect(r.skipped).toBe(0);
    expect(pushPullChecker(4, 10).safeParse(r.value).success).toBe(false);
    expect(readPushPull(bytes, (n) => encodeMemberEntry(list.find((s) => s.name === n)!), 5).skipped).toBe(5);
  });

  test("truncated or corrupt messages throw, as decode() does", () => {
    const bytes = encodePushPull({ join: false, from: "x" }, [encodeMemberEntry({ name: "a", addr: "1.2.3.4:5", incarnation: 0, state: "alive" })], new Uint8Array(4));
    for (let n = 0; n < bytes.length; n++) expect(() => readPushPull(bytes.subarray(0, n), noneHeld, 10)).toThrow();
  });
});

describe("PushPull.serve with a skipping read", () => {
  test("an identical suspect entry still confirms our suspicion; identical alive ones change nothing", () => {
    const clock = new FakeClock();
    const config = lanConfig();
    const sent: { key: string; msg: { t: number; from?: string } }[] = [];
    const members = new Membership({
      name: "n0", addr: "10.0.0.0:1", clock, config, awareness: new Awareness(8),
      rnd: seededRandom(1), logger: silentLogger, broadcast: (key, msg) => void sent.push({ key, msg }),
    });
    for (let i = 1; i <= 6; i++) members.aliveNode({ t: T.alive, name: `n${i}`, addr: `10.0.0.${i}:1`, inc: 0 });
    members.suspectNode({ t: T.suspect, name: "n1", inc: 0, from: "n2" });
    const rt = new Runtime(clock, silentLogger);
    const sealer = new Sealer({ keyring: null, clusterName: "t", addr: "10.0.0.0:1", clock });
    const streams = new Streams(rt, {} as Transport, sealer, 1 << 20, new AntiReplay(rt, config.maxClockSkewMs, config.replayCacheMax));
    const merged: string[] = [];
    const pp = new PushPull({
      name: "n0", config, rt, members, streams,
      delegate: { localState: () => new Uint8Array(0), mergeRemoteState: (_u, _j, from) => void merged.push(from), notifyMessage: () => {} },
    });
    // n3's view equals ours, n1 suspect included.
    const entries = members.all().map((s) => encodeMemberEntry(s));
    sent.length = 0;
    pp.serve(encodePushPull({ join: false, from: "n3" }, entries, new Uint8Array(0)), "10.0.0.3:1", new Opened());
    expect(merged).toStrictEqual(["n3"]);
    // The only news: n3 confirmed the suspicion of n1 (re-broadcast as an independent accusation).
    expect(sent).toStrictEqual([{ key: "m:n1", msg: { t: T.suspect, name: "n1", inc: 0, from: "n3" } as never }]);
    expect(members.get("n1")!.state).toBe("suspect");
    members.stop();
    rt.stop();
  });
});
