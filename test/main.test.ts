/**
 * The compiled binary as an operator meets it: runs from an empty directory (no Bun, no
 * node_modules), and config errors exit 2 naming the field. Needs dist/weft (npm test builds it).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const bin = resolve(import.meta.dir, "../dist/weft");
const dir = mkdtempSync(join(tmpdir(), "weft-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (args: string[], cwd = dir) => {
  const r = Bun.spawnSync([join(dir, "weft"), ...args], { cwd, env: { PATH: "/usr/bin:/bin" } });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
};

describe.skipIf(!existsSync(bin))("dist/weft", () => {
  copyFileSync(bin, join(dir, "weft"));
  test("version runs from an empty directory", () => {
    const r = run(["version"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^weft \d+\.\d+\.\d+\nbun 1\.\d+\.\d+\ncommit ([0-9a-f]{7,}(-dirty)?|unknown)\n$/);
  });
  test("version takes no arguments: anything else exits 2 and prints no version", () => {
    for (const bad of [["--bogus"], ["stray"], ["--json"]]) {
      const r = run(["version", ...bad]);
      expect({ bad, code: r.code, out: r.out }).toEqual({ bad, code: 2, out: "" });
      expect(r.err).toStartWith("weft version: ");
    }
  });
  test("forget: NODE is required, one only; bad flags exit 2; no agent answering exits 1", () => {
    for (const bad of [[], ["a", "b"], ["n2", "--bogus"], ["n2", "--api", "ftp://x"]]) {
      const r = run(["forget", ...bad]);
      expect({ bad, code: r.code, out: r.out }).toEqual({ bad, code: 2, out: "" });
    }
    const r = run(["forget", "n2", "--api", "http://127.0.0.1:9"]);
    expect(r.code).toBe(1);
    expect(r.err).toContain("no weft agent answering at http://127.0.0.1:9");
  });
  test("keygen prints 32 random bytes in base64", () => {
    const a = run(["keygen"]).out.trim();
    const b = run(["keygen"]).out.trim();
    expect(Buffer.from(a, "base64").length).toBe(32);
    expect(a).not.toBe(b);
  });
  test("keygen --out writes a 0600 key file and never overwrites one; unknown arguments exit 2", () => {
    const key = join(dir, "cluster.key");
    const r = run(["keygen", "--out", key]);
    expect(r).toMatchObject({ code: 0, out: "" });
    expect(r.err).toContain(`wrote a new cluster key to ${key} (mode 0600)`);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    const first = readFileSync(key, "utf8");
    expect(Buffer.from(first.trim(), "base64").length).toBe(32);
    const again = run(["keygen", "--out", key]);
    expect(again.code).toBe(1);
    expect(again.err).toContain(`${key} exists; not replacing a key (pass --force to replace it)`);
    expect(readFileSync(key, "utf8")).toBe(first);
    expect(run(["keygen", "--out", key, "--force"]).code).toBe(0);
    expect(readFileSync(key, "utf8")).not.toBe(first);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    for (const bad of [["--bogus"], ["stray"], ["--out"], ["--force"], ["--out", ""]]) {
      const b = run(["keygen", ...bad]);
      expect({ bad, code: b.code, out: b.out }).toEqual({ bad, code: 2, out: "" });
      expect(b.err).toContain("usage: weft keygen [--out FILE [--force]]");
    }
  });
  test("check-config with SubnetLen 40 exits 2 naming SubnetLen", () => {
    writeFileSync(join(dir, "bad.json"), JSON.stringify({ Network: "10.244.0.0/16", SubnetLen: 40 }));
    const r = run(["check-config", "--net-conf", "bad.json"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("SubnetLen");
  });
  test("check-config prints the effective config", () => {
    writeFileSync(join(dir, "good.json"), JSON.stringify({ Network: "10.244.0.0/16", Backend: { Type: "udp" } }));
    const r = run(["check-config", "--net-conf", "good.json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ subnetLen: 24, subnetMin: "10.244.1.0", backend: { type: "udp", port: 8285 } });
  });
  test("check-config names a bad wireguard key with exit 2 and never prints a pre-shared key", () => {
    writeFileSync(join(dir, "wg-bad.json"), JSON.stringify({ Network: "10.244.0.0/16", Backend: { Type: "wireguard", ListenPort: 99999 } }));
    const bad = run(["check-config", "--net-conf", "wg-bad.json"]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("Backend.ListenPort");
    const psk = Buffer.alloc(32, 9).toString("base64");
    writeFileSync(join(dir, "wg.json"), JSON.stringify({ Network: "10.244.0.0/16", Backend: { Type: "wireguard", PSK: psk } }));
    const r = run(["check-config", "--net-conf", "wg.json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ backend: { type: "wireguard", listenPort: 51820, psk: "(set, not shown)" } });
    expect(r.out + r.err).not.toContain(psk);
  });
  test("unknown command and unknown flag exit 2", () => {
    expect(run(["frobnicate"]).code).toBe(2);
    const r = run(["check-config", "--bogus"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("bogus");
  });
  test("missing net-conf file exits 2 naming the path", () => {
    const r = run(["check-config", "--net-conf", "nope.json"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("nope.json");
  });
});
