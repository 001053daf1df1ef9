/**
 * scripts/ci-purge.sh, which strips CI's machine, against stand-in dpkg-query and apt-get:
 * it purges the setup list's installed packages, keeps an Essential one and one whose
 * purge would take an unlisted package with it, and touches nothing on --dry-run.
 */
import { afterAll, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const repo = resolve(import.meta.dir, "../..");
const bash = Bun.which("bash")!;
const tmp = mkdtempSync(join(tmpdir(), "wpk-purge-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Machine {
  /** Installed packages and what `apt-get -s purge` of each would remove besides itself. */
  installed: Record<string, string[]>;
  essential?: string[];
}

function runPurge(m: Machine, args: string[] = []): { code: number; out: string; err: string; purged: string[] } {
  const dir = mkdtempSync(join(tmp, "run-"));
  const bin = join(dir, "bin");
  mkdirSync(bin);
  for (const tool of ["bash", "sed", "cat", "dirname", "tr"]) symlinkSync(Bun.which(tool)!, join(bin, tool));
  const state = join(dir, "purged");
  writeFileSync(state, "");
  writeFileSync(join(dir, "machine.json"), JSON.stringify(m));
  const script = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!${bash}\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  const bun = process.execPath;
  // dpkg-query -W -f=FORMAT PKG: the status or the Essential field, from machine.json minus what was purged.
  script("dpkg-query", `exec ${bun} -e 'const m = require("${dir}/machine.json"); const gone = require("fs").readFileSync("${state}", "utf8").split("\\n"); const [fmt, p] = process.argv.slice(-2); const here = p in m.installed && !gone.includes(p); if (fmt.includes("Essential")) { process.stdout.write((m.essential ?? []).includes(p) ? "yes" : "no"); } else if (here) process.stdout.write("installed"); else process.exit(1);' -- "$@"`);
  // apt-get -s purge PKGS prints Purg lines; apt-get purge -y -qq PKGS records them as gone.
  script("apt-get", `exec ${bun} -e 'const m = require("${dir}/machine.json"); const a = process.argv.slice(1); const fs = require("fs"); const pk = a.filter((x) => !x.startsWith("-") && x !== "purge"); if (a.includes("-s")) { const all = new Set(pk.flatMap((p) => [p, ...(m.installed[p] ?? [])])); for (const p of all) console.log("Purg " + p + " [1.0]"); } else { fs.appendFileSync("${state}", pk.join("\\n") + "\\n"); fs.appendFileSync("${dir}/apt.log", a.join(" ") + "\\n"); }' -- "$@"`);
  script("id", "echo 0");
  const r = Bun.spawnSync([bash, join(repo, "scripts/ci-purge.sh"), ...args], { stdout: "pipe", stderr: "pipe", env: { PATH: bin } });
  const log = existsSync(join(dir, "apt.log")) ? readFileSync(join(dir, "apt.log"), "utf8").trim() : "";
  return { code: r.exitCode ?? -1, out: r.stdout.toString(), err: r.stderr.toString(), purged: log === "" ? [] : log.split("\n") };
}

test("purges the listed packages that are installed, keeping an Essential one and one that takes others with it", () => {
  const r = runPurge({
    installed: { "libnl-3-200": ["libnl-route-3-200"], "libnl-route-3-200": [], socat: [], "util-linux": [], procps: ["cmake", "dconf-service"], vim: [] },
    essential: ["util-linux"],
  });
  expect(r.err).toBe("");
  expect(r.code).toBe(0);
  expect(r.out).toContain("keeping util-linux (Essential)");
  expect(r.out).toContain("keeping procps (purging it would also remove: cmake dconf-service)");
  expect(r.purged).toEqual(["purge -y -qq libnl-3-200 libnl-route-3-200 socat"]);
  expect(r.out).toContain("ci-purge: done");
});

test("--dry-run names what it would purge and purges nothing", () => {
  const r = runPurge({ installed: { iperf3: [], nftables: [] } }, ["--dry-run"]);
  expect([r.code, r.purged]).toEqual([0, []]);
  expect(r.out).toContain("ci-purge: purging nftables iperf3");
});

test("nothing installed: nothing purged", () => {
  const r = runPurge({ installed: { vim: [] } });
  expect([r.code, r.purged, r.out.trim()]).toEqual([0, [], "ci-purge: nothing to purge"]);
});
