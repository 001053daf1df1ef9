/**
 * `weft keygen --out FILE` in-process: the key file's mode from its first byte, no
 * overwrite without --force, symlinks and unsafe directories refused. The binary's exit
 * codes are checked in test/main.test.ts.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { keygenCommand } from "../../src/cli/keygen.ts";
import { ConfigError } from "../../src/config.ts";
import { loadKeyFile } from "../../src/gossip/keyring.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "weft-keygen-"));
  dirs.push(d);
  return d;
};
function capture() {
  const o = { out: "", err: "" };
  return { o, io: { out: (s: string) => void (o.out += s), err: (s: string) => void (o.err += s) } };
}

describe("weft keygen", () => {
  test("without --out the key goes to stdout and nothing else", async () => {
    const { o, io } = capture();
    expect(await keygenCommand([], io)).toBe(0);
    expect(o.err).toBe("");
    expect(Buffer.from(o.out.trim(), "base64").length).toBe(32);
  });

  test("--out creates the file with mode 0600 whatever the umask, in a new directory; the agent accepts it", async () => {
    const key = join(tmp(), "etc", "weft", "key");
    const old = process.umask(0);
    try {
      expect(await keygenCommand(["--out", key], capture().io)).toBe(0);
    } finally {
      process.umask(old);
    }
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(loadKeyFile(key).keys).toHaveLength(1);
  });

  test("an existing file, or a symlink planted at the path, is never written; --force replaces the file atomically", async () => {
    const d = tmp();
    const key = join(d, "key");
    writeFileSync(key, "old key\n", { mode: 0o600 });
    const { o, io } = capture();
    expect(await keygenCommand(["--out", key], io)).toBe(1);
    expect(o.err).toBe(`weft keygen: ${key} exists; not replacing a key (pass --force to replace it)\n`);
    expect(readFileSync(key, "utf8")).toBe("old key\n");
    const victim = join(tmp(), "victim");
    writeFileSync(victim, "precious\n");
    const link = join(d, "link");
    symlinkSync(victim, link);
    expect(await keygenCommand(["--out", link], capture().io)).toBe(1);
    expect(readFileSync(victim, "utf8")).toBe("precious\n");
    expect(await keygenCommand(["--out", key, "--force"], capture().io)).toBe(0);
    expect(readFileSync(key, "utf8")).not.toBe("old key\n");
    expect(statSync(key).mode & 0o777).toBe(0o600);
    // --force on the symlink replaces the link itself, not its target
    expect(await keygenCommand(["--out", link, "--force"], capture().io)).toBe(0);
    expect(lstatSync(link).isFile()).toBe(true);
    expect(readFileSync(victim, "utf8")).toBe("precious\n");
    expect(readdirSync(d).sort()).toEqual(["key", "link"]);
  });

  test("a directory others can write to without the sticky bit is refused", async () => {
    const d = join(tmp(), "keys");
    mkdirSync(d);
    chmodSync(d, 0o777);
    const { o, io } = capture();
    expect(await keygenCommand(["--out", join(d, "key")], io)).toBe(1);
    expect(o.err).toContain(`directory ${d} (mode 0777) is writable by group and others without the sticky bit`);
    expect(readdirSync(d)).toEqual([]);
  });

  test.each([[["--bogus"]], [["stray"]], [["--out"]], [["--force"]], [["--out", ""]]])("%j is a usage error", async (argv) => {
    await expect(keygenCommand(argv, capture().io)).rejects.toThrow(ConfigError);
  });
});
