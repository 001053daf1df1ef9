/**
 * Sealing (src/gossip/security.ts): AES-256-GCM with the format version, message class and
 * cluster name as associated data, and the envelope (sent-at, sender, the answered
 * request's nonce) inside the sealed part; the legacy and insecure formats.
 */
import { describe, expect, test } from "bun:test";
import { parseKeyFile } from "../../src/gossip/keyring.ts";
import type { LegacyWire } from "../../src/gossip/config.ts";
import { type MsgClass, Opened, PACKET, REPLY, REQUEST, Sealer } from "../../src/gossip/security.ts";
import type { Keyring } from "../../src/gossip/types.ts";
import { FakeClock } from "../../sim/fake-clock.ts";

const k1 = Buffer.alloc(32, 1).toString("base64");
const k2 = Buffer.alloc(32, 2).toString("base64");
const k3 = Buffer.alloc(32, 3).toString("base64");
const ring = (...b64: string[]) => parseKeyFile(b64.join("\n"));
const msg = new TextEncoder().encode("a gossip packet");
const clock = new FakeClock();
const ADDR = "10.0.0.1:7946";
const sealer = (keyring: Keyring | null, clusterName = "prod", legacyWire: LegacyWire = "off", addr = ADDR) => new Sealer({ keyring, clusterName, addr, clock, legacyWire });
const text = (b: Uint8Array | null) => (b ? new TextDecoder().decode(b) : null);
const CLASSES: [string, MsgClass][] = [["packet", PACKET], ["request", REQUEST], ["reply", REPLY]];
/** A stream request to answer, and its opened form. */
function requestOf(s: Sealer): { req: Uint8Array; opened: Opened } {
  const req = s.seal(msg, REQUEST);
  const opened = new Opened();
  expect(s.open(req, REQUEST, opened)).not.toBeNull();
  return { req, opened };
}

describe("Sealer: the current format", () => {
  test("round trip of every class with a fresh nonce each time; exact overhead; sent-at and sender inside", () => {
    const s = sealer(ring(k1));
    const { opened: req } = requestOf(s);
    for (const [, cls] of CLASSES) {
      const replyTo = cls === REPLY ? req : undefined;
      const a = s.seal(msg, cls, replyTo);
      const b = s.seal(msg, cls, replyTo);
      expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
      expect(a.length).toBe(msg.length + s.overhead(cls, replyTo));
      const o = new Opened();
      expect(text(s.open(a, cls, o))).toBe("a gossip packet");
      expect({ legacy: o.legacy, sentAt: o.sentAt, sender: o.sender(), senderIs: o.senderIs(ADDR), other: o.senderIs("10.0.0.2:7946") }).toEqual({
        legacy: false, sentAt: clock.now(), sender: ADDR, senderIs: true, other: false,
      });
      // The id is the nonce's first 53 bits: different per message.
      const o2 = new Opened();
      s.open(b, cls, o2);
      expect(o2.id).not.toBe(o.id);
      expect(o.id).toBeLessThan(2 ** 53);
    }
  });

  test("a message opens only as the class it was sealed as (associated data)", () => {
    const s = sealer(ring(k1));
    const { req, opened } = requestOf(s);
    const sealedAs = { packet: s.seal(msg, PACKET), request: req, reply: s.seal(msg, REPLY, opened) };
    const opens: string[] = [];
    for (const [name, data] of Object.entries(sealedAs)) for (const [as, cls] of CLASSES) if (s.open(data, cls, new Opened())) opens.push(`${name} as ${as}`);
    expect(opens).toEqual(["packet as packet", "request as request", "reply as reply"]);
  });

  test("a stream request's content sealed as a packet by a key holder opens only as a packet, never as a request", () => {
    const s = sealer(ring(k1));
    const { req } = requestOf(s);
    const body = s.open(req, REQUEST, new Opened())!;
    const resealed = s.seal(body, PACKET);
    expect(s.open(resealed, REQUEST, new Opened())).toBeNull();
    expect(text(s.open(resealed, PACKET, new Opened()))).toBe("a gossip packet");
  });

  test("wrong key, another cluster name (label), tampering anywhere and truncation are rejected", () => {
    const sealed = sealer(ring(k1)).seal(msg, PACKET);
    expect(sealer(ring(k2)).open(sealed, PACKET, new Opened())).toBeNull();
    expect(sealer(ring(k1), "staging").open(sealed, PACKET, new Opened())).toBeNull();
    // Version byte, nonce, envelope, body, tag.
    for (const i of [0, 1, 12, 13, 20, sealed.length - 17, sealed.length - 1]) {
      const t = sealed.slice();
      t[i]! ^= 0x40;
      expect(sealer(ring(k1)).open(t, PACKET, new Opened())).toBeNull();
    }
    for (const n of [0, 1, 12, 28, sealed.length - 1]) expect(sealer(ring(k1)).open(sealed.subarray(0, n), PACKET, new Opened())).toBeNull();
  });

  test("a reply names the nonce of the request it answers, and no other", () => {
    const s = sealer(ring(k1));
    const first = requestOf(s);
    const second = requestOf(s);
    const reply = s.seal(msg, REPLY, first.opened);
    const o = new Opened();
    expect(text(s.open(reply, REPLY, o))).toBe("a gossip packet");
    expect(o.answers(s.nonceOf(first.req)!)).toBe(true);
    expect(o.answers(s.nonceOf(second.req)!)).toBe(false);
    // Sealing a reply without the request to name is a programming error.
    expect(() => s.seal(msg, REPLY, { legacy: false })).toThrow(/nonce/);
  });

  test("a secondary key opens; only the primary seals", () => {
    const old = sealer(ring(k1));
    const rotating = sealer(ring(k2, k1));
    expect(text(rotating.open(old.seal(msg, PACKET), PACKET, new Opened()))).toBe("a gossip packet");
    expect(old.open(rotating.seal(msg, PACKET), PACKET, new Opened())).toBeNull(); // sealed with k2, which old lacks
    expect(sealer(ring(k3, k2)).open(rotating.seal(msg, PACKET), PACKET, new Opened())).not.toBeNull();
  });

  test("the sender address must be an IP address with a port", () => {
    for (const bad of ["node-a:7946", "10.0.0.1", "localhost:1", "[fe80::1%eth0]:7946"]) expect(() => sealer(ring(k1), "prod", "off", bad)).toThrow(/sealer addr/);
    expect(() => sealer(ring(k1), "prod", "off", "[::1]:7946")).not.toThrow();
  });
});

describe("Sealer: legacy and insecure formats", () => {
  test("legacyWire off refuses the legacy format; accept and send open it (as legacy: no time, id or sender)", () => {
    const legacy = sealer(ring(k1), "prod", "send").seal(msg, PACKET);
    expect(legacy[0]).toBe(1);
    expect(sealer(ring(k1), "prod", "off").open(legacy, PACKET, new Opened())).toBeNull();
    for (const mode of ["accept", "send"] as const) {
      const o = new Opened();
      expect(text(sealer(ring(k1), "prod", mode).open(legacy, PACKET, o))).toBe("a gossip packet");
      expect({ legacy: o.legacy, sender: o.sender(), nonce: o.nonce }).toEqual({ legacy: true, sender: "", nonce: undefined });
    }
    // The legacy format still binds the cluster name.
    expect(sealer(ring(k1), "other", "accept").open(legacy, PACKET, new Opened())).toBeNull();
  });

  test("send seals packets and requests in the legacy format; every mode answers a request in its format", () => {
    expect(sealer(ring(k1), "prod", "send").seal(msg, PACKET)[0]).toBe(1);
    expect(sealer(ring(k1), "prod", "send").seal(msg, REQUEST)[0]).toBe(1);
    expect(sealer(ring(k1), "prod", "accept").seal(msg, PACKET)[0]).toBe(2);
    const fromOld = sealer(ring(k1), "prod", "send").seal(msg, REQUEST);
    const fromNew = sealer(ring(k1), "prod", "off").seal(msg, REQUEST);
    for (const mode of ["accept", "send"] as const) {
      const s = sealer(ring(k1), "prod", mode);
      const o = new Opened();
      s.open(fromOld, REQUEST, o);
      expect(s.seal(msg, REPLY, o)[0]).toBe(1);
      s.open(fromNew, REQUEST, o);
      expect(s.seal(msg, REPLY, o)[0]).toBe(2);
    }
    // We ask in the legacy format: a reply cannot name the request.
    const s = sealer(ring(k1), "prod", "send");
    expect(s.nonceOf(s.seal(msg, REQUEST))).toBeUndefined();
  });

  test("insecure mode binds the cluster name and refuses sealed packets of either format (and vice versa)", () => {
    const plain = sealer(null);
    const p = plain.seal(msg, PACKET);
    expect(text(plain.open(p, PACKET, new Opened()))).toBe("a gossip packet");
    expect(sealer(null, "other").open(p, PACKET, new Opened())).toBeNull();
    expect(plain.open(sealer(ring(k1)).seal(msg, PACKET), PACKET, new Opened())).toBeNull();
    expect(plain.open(sealer(ring(k1), "prod", "send").seal(msg, PACKET), PACKET, new Opened())).toBeNull();
    for (const mode of ["off", "accept", "send"] as const) expect(sealer(ring(k1), "prod", mode).open(p, PACKET, new Opened())).toBeNull();
  });
});
