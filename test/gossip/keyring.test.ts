import { describe, expect, test } from "bun:test";
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KeyFileError, keyFileProblem, loadKeyFile, parseKeyFile } from "../../src/gossip/keyring.ts";

const k1 = Buffer.alloc(32, 1).toString("base64");
const k2 = Buffer.alloc(32, 2).toString("base64");

describe("key file owner and mode", () => {
  const st = (mode: number, uid = 0, file = true) => ({ mode: (file ? 0o100000 : 0o010000) | mode, uid, isFile: () => file });
  test.each([
    ["0600 owned by root", st(0o600), 0],
    ["0400 owned by root", st(0o400), 0],
    ["0600 owned by the agent's own user", st(0o600, 1234), 1234],
    ["0600 owned by root, agent running as another user", st(0o600, 0), 1234],
  ] as const)("accepts %s", (_what, stats, uid) => {
    expect(keyFileProblem(stats, "/etc/weft/key", uid)).toBeUndefined();
  });
  test.each([
    ["0644", st(0o644), 0, "mode 0644 gives group and others access to the cluster key (anyone who reads it can join the cluster and forge leases); run: chmod 600 /etc/weft/key"],
    ["0640 (group-readable)", st(0o640), 0, "mode 0640 gives group access to the cluster key"],
    ["0604 (others-readable)", st(0o604), 0, "mode 0604 gives others access"],
    ["0620 (group-writable)", st(0o620), 0, "mode 0620 gives group access"],
    ["owned by another user", st(0o600, 65534), 0, "owned by uid 65534, not by root: that user can replace the key; run: chown root /etc/weft/key"],
    ["owned by another user, agent not root", st(0o600, 65534), 1234, "owned by uid 65534, not by root or the agent's user (uid 1234): that user can replace the key; run: chown 1234 /etc/weft/key"],
    ["a FIFO", st(0o600, 0, false), 0, "not a regular file"],
  ] as const)("refuses %s", (_what, stats, uid, why) => {
    expect(keyFileProblem(stats, "/etc/weft/key", uid)).toStartWith(why);
  });

  test("loadKeyFile checks the real file: 0644 and a group-owned 0640 are refused naming file, mode and the fix; 0600 loads", () => {
    const dir = mkdtempSync(join(tmpdir(), "weft-key-"));
    try {
      const key = join(dir, "key");
      writeFileSync(key, `${k1}\n`, { mode: 0o600 });
      chmodSync(key, 0o644);
      expect(() => loadKeyFile(key)).toThrow(KeyFileError);
      expect(() => loadKeyFile(key)).toThrow(`read cluster key ${key}: mode 0644 gives group and others access to the cluster key`);
      expect(() => loadKeyFile(key)).toThrow(`run: chmod 600 ${key}`);
      if (process.geteuid?.() === 0) chownSync(key, 0, 65534); // a group the agent's user is not in
      chmodSync(key, 0o640);
      expect(() => loadKeyFile(key)).toThrow("mode 0640 gives group access");
      chmodSync(key, 0o600);
      expect(loadKeyFile(key).primary[0]).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test.skipIf(process.geteuid?.() !== 0)("loadKeyFile refuses a key file owned by another user, and a FIFO without hanging (root)", () => {
    const dir = mkdtempSync(join(tmpdir(), "weft-key-"));
    try {
      const key = join(dir, "key");
      writeFileSync(key, `${k1}\n`, { mode: 0o600 });
      chownSync(key, 65534, 65534);
      expect(() => loadKeyFile(key)).toThrow(`read cluster key ${key}: owned by uid 65534, not by root`);
      const fifo = join(dir, "fifo");
      expect(Bun.spawnSync(["mkfifo", "-m", "600", fifo]).exitCode).toBe(0);
      expect(() => loadKeyFile(fifo)).toThrow(`read cluster key ${fifo}: not a regular file`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

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
      expect(() => parseKeyFile(text, "/etc/weft/key")).toThrow(KeyFileError);
      expect(() => parseKeyFile(text, "/etc/weft/key")).toThrow(re);
    });
  }

  test("loadKeyFile reads a file and names it in errors", () => {
    const dir = mkdtempSync(join(tmpdir(), "weft-key-"));
    try {
      const ok = join(dir, "key");
      writeFileSync(ok, `${k1}\n`, { mode: 0o600 });
      expect(loadKeyFile(ok).primary[0]).toBe(1);
      const broken = join(dir, "broken");
      writeFileSync(broken, "xx\n", { mode: 0o600 });
      expect(() => loadKeyFile(broken)).toThrow(new RegExp(`${broken} line 1`));
      expect(() => loadKeyFile(join(dir, "missing"))).toThrow(KeyFileError);
      expect(() => loadKeyFile(join(dir, "missing"))).toThrow(/missing/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
