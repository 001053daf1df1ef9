import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../../src/config.ts";
import { loadKeyFile, parseKeyFile } from "../../src/gossip/keyring.ts";
import { Sealer } from "../../src/gossip/security.ts";

const k1 = Buffer.alloc(32, 1).toString("base64");
const k2 = Buffer.alloc(32, 2).toString("base64");
const k3 = Buffer.alloc(32, 3).toString("base64");

describe("parseKeyFile", () => {
  const good: [string, string, number[]][] = [
    ["one key", `${k1}\n`, [1]],
    ["two keys, first is primary", `${k2}\n${k1}\n`, [2, 1]],
    ["comments and blank lines", `# cluster key\n\n  ${k1}  # primary\n# old:\n${k2}\n`, [1, 2]],
    ["CRLF line ends", `${k1}\r\n${k2}\r\n`, [1, 2]],
    ["duplicate keys collapse", `${k1}\n${k1}\n`, [1]],
  ];
  for (const [name, text, firsts] of good) {
    test(name, () => {
      const kr = parseKeyFile(text, "/etc/weft/key");
      expect(kr.keys.map((k) => k[0])).toEqual(firsts);
      expect(kr.primary[0]).toBe(firsts[0]!);
      expect(kr.keys.every((k) => k.length === 32)).toBe(true);
    });
  }

  const bad: [string, string, RegExp][] = [
    ["empty file", "", /\/etc\/weft\/key: no key found/],
    ["only comments", "# nothing here\n", /no key found/],
    ["bad base64", `${k1}\nnot*base64!\n`, /\/etc\/weft\/key line 2: not valid base64/],
    ["base64 with wrong padding length", `${k1.slice(0, -1)}\n`, /line 1: not valid base64/],
    ["16-byte key", `${Buffer.alloc(16, 1).toString("base64")}\n`, /line 1: key is 16 bytes, expected 32/],
    ["64-byte key", `\n\n${Buffer.alloc(64, 1).toString("base64")}`, /line 3: key is 64 bytes, expected 32/],
  ];
  for (const [name, text, re] of bad) {
    test(`rejects ${name}`, () => {
      expect(() => parseKeyFile(text, "/etc/weft/key")).toThrow(ConfigError);
      expect(() => parseKeyFile(text, "/etc/weft/key")).toThrow(re);
    });
  }

  test("loadKeyFile reads a file and names it in errors", () => {
    const dir = mkdtempSync(join(tmpdir(), "weft-key-"));
    try {
      const ok = join(dir, "key");
      writeFileSync(ok, `${k1}\n`);
      expect(loadKeyFile(ok).primary[0]).toBe(1);
      const broken = join(dir, "broken");
      writeFileSync(broken, "xx\n");
      expect(() => loadKeyFile(broken)).toThrow(new RegExp(`${broken} line 1`));
      expect(() => loadKeyFile(join(dir, "missing"))).toThrow(ConfigError);
      expect(() => loadKeyFile(join(dir, "missing"))).toThrow(/missing/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("Sealer (AES-256-GCM, cluster name as associated data)", () => {
  const ring = (...b64: string[]) => parseKeyFile(b64.join("\n"));
  const msg = new TextEncoder().encode("a gossip packet");

  test("round trip, fresh nonce each time", () => {
    const s = new Sealer(ring(k1), "prod");
    const a = s.seal(msg);
    const b = s.seal(msg);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
    expect(a.length).toBe(msg.length + s.overhead());
    expect(new TextDecoder().decode(s.open(a)!)).toBe("a gossip packet");
  });

  test("wrong key, tampered, truncated and other cluster name are rejected", () => {
    const sealed = new Sealer(ring(k1), "prod").seal(msg);
    expect(new Sealer(ring(k2), "prod").open(sealed)).toBeNull();
    expect(new Sealer(ring(k1), "staging").open(sealed)).toBeNull();
    for (const i of [0, 5, 20, sealed.length - 1]) {
      const t = sealed.slice();
      t[i]! ^= 0x40;
      expect(new Sealer(ring(k1), "prod").open(t)).toBeNull();
    }
    for (const n of [0, 1, 12, 28, sealed.length - 1]) expect(new Sealer(ring(k1), "prod").open(sealed.subarray(0, n))).toBeNull();
  });

  test("a secondary key opens; only the primary seals", () => {
    const old = new Sealer(ring(k1), "prod");
    const rotating = new Sealer(ring(k2, k1), "prod");
    expect(new TextDecoder().decode(rotating.open(old.seal(msg))!)).toBe("a gossip packet");
    expect(old.open(rotating.seal(msg))).toBeNull(); // sealed with k2, which old lacks
    expect(new Sealer(ring(k3, k2), "prod").open(rotating.seal(msg))).not.toBeNull();
  });

  test("insecure mode binds the cluster name and refuses sealed packets", () => {
    const plain = new Sealer(null, "prod");
    const p = plain.seal(msg);
    expect(new TextDecoder().decode(plain.open(p)!)).toBe("a gossip packet");
    expect(new Sealer(null, "other").open(p)).toBeNull();
    expect(plain.open(new Sealer(ring(k1), "prod").seal(msg))).toBeNull();
    expect(new Sealer(ring(k1), "prod").open(p)).toBeNull();
  });
});
