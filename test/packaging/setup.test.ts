/**
 * scripts/setup.sh, the one list of Debian packages, run against stand-in dpkg-query,
 * apt-get and id on a PATH of their own: it installs only what is missing, touches
 * nothing when all is there, and fails saying what is missing when it cannot install.
 * Also: the .deb's Depends + Recommends are exactly the "run" group.
 */
import { afterAll, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DEPENDS, RECOMMENDS } from "../../scripts/package-deb.ts";

const repo = resolve(import.meta.dir, "../..");
const setup = join(repo, "scripts/setup.sh");
const bash = Bun.which("bash")!;
const tmp = mkdtempSync(join(tmpdir(), "wpk-setup-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const list = (group: string): string[] => {
  const r = Bun.spawnSync([bash, setup, "--list", group], { stdout: "pipe" });
  expect(r.exitCode).toBe(0);
  return r.stdout.toString().trim().split("\n");
};

interface Fake {
  installed: string[];
  uid?: number;
  apt?: "ok" | "fails" | "absent";
}

/** Runs setup.sh GROUP with only stand-ins and a few real tools on PATH. */
function runSetup(group: string, f: Fake): { code: number; out: string; err: string; apt: string[] } {
  const dir = mkdtempSync(join(tmp, "run-"));
  const bin = join(dir, "bin");
  const aptLog = join(dir, "apt.log");
  Bun.spawnSync(["mkdir", "-p", bin]);
  for (const tool of ["wc", "mktemp", "rm", "cat"]) symlinkSync(Bun.which(tool)!, join(bin, tool));
  const script = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!${bash}\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  // dpkg-query -W -f='${db:Status-Status}' PKG: "installed" for the listed ones, else not found.
  script("dpkg-query", `for p in ${f.installed.join(" ")}; do [ "$p" = "\${@: -1}" ] && { printf installed; exit 0; }; done; echo "dpkg-query: no packages found matching \${@: -1}" >&2; exit 1`);
  script("id", `echo ${f.uid ?? 0}`);
  if ((f.apt ?? "ok") !== "absent") script("apt-get", `echo "$*" >> ${aptLog}; ${f.apt === "fails" ? 'echo "E: Unable to locate package" >&2; exit 100' : "exit 0"}`);
  writeFileSync(aptLog, "");
  const r = Bun.spawnSync([bash, setup, group], { stdout: "pipe", stderr: "pipe", env: { PATH: bin } });
  const apt = readFileSync(aptLog, "utf8").trim();
  return { code: r.exitCode ?? -1, out: r.stdout.toString(), err: r.stderr.toString(), apt: apt === "" ? [] : apt.split("\n") };
}

test("groups nest: run ⊂ demo ⊂ test ⊂ ci, no package twice", () => {
  const [run, demo, t, ci] = ["run", "demo", "test", "ci"].map(list) as [string[], string[], string[], string[]];
  expect(demo.slice(0, run.length)).toEqual(run);
  expect(t.slice(0, demo.length)).toEqual(demo);
  expect(ci.slice(0, t.length)).toEqual(t);
  expect(new Set(ci).size).toBe(ci.length);
});

test("the .deb's Depends and Recommends are the run group", () => {
  expect([...DEPENDS, ...RECOMMENDS].sort()).toEqual(list("run").sort());
});

test("the README names every package setup installs for the demo and the tests", () => {
  const section = readFileSync(join(repo, "README.md"), "utf8").split("\n## ").find((s) => s.startsWith("The two commands"))!;
  expect(list("test").filter((p) => !section.includes(`\`${p}\``))).toEqual([]);
});

test("all present: nothing installed, apt untouched, root not needed", () => {
  const r = runSetup("demo", { installed: list("demo"), uid: 1000 });
  expect(r).toEqual({ code: 0, out: `setup (demo): all ${list("demo").length} packages present\n`, err: "", apt: [] });
});

test("some missing, as root: one apt-get install of exactly the missing ones, no recommends", () => {
  const r = runSetup("test", { installed: list("test").filter((p) => p !== "socat" && p !== "libnl-3-200") });
  expect(r.apt).toEqual(["update -qq", "install -y -qq --no-install-recommends libnl-3-200 socat"]);
  expect([r.code, r.err]).toEqual([0, ""]);
  expect(r.out).toBe("setup (test): installing libnl-3-200 socat\nsetup (test): installed\n");
});

test("missing and not root: exit 1 naming the packages and the way out; apt untouched", () => {
  const r = runSetup("run", { installed: ["libnl-3-200"], uid: 1000 });
  expect(r.code).toBe(1);
  expect(r.apt).toEqual([]);
  expect(r.err).toContain("missing packages: libnl-route-3-200 libnl-genl-3-200 libnftables1");
  expect(r.err).toContain("needs root");
});

test("missing and no apt-get: exit 1 naming the packages", () => {
  const r = runSetup("run", { installed: [], apt: "absent" });
  expect(r.code).toBe(1);
  expect(r.err).toContain("apt-get not found");
  expect(r.err).toContain("libnl-3-200 libnl-route-3-200 libnl-genl-3-200 libnftables1");
});

test("apt-get failing: exit 1 with apt's own output and the packages", () => {
  const r = runSetup("run", { installed: [], apt: "fails" });
  expect(r.code).toBe(1);
  expect(r.err).toContain("E: Unable to locate package");
  expect(r.err).toContain("apt-get failed (output above) while installing: libnl-3-200");
});

test.each([[[]], [["bogus"]], [["run", "demo"]], [["--list"]]])("usage error for %j exits 2", (args) => {
  const r = Bun.spawnSync([bash, setup, ...args], { stdout: "pipe", stderr: "pipe" });
  expect(r.exitCode).toBe(2);
  expect(r.stderr.toString()).toContain("usage: scripts/setup.sh");
});
