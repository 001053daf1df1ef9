/**
 * The hand-written validators (checkMessage, pushPullChecker) against the zod schemas
 * that define the wire format: for near-valid inputs built from boundary values, both
 * accept exactly the same inputs and produce the same output.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { isIPv4, isIPv6 } from "node:net";
import { MAX_ADDR, isGossipAddr } from "../../src/gossip/addr.ts";
import { MAX_KEY, MAX_META, MAX_NAME, messageSchema, pushPullSchema } from "../../src/gossip/messages.ts";
import { checkMessage, pushPullChecker } from "../../src/gossip/message-check.ts";
import { decode, decodeMessageAt, encode, packetBounds } from "../../src/gossip/codec.ts";

const strLens = [0, 1, 2, 3, 4, MAX_ADDR, MAX_ADDR + 1, MAX_NAME, MAX_NAME + 1, MAX_KEY, MAX_KEY + 1];
const strArb = fc.constantFrom(...strLens).map((n) => "x".repeat(n));
const numArb = fc.constantFrom(-1, -0, 0, 1, 1.5, 3, 4, 7, 0xffffffff, 0x100000000, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, Number.NaN, Number.POSITIVE_INFINITY);
const bytesArb = fc.constantFrom(0, 1, MAX_META, MAX_META + 1, 1000, 65_536, 65_537).map((n) => new Uint8Array(n));
const anyArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: strArb },
  { weight: 3, arbitrary: numArb },
  { weight: 2, arbitrary: bytesArb },
  { weight: 1, arbitrary: fc.constantFrom(null, undefined, true, false, [], {}, "1", Buffer.from("ab")) },
  { weight: 2, arbitrary: fc.constantFrom("10.0.0.1:7946", "[::1]:7946", "node-a:7946", "10.0.0.1:0") },
);

const msgFields = ["seq", "target", "from", "targetAddr", "name", "addr", "inc", "meta", "origin", "key", "payload"];
/** Each field: absent, or a boundary value; `t` mostly a real tag; sometimes an extra key. */
const messageArb: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 20,
    arbitrary: fc
      .record({
        t: fc.oneof(fc.integer({ min: 0, max: 9 }), fc.constantFrom("1", null, 1.5)),
        fields: fc.array(fc.tuple(fc.constantFrom(...msgFields, "extra"), anyArb), { maxLength: 8 }),
      })
      .map(({ t, fields }) => Object.fromEntries([["t", t], ...fields])),
  },
  { weight: 1, arbitrary: anyArb },
);

/** Valid gossip addresses: IPv4 or [IPv6], then a port. */
const validAddrArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 2, arbitrary: fc.tuple(fc.ipV4(), fc.integer({ min: 1, max: 65_535 })).map(([ip, p]) => `${ip}:${p}`) },
  { weight: 1, arbitrary: fc.tuple(fc.ipV6(), fc.integer({ min: 1, max: 65_535 })).map(([ip, p]) => `[${ip}]:${p}`) },
);
/** Gossip addresses, mostly valid, sometimes a host name or a bad port. */
const addrArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: validAddrArb },
  { weight: 1, arbitrary: fc.tuple(fc.domain(), fc.integer({ min: 0, max: 70_000 })).map(([h, p]) => `${h}:${p}`) },
  { weight: 1, arbitrary: fc.tuple(fc.ipV4(), fc.constantFrom("0", "65536", "07946", "", "x")).map(([ip, p]) => `${ip}:${p}`) },
);

/** Valid messages of every type, so acceptance is exercised, not only rejection. */
const validArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.record({ t: fc.constant(1), seq: fc.nat(), target: fc.string({ minLength: 1 }), from: fc.string({ minLength: 1 }) }),
  fc.record({ t: fc.constant(2), seq: fc.nat(), target: fc.string({ minLength: 1 }), targetAddr: validAddrArb, from: fc.string({ minLength: 1 }) }),
  fc.record({ t: fc.constantFrom(3, 4), seq: fc.nat() }),
  fc.record({ t: fc.constant(5), name: fc.string({ minLength: 1 }), addr: validAddrArb, inc: fc.nat(), meta: fc.uint8Array({ maxLength: 300 }) }, { requiredKeys: ["t", "name", "addr", "inc"] }),
  fc.record({ t: fc.constantFrom(6, 7), name: fc.string({ minLength: 1 }), inc: fc.nat(), from: fc.string({ minLength: 1 }) }),
  fc.record({ t: fc.constant(8), origin: fc.string({ minLength: 1 }), key: fc.string(), seq: fc.nat(), payload: fc.uint8Array({ maxLength: 50 }), junk: fc.nat() }),
);

function sameAsZod(v: unknown): void {
  const z = messageSchema.safeParse(v);
  const h = checkMessage(v);
  expect(h !== undefined).toBe(z.success);
  if (z.success) expect(h).toStrictEqual(z.data);
}

describe("checkMessage ≡ messageSchema", () => {
  test("boundary-value messages", () => {
    fc.assert(fc.property(messageArb, sameAsZod), { numRuns: 5000 });
  });

  test("valid messages, also after a msgpack round trip", () => {
    fc.assert(
      fc.property(validArb, (v) => {
        sameAsZod(v);
        sameAsZod(decode(encode(v)));
        expect(checkMessage(v)).toBeDefined();
      }),
      { numRuns: 2000 },
    );
  });

  test("edge cases zod treats specially", () => {
    for (const v of [
      { t: 5, name: "a", addr: "1.2.3.4:5", inc: 0, meta: undefined }, // explicit undefined kept
      { t: 5, name: "a", addr: "1.2.3.4:5", inc: 0, extra: 1 }, // extra key stripped
      Object.assign([], { t: 3, seq: 1 }), // arrays are not objects
      Object.create({ t: 3, seq: 1 }), // inherited properties are read
      { t: 3, seq: -0 },
    ]) {
      sameAsZod(v);
    }
  });

  test("a packet's messages are found by packetBounds; decodeMessageAt refuses what the schema rejects", () => {
    const pkt = encode([{ t: 3, seq: 1 }, { t: 3, seq: -1 }, { t: 9 }, { t: 4, seq: 2, x: 1 }]);
    const bounds = packetBounds(pkt);
    expect(bounds).toHaveLength(5);
    const decoded = bounds.slice(0, -1).map((start, i) => decodeMessageAt(pkt, start, bounds[i + 1]!));
    expect(decoded).toStrictEqual([{ t: 3, seq: 1 }, undefined, undefined, { t: 4, seq: 2 }]);
  });
});

describe("pushPullChecker ≡ pushPullSchema", () => {
  const memberArb: fc.Arbitrary<unknown> = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record(
        { name: fc.string({ minLength: 1, maxLength: 10 }), addr: addrArb, inc: fc.nat(), state: fc.integer({ min: 0, max: 3 }), meta: fc.uint8Array({ maxLength: 10 }) },
        { requiredKeys: ["name", "addr", "inc", "state"] },
      ),
    },
    {
      weight: 1,
      arbitrary: fc
        .array(fc.tuple(fc.constantFrom("name", "addr", "inc", "state", "meta", "extra"), anyArb), { maxLength: 6 })
        .map((f) => Object.fromEntries(f)),
    },
    { weight: 1, arbitrary: anyArb },
  );
  const ppArb = fc
    .record(
      {
        join: fc.oneof(fc.boolean(), anyArb),
        from: fc.oneof(fc.string({ minLength: 1, maxLength: 5 }), anyArb),
        members: fc.oneof({ weight: 5, arbitrary: fc.array(memberArb, { maxLength: 6 }) }, { weight: 1, arbitrary: anyArb }),
        user: fc.oneof(fc.uint8Array({ maxLength: 40 }), anyArb),
        digest: fc.oneof(fc.uint8Array({ maxLength: 70 }), fc.constant(undefined), anyArb),
        extra: anyArb,
      },
      { requiredKeys: [] },
    );

  test("random push-pull messages (maxMembers 4, maxBytes 32)", () => {
    const z = pushPullSchema(4, 32);
    const h = pushPullChecker(4, 32);
    fc.assert(
      fc.property(ppArb, (v) => {
        const a = z.safeParse(v);
        const b = h.safeParse(v);
        expect(b.success).toBe(a.success);
        if (a.success && b.success) expect(b.data).toStrictEqual(a.data);
      }),
      { numRuns: 5000 },
    );
  });

  test("a valid list is accepted and a bad member rejects the whole message", () => {
    const h = pushPullChecker(10, 100);
    const ok = { join: true, from: "a", members: [{ name: "b", addr: "1.2.3.4:5", inc: 1, state: 0 }], user: new Uint8Array(3) };
    expect(h.safeParse(ok).success).toBe(true);
    expect(h.safeParse({ ...ok, members: [...ok.members, { name: "c", addr: "1.2.3.4:5", inc: 1, state: 4 }] }).success).toBe(false);
  });
});

describe("gossip addresses are IP:port only", () => {
  test("accepted and refused addresses", () => {
    const cases: [string, boolean][] = [
      ["10.0.0.1:7946", true],
      ["127.0.0.1:1", true],
      ["255.255.255.255:65535", true],
      ["[::1]:7946", true],
      ["[2001:db8::1]:7946", true],
      ["[::ffff:192.0.2.1]:7946", true],
      ["node-a:7946", false],
      ["evil.example.com:7946", false],
      ["localhost:7946", false],
      ["10.0.0.1", false],
      ["10.0.0.1:", false],
      ["10.0.0.1:0", false],
      ["10.0.0.1:65536", false],
      ["10.0.0.1:07946", false],
      ["10.0.0.01:7946", false],
      ["10.0.0.256:7946", false],
      ["10.0.0:7946", false],
      ["::1:7946", false],
      ["[::1]", false],
      ["[fe80::1%eth0]:7946", false],
      ["[10.0.0.1]:7946", false],
      [" 10.0.0.1:7946", false],
      [`[${"1:".repeat(7)}1]:7946${"0".repeat(MAX_ADDR)}`, false],
    ];
    expect(cases.map(([a]) => [a, isGossipAddr(a)])).toEqual(cases);
  });

  test("the same as a reference built from node:net's isIPv4/isIPv6, on address-like strings", () => {
    const reference = (v: string) => {
      const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):([1-9][0-9]{0,4})$/.exec(v);
      if (!m || Number(m[3]) > 65_535 || v.length > MAX_ADDR) return false;
      return m[1] !== undefined ? !m[1].includes("%") && isIPv6(m[1]) : isIPv4(m[2]!);
    };
    const part = fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom("0", "9", "10", "99", "100", "199", "200", "249", "250", "255", "256", "260", "300", "999", "1000") },
      { weight: 1, arbitrary: fc.constantFrom("00", "01", "007", "", "a", "-1", " 1", "1 ") },
    );
    const quad = fc.tuple(part, part, part, part).map((p) => p.join("."));
    const host = fc.oneof(quad, fc.ipV4(), fc.ipV6().map((h) => `[${h}]`), fc.domain(), fc.string({ maxLength: 20 }), fc.tuple(quad, part).map(([q, p]) => `${q}.${p}`));
    const port = fc.oneof(fc.integer({ min: 0, max: 70_000 }).map(String), fc.constantFrom("", "07946", "1e3", "+1", "65535", "65536"));
    fc.assert(fc.property(host, port, fc.boolean(), (h, p, colon) => {
      const v = colon ? `${h}:${p}` : `${h}${p}`;
      expect([v, isGossipAddr(v)]).toEqual([v, reference(v)]);
    }), { numRuns: 20_000, seed: 11 });
  });

  test("an alive, an indirect request or a push-pull entry with a host name is invalid", () => {
    expect(checkMessage({ t: 5, name: "a", addr: "evil.example:7946", inc: 1 })).toBeUndefined();
    expect(checkMessage({ t: 2, seq: 1, target: "a", targetAddr: "evil.example:7946", from: "b" })).toBeUndefined();
    expect(messageSchema.safeParse({ t: 5, name: "a", addr: "evil.example:7946", inc: 1 }).success).toBe(false);
    const msg = { join: false, from: "a", members: [{ name: "b", addr: "evil.example:7946", inc: 1, state: 0 }], user: new Uint8Array() };
    expect(pushPullChecker(10, 100).safeParse(msg).success).toBe(false);
    expect(pushPullSchema(10, 100).safeParse(msg).success).toBe(false);
    expect(checkMessage({ t: 5, name: "a", addr: "10.0.0.1:7946", inc: 1 })).toBeDefined();
  });
});
