/**
 * SIGHUP's work (src/reload.ts): the key file and the log level are re-read; what reads
 * well is applied, what does not is logged and the value in use stays. Also the logger
 * whose level (with its children's) changes while it runs.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { keyFingerprint, loadKeyFile } from "../src/gossip/keyring.ts";
import type { Keyring } from "../src/gossip/types.ts";
import { createLogger, type LogLevel } from "../src/log.ts";
import { keyringInfo, parseLogLevelFile, readLogLevelFile, reload } from "../src/reload.ts";

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "weft-reload-"));
  dirs.push(d);
  return d;
};
const k = (b: number) => Buffer.alloc(32, b).toString("base64");

function harness(o: { keyText?: string; keyMode?: number; levelText?: string }) {
  const d = tmp();
  const keyFile = join(d, "key");
  const levelFile = join(d, "level");
  if (o.keyText !== undefined) writeFileSync(keyFile, o.keyText, { mode: o.keyMode ?? 0o600 });
  if (o.keyMode !== undefined) chmodSync(keyFile, o.keyMode);
  if (o.levelText !== undefined) writeFileSync(levelFile, o.levelText);
  const lines: string[] = [];
  const logger = createLogger({ format: "json", write: (l) => lines.push(l) });
  const applied: { keys?: Keyring; level?: LogLevel } = {};
  const ok = reload({ keyFile, logLevelFile: levelFile, logLevel: "warn", loadKeyring: (p) => loadKeyFile(p), setKeyring: (x) => void (applied.keys = x), setLevel: (l) => void (applied.level = l), logger });
  return { ok, applied, log: lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe("reload", () => {
  test("a good key file and level file: both applied and logged (count and fingerprint, never a key)", () => {
    const r = harness({ keyText: `${k(2)}\n${k(1)}\n`, levelText: "debug\n" });
    expect(r.ok).toBe(true);
    expect(r.applied.level).toBe("debug");
    expect(r.applied.keys!.keys.length).toBe(2);
    expect(Buffer.from(r.applied.keys!.primary).toString("base64")).toBe(k(2));
    const msg = r.log.find((l) => l.msg === "Reloaded the cluster key file")!;
    expect(msg).toMatchObject({ keys: 2, primary: keyFingerprint(Buffer.alloc(32, 2)) });
    expect(JSON.stringify(r.log)).not.toContain(k(2));
  });

  test("a key file others can read is refused: logged, the keys in use stay", () => {
    const r = harness({ keyText: `${k(2)}\n`, keyMode: 0o644, levelText: "info" });
    expect(r.ok).toBe(false);
    expect(r.applied.keys).toBeUndefined();
    expect(r.applied.level).toBe("info");
    const err = r.log.find((l) => l.level === "error")!;
    expect(err.msg).toBe("Cannot reload the cluster key file; keeping the keys in use");
    expect(String(err.error)).toContain("mode 0644 gives group and others access");
  });

  test("a key file that does not parse is refused the same way", () => {
    const r = harness({ keyText: "not a key\n", levelText: "info" });
    expect(r.ok).toBe(false);
    expect(r.applied.keys).toBeUndefined();
    expect(String(r.log.find((l) => l.level === "error")!.error)).toContain("line 1: not valid base64");
  });

  test("no log-level file: --log-level applies; a bad one: logged, the level in use stays", () => {
    expect(harness({ keyText: k(1) }).applied.level).toBe("warn");
    const bad = harness({ keyText: k(1), levelText: "loud\n" });
    expect(bad.ok).toBe(false);
    expect(bad.applied.level).toBeUndefined();
    expect(bad.applied.keys).toBeDefined();
    expect(bad.log.find((l) => l.level === "error")!.msg).toBe("Cannot reload the log level; keeping the one in use");
  });
});

describe("log-level file", () => {
  const cases: [string, string, LogLevel | RegExp][] = [
    ["one word", "debug", "debug"],
    ["comments and blank lines", "# set by ops\n\n  error  # quiet\n", "error"],
    ["unknown word", "verbose", /expected one of debug, info, warn, error, got "verbose"/],
    ["two words", "info\ndebug\n", /got "info debug"/],
    ["empty", "# nothing\n", /got ""/],
  ];
  for (const [name, text, want] of cases) {
    test(name, () => {
      if (typeof want === "string") expect(parseLogLevelFile(text, "/etc/weft/log-level")).toBe(want);
      else expect(() => parseLogLevelFile(text, "/etc/weft/log-level")).toThrow(want);
    });
  }
  test("a missing file reads as none", () => expect(readLogLevelFile(join(tmp(), "nope"))).toBeUndefined());
});

test("keyringInfo: count and the primary's fingerprint (16 hex digits of its SHA-256)", () => {
  const primary = Buffer.alloc(32, 5);
  expect(keyringInfo({ primary, keys: [primary, Buffer.alloc(32, 6)] })).toEqual({ count: 2, primary: new Bun.CryptoHasher("sha256").update(primary).digest("hex").slice(0, 16) });
});

test("setLevel changes the level of the logger and of every child made from it", () => {
  const lines: string[] = [];
  const log = createLogger({ level: "warn", format: "text", write: (l) => lines.push(l) });
  const child = log.child("gossip");
  child.info("hidden");
  log.setLevel("debug");
  child.debug("shown");
  log.child("lease").debug("shown too");
  expect(log.level()).toBe("debug");
  expect(lines.map((l) => l.replace(/^\S+ /, ""))).toEqual(["DEBUG [weft.gossip] shown", "DEBUG [weft.lease] shown too"]);
});
