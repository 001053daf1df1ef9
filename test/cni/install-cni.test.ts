/**
 * `weft install-cni` on temp directories (no root): what it writes, that a second run
 * changes nothing, portmap chaining, --uninstall, and flag errors (exit 2). Runs the
 * compiled binary, since only that can install itself.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { conflist } from "../../src/cli/install-cni.ts";

const BIN = resolve(import.meta.dir, "../../dist/weft");
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "weft-install-cni-"));
  dirs.push(d);
  return d;
};
const run = (...args: string[]) => {
  const r = Bun.spawnSync([BIN, "install-cni", ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
};

describe("conflist", () => {
  test("weft alone; portmap chained with its capability; non-default paths written, defaults left out", () => {
    expect(conflist({ portmap: false })).toEqual({ cniVersion: "1.0.0", cniVersions: ["1.0.0", "1.1.0"], name: "weft", plugins: [{ type: "weft" }] });
    expect(conflist({ portmap: true, subnetFile: "/run/weft/subnet.env", dataDir: "/var/lib/weft/cni" }).plugins).toEqual([
      { type: "weft", subnetFile: "/run/weft/subnet.env", dataDir: "/var/lib/weft/cni" },
      { type: "portmap", capabilities: { portMappings: true } },
    ]);
  });
});

describe.skipIf(!existsSync(BIN))("weft install-cni (dist/weft)", () => {
  test("installs the running binary and the conflist; a second run changes nothing; --uninstall removes both", () => {
    const d = tmp();
    const bin = join(d, "bin");
    const conf = join(d, "net.d");
    const first = run("--cni-bin-dir", bin, "--cni-conf-dir", conf);
    expect(first.code).toBe(0);
    expect(first.out).toContain(`installed ${bin}/weft (`);
    expect(first.out).toContain(`wrote ${conf}/10-weft.conflist (weft)`);
    expect(JSON.parse(readFileSync(join(conf, "10-weft.conflist"), "utf8"))).toEqual(conflist({ portmap: false }));
    const installed = statSync(join(bin, "weft"));
    expect(installed.mode & 0o777).toBe(0o755);
    expect(installed.size).toBe(statSync(BIN).size);
    // The installed file is a working plugin.
    const v = Bun.spawnSync([join(bin, "weft")], { env: { CNI_COMMAND: "VERSION" }, stdin: Buffer.from('{"cniVersion":"1.0.0"}') });
    expect(JSON.parse(v.stdout.toString()).supportedVersions).toContain("1.1.0");

    const second = run("--cni-bin-dir", bin, "--cni-conf-dir", conf);
    expect(second.out).toBe(`${bin}/weft is up to date\n${conf}/10-weft.conflist is up to date\n`);
    expect(statSync(join(bin, "weft")).mtimeMs).toBe(installed.mtimeMs);
    expect(readdirSync(bin)).toEqual(["weft"]); // no temp files left
    expect(readdirSync(conf)).toEqual(["10-weft.conflist"]);

    const un = run("--cni-bin-dir", bin, "--cni-conf-dir", conf, "--uninstall");
    expect([un.code, un.out]).toEqual([0, `removed ${conf}/10-weft.conflist\nremoved ${bin}/weft\n`]);
    expect(run("--cni-bin-dir", bin, "--cni-conf-dir", conf, "--uninstall").out).toMatch(/^nothing to remove/);
  });

  test("chains portmap when it is in the bin dir; names configs that sort before ours", () => {
    const d = tmp();
    const bin = join(d, "bin");
    const conf = join(d, "net.d");
    mkdirSync(bin);
    mkdirSync(conf);
    writeFileSync(join(bin, "portmap"), "");
    writeFileSync(join(conf, "05-other.conflist"), "{}");
    const r = run("--cni-bin-dir", bin, "--cni-conf-dir", conf, "--subnet-file", "/run/weft/subnet.env");
    expect(r.out).toContain("(weft + portmap)");
    expect(r.out).toContain("these sort before 10-weft.conflist: 05-other.conflist");
    expect(JSON.parse(readFileSync(join(conf, "10-weft.conflist"), "utf8"))).toEqual(conflist({ portmap: true, subnetFile: "/run/weft/subnet.env" }));
  });

  test("an older installed binary is replaced", () => {
    const d = tmp();
    const bin = join(d, "bin");
    mkdirSync(bin);
    writeFileSync(join(bin, "weft"), "old");
    expect(run("--cni-bin-dir", bin, "--cni-conf-dir", join(d, "net.d")).out).toContain(`installed ${bin}/weft`);
    expect(statSync(join(bin, "weft")).size).toBe(statSync(BIN).size);
  });

  test.each([[["--bogus"]], [["--cni-bin-dir", "relative/bin"]], [["--data-dir", "x"]], [["stray"]]])("%j exits 2 and names the problem", (args) => {
    const r = run(...args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^weft install-cni: /);
  });
});
