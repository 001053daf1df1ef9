/**
 * build.ts: which executables each --target builds, and that a bad target is refused
 * naming the choices (the compile itself is proven by every test that runs dist/weft).
 */
import { expect, test } from "bun:test";
import { resolve } from "node:path";
import { gitCommit, plan } from "../../build.ts";

test.each([
  [undefined, [["dist/weft", undefined]]],
  ["linux-x64", [["dist/weft-linux-x64", "bun-linux-x64-baseline"]]],
  ["linux-arm64", [["dist/weft-linux-arm64", "bun-linux-arm64"]]],
  ["all", [["dist/weft-linux-x64", "bun-linux-x64-baseline"], ["dist/weft-linux-arm64", "bun-linux-arm64"]]],
] as const)("--target %p builds %j", (target, expected) => {
  expect(plan(target)).toEqual(expected.map((e) => [...e]));
});

test.each(["linux-riscv64", "x64", "", "ALL"])("--target %p is refused naming the choices", (target) => {
  expect(() => plan(target)).toThrow(/--target: expected linux-x64, linux-arm64, all/);
});

test("an unknown --target exits 2 with the message and builds nothing", () => {
  const r = Bun.spawnSync([process.execPath, "run", "build.ts", "--target", "sparc"], { cwd: resolve(import.meta.dir, "../.."), stdout: "pipe", stderr: "pipe" });
  expect(r.stderr.toString()).toContain('--target: expected linux-x64, linux-arm64, all, got "sparc"');
  expect(r.exitCode).toBe(2);
});

test("the commit is unknown, not a crash, where git is not installed", () => {
  expect(gitCommit("/nonexistent/git")).toBe("unknown");
});

test.skipIf(!Bun.which("git"))("the commit is HEAD's in a checkout, unknown outside one", () => {
  const head = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: resolve(import.meta.dir, "../.."), stdout: "pipe", stderr: "ignore" });
  expect(gitCommit()).toStartWith(head.exitCode === 0 ? head.stdout.toString().trim() : "unknown");
});
