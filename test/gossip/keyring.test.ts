import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../../src/config.ts";
import { loadKeyFile, parseKeyFile } from "../../src/gossip/keyring.ts";

const k1 = Buffer.alloc(32, 1).toString("base64");
const k2 = Buffer.alloc(32, 2).toString("base64");

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
