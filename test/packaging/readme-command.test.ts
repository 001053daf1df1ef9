/**
 * scripts/readme-command.sh, which hands CI the README's two commands: it finds the block
 * after each marker, refuses a missing or malformed one, and the commands it finds are
 * the ones .ci/run runs and name only npm scripts that exist.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import pkg from "../../package.json";

const repo = resolve(import.meta.dir, "../..");
const script = join(repo, "scripts/readme-command.sh");
const tmp = mkdtempSync(join(tmpdir(), "wpk-readme-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const fence = "```";

function extract(name: string, readme?: string): { code: number; out: string; err: string } {
  const args = [script, name];
  if (readme !== undefined) {
    const f = join(tmp, `README-${Math.random().toString(36).slice(2)}.md`);
    writeFileSync(f, readme);
    args.push(f);
  }
  const r = Bun.spawnSync(["bash", ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode ?? -1, out: r.stdout.toString(), err: r.stderr.toString() };
}

test.each([
  ["demo", /^npm ci && npm run setup:demo && npm run build && dist\/weft demo\b/],
  ["test", /^npm ci && npm run setup:test && npm test\b/],
])("the README's %s command installs what it needs, then runs", (name, shape) => {
  const r = extract(name);
  expect(r.code).toBe(0);
  expect(r.out.trim().split("\n").length).toBe(1);
  expect(r.out).toMatch(shape);
});

test("every `npm run X` in the README's commands is a script in package.json", () => {
  for (const name of ["demo", "test"]) {
    for (const m of extract(name).out.matchAll(/npm run ([\w:-]+)/g)) expect([m[1], m[1]! in pkg.scripts]).toEqual([m[1], true]);
  }
});

test(".ci/run runs both README commands through this script", () => {
  const ci = readFileSync(join(repo, ".ci/run"), "utf8");
  expect(ci).toContain('cmd=$(bash scripts/readme-command.sh "$1")');
  expect(ci).toMatch(/^if \$root; then run_readme demo; fi$/m);
  expect(ci).toMatch(/^run_readme test$/m);
});

test("a block of several lines comes out whole; the next block is not part of it", () => {
  const md = `# x\n<!-- readme-command: a -->\n${fence}sh\nline one\nline two\n${fence}\n\n${fence}\nother\n${fence}\n`;
  expect(extract("a", md)).toEqual({ code: 0, out: "line one\nline two\n", err: "" });
});

test.each([
  ["no marker", `${fence}sh\nnpm test\n${fence}\n`],
  ["text between marker and fence", `<!-- readme-command: a -->\nRun this:\n${fence}sh\nnpm test\n${fence}\n`],
  ["a fence never closed", `<!-- readme-command: a -->\n${fence}sh\nnpm test\n`],
  ["an empty block", `<!-- readme-command: a -->\n${fence}sh\n\n${fence}\n`],
  ["another name's marker", `<!-- readme-command: b -->\n${fence}sh\nnpm test\n${fence}\n`],
])("%s: exit 1 naming the marker, nothing on stdout", (_why, md) => {
  const r = extract("a", md);
  expect([r.code, r.out]).toEqual([1, ""]);
  expect(r.err).toContain("<!-- readme-command: a -->");
});
