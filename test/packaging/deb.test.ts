/**
 * The Debian package (scripts/package-deb.ts): its control data and man page as pure
 * functions; a package built from dist/weft read back with dpkg-deb (files, modes,
 * conffiles, md5sums, the unit's ExecStart); and, as root, the maintainer scripts run
 * in a private mount namespace with systemd "running" and systemctl recorded: they
 * reload systemd, stop on removal, purge the state, and never enable or start anything.
 * lintian and a real install/remove/purge are scripts/check-deb.sh's job (CI).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import pkg from "../../package.json";
import { buildDeb, changelogHead, CONFFILES, controlFile, manPage, minGlibc, readmeTable, type DebArch } from "../../scripts/package-deb.ts";

const repo = resolve(import.meta.dir, "../..");
const readme = readFileSync(join(repo, "README.md"), "utf8");
const tmp = mkdtempSync(join(tmpdir(), "wpk-deb-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const run = (cmd: string[], opts: { env?: Record<string, string>; stdin?: string } = {}) => {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...opts.env }, stdin: opts.stdin === undefined ? "ignore" : Buffer.from(opts.stdin) });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
};

describe("package data (pure)", () => {
  test("the changelog's newest entry is package.json's version, with a maintainer and a date", () => {
    const head = changelogHead(readFileSync(join(repo, "packaging/deb/changelog"), "utf8"));
    expect(head.version).toBe(pkg.version);
    expect(head.maintainer).toMatch(/^.+ <[^@\s]+@[^>\s]+>$/);
    expect(Number.isNaN(new Date(head.date).getTime())).toBe(false);
  });

  test("control: run-time libraries in Depends, optional ones in Recommends, no line over 80 columns", () => {
    const c = controlFile({ version: "1.2.3", arch: "arm64", maintainer: "M <m@example.org>", installedSizeKb: 42, glibc: "2.17" });
    const field = (k: string) => new RegExp(`^${k}: (.*)$`, "m").exec(c)?.[1];
    expect([field("Package"), field("Version"), field("Architecture"), field("Installed-Size")]).toEqual(["weft", "1.2.3", "arm64", "42"]);
    expect(field("Depends")).toBe("libc6 (>= 2.17), libnl-3-200, libnl-route-3-200");
    expect(field("Recommends")).toBe("libnftables1, libnl-genl-3-200");
    expect(field("Suggests")).toBe("wireguard-go");
    expect(c.split("\n").filter((l) => l.length > 80)).toEqual([]);
    expect(c.endsWith("\n")).toBe(true);
  });

  test.each([
    ["GLIBC_2.2.5\0GLIBC_2.17\0GLIBC_2.14\0", "2.17"],
    ["GLIBC_2.9\0GLIBC_2.34\0", "2.34"],
    ["xGLIBC_2.3\0", "2.3"],
  ])("minGlibc(%p) = %p", (bytes, want) => {
    expect(minGlibc(new TextEncoder().encode(bytes))).toBe(want);
  });

  test("minGlibc refuses a file with no glibc symbol version", () => {
    expect(() => minGlibc(new Uint8Array(64))).toThrow(/no GLIBC_2.N/);
  });

  test("the man page lists every command and every agent flag of the README", () => {
    const usage = "usage: weft <command> [flags]\n\ncommands:\n  agent         run the node agent\n  check-config  validate a net-conf.json\n";
    const flags = readmeTable(readme, "### weft agent flags");
    expect(flags.length).toBeGreaterThanOrEqual(10);
    const man = manPage({ version: "9.9.9", date: "Fri, 04 Dec 2026 12:00:00 +0000", usage, readme });
    expect(man).toStartWith('.TH WEFT 1 2026-12-04 "weft 9.9.9"');
    expect(man).toContain(".B agent\nrun the node agent");
    expect(man).toContain(".B check\\-config\nvalidate a net\\-conf.json");
    for (const [flag] of flags) {
      const first = /`(--[a-z-]+)/.exec(flag!)![1]!;
      expect([first, man.includes(`\\fB${first.replace(/-/g, "\\-")}`)]).toEqual([first, true]);
    }
    // No line may start with a quote or dot that roff would read as a request.
    expect(man.split("\n").filter((l) => /^['.]/.test(l) && !/^\.(TH|SH|TP|B|I|BR|RI)( |$)/.test(l))).toEqual([]);
  });
});

const bin = join(repo, "dist/weft");
const hostArch: DebArch | undefined = process.arch === "x64" ? "amd64" : process.arch === "arm64" ? "arm64" : undefined;
const noBuild = !existsSync(bin) ? "dist/weft is not built (npm test builds it)" : !Bun.which("dpkg-deb") ? "dpkg-deb is not installed" : !hostArch ? `no Debian architecture for ${process.arch}` : undefined;

describe.skipIf(!!noBuild)("a package built from dist/weft", () => {
  const deb = () => (existsSync(join(tmp, "out")) ? join(tmp, "out", `weft_${pkg.version}_${hostArch}.deb`) : buildDeb({ arch: hostArch!, binary: bin, outDir: join(tmp, "out"), compress: "none" }));
  const root = join(tmp, "root");
  const extract = () => {
    if (!existsSync(root)) {
      expect(run(["dpkg-deb", "-x", deb(), root]).code).toBe(0);
      expect(run(["dpkg-deb", "-e", deb(), join(root, "DEBIAN")]).code).toBe(0);
    }
    return root;
  };

  test("is named weft_<version>_<arch>.deb and says so in its control data", () => {
    const d = deb();
    expect(d.endsWith(`/weft_${pkg.version}_${hostArch}.deb`)).toBe(true);
    const f = (k: string) => run(["dpkg-deb", "-f", d, k]).out.trim();
    expect([f("Package"), f("Version"), f("Architecture")]).toEqual(["weft", pkg.version, hostArch!]);
    expect(f("Depends")).toMatch(/^libc6 \(>= 2\.\d+\), libnl-3-200, libnl-route-3-200$/);
  });

  test("holds exactly the binary, the unit, the example config, docs and lintian overrides, owned by root", () => {
    const list = run(["dpkg-deb", "-c", deb()]).out.trim().split("\n").map((l) => l.split(/\s+/));
    const files = list.filter((c) => !c[0]!.startsWith("d")).map((c) => [c[0], c[1], c.at(-1)]);
    expect(files).toEqual([
      ["-rw-r--r--", "root/root", "./etc/weft/net-conf.json"],
      ["-rw-r--r--", "root/root", "./etc/weft/weft.env"],
      ["-rw-r--r--", "root/root", "./lib/systemd/system/weft.service"],
      ["-rwxr-xr-x", "root/root", "./usr/bin/weft"],
      ["-rw-r--r--", "root/root", "./usr/share/doc/weft/README.md.gz"],
      ["-rw-r--r--", "root/root", "./usr/share/doc/weft/changelog.gz"],
      ["-rw-r--r--", "root/root", "./usr/share/doc/weft/copyright"],
      ["-rw-r--r--", "root/root", "./usr/share/lintian/overrides/weft"],
      ["-rw-r--r--", "root/root", "./usr/share/man/man1/weft.1.gz"],
    ]);
    expect(list.filter((c) => c[0]!.startsWith("d")).every((c) => c[0] === "drwxr-xr-x" && c[1] === "root/root")).toBe(true);
  });

  test("the binary is dist/weft byte for byte; md5sums match every file", () => {
    const r = extract();
    expect(readFileSync(join(r, "usr/bin/weft")).equals(readFileSync(bin))).toBe(true);
    const sums = readFileSync(join(r, "DEBIAN/md5sums"), "utf8").trim().split("\n");
    expect(sums.length).toBe(9);
    for (const line of sums) {
      const [sum, file] = line.split(/ {2}/);
      expect([file, createHash("md5").update(readFileSync(join(r, file!))).digest("hex")]).toEqual([file, sum]);
    }
  });

  test("conffiles are the example net-conf.json and weft.env; the example config is valid", () => {
    const r = extract();
    expect(readFileSync(join(r, "DEBIAN/conffiles"), "utf8")).toBe(CONFFILES.join("\n") + "\n");
    const check = run([bin, "check-config", "--net-conf", join(r, "etc/weft/net-conf.json")]);
    expect([check.code, check.err]).toEqual([0, ""]);
  });

  test("the unit is packaging/weft.service with ExecStart=/usr/bin/weft", () => {
    const r = extract();
    const shipped = readFileSync(join(r, "lib/systemd/system/weft.service"), "utf8");
    const source = readFileSync(join(repo, "packaging/weft.service"), "utf8");
    expect(shipped).toMatch(/^ExecStart=\/usr\/bin\/weft agent /m);
    expect(shipped).not.toMatch(/^ExecStart=.*\/usr\/local\//m);
    expect(shipped.replace("ExecStart=/usr/bin/weft ", "ExecStart=/usr/local/bin/weft ")).toBe(source);
  });

  test("maintainer scripts are executable POSIX sh that parses", () => {
    const r = extract();
    for (const s of ["postinst", "prerm", "postrm"]) {
      const p = join(r, "DEBIAN", s);
      expect([s, statSync(p).mode & 0o777]).toEqual([s, 0o755]);
      expect(readFileSync(p, "utf8")).toStartWith("#!/bin/sh\n");
      expect([s, run(["sh", "-n", p]).code]).toEqual([s, 0]);
    }
  });
});

/**
 * Runs maintainer-script steps in a private mount namespace where /run, /var/lib and
 * /etc/systemd/system are fresh tmpfs, systemd looks running (or not), and systemctl /
 * deb-systemd-invoke are stand-ins that append their argv to a log. Returns the log and
 * which of the probed paths exist afterwards.
 */
function maintainerRun(steps: string[], { systemdRunning = true } = {}): { log: string[]; exists: Record<string, boolean> } {
  const dir = mkdtempSync(join(tmp, "mnt-"));
  const fake = join(dir, "bin");
  const log = join(dir, "calls.log");
  const script = `
set -e
mount --make-rprivate /
for d in /run /var/lib /etc/systemd/system; do mount -t tmpfs tmpfs "$d"; done
${systemdRunning ? "mkdir -p /run/systemd/system" : ""}
mkdir -p /var/lib/weft /etc/systemd/system/multi-user.target.wants
echo id > /var/lib/weft/node-id
ln -s /lib/systemd/system/weft.service /etc/systemd/system/multi-user.target.wants/weft.service
mkdir -p ${fake}
for c in systemctl deb-systemd-invoke deb-systemd-helper; do printf '#!/bin/sh\\necho "$(basename "$0") $*" >> ${log}\\n' > ${fake}/$c; chmod +x ${fake}/$c; done
export PATH=${fake}:$PATH
: > ${log}
${steps.map((s) => `sh ${join(repo, "packaging/deb", s.split(" ")[0]!)} ${s.split(" ").slice(1).join(" ")}`).join("\n")}
for p in /var/lib/weft /etc/systemd/system/multi-user.target.wants/weft.service; do
  if [ -e "$p" ] || [ -L "$p" ]; then echo "exists $p"; else echo "absent $p"; fi
done
`;
  const r = run(["unshare", "--mount", "sh", "-c", script]);
  if (r.code !== 0) throw new Error(`maintainer scripts run failed (${r.code}): ${r.err}`);
  const exists: Record<string, boolean> = {};
  for (const m of r.out.matchAll(/^(exists|absent) (.+)$/gm)) exists[m[2]!] = m[1] === "exists";
  const calls = readFileSync(log, "utf8").trim();
  rmSync(dir, { recursive: true, force: true });
  return { log: calls === "" ? [] : calls.split("\n"), exists };
}

const noMount = process.getuid?.() !== 0 ? "needs root (private mount namespace)" : !Bun.which("unshare") ? "needs unshare (util-linux)" : undefined;

describe.skipIf(!!noMount)("maintainer scripts (root: private mount namespace, systemctl recorded)", () => {
  const WANTS = "/etc/systemd/system/multi-user.target.wants/weft.service";

  test.each([
    ["install", ["postinst configure"], ["systemctl --system daemon-reload"]],
    ["upgrade", ["prerm upgrade 0.0.9", "postrm upgrade 0.1.0", "postinst configure 0.0.9"], ["systemctl --system daemon-reload", "systemctl --system daemon-reload"]],
    ["remove", ["prerm remove", "postrm remove"], ["deb-systemd-invoke stop weft.service", "systemctl --system daemon-reload"]],
  ])("%s: reloads systemd, stops only on removal, never enables or starts", (_name, steps, calls) => {
    const r = maintainerRun(steps);
    expect(r.log).toEqual(calls);
    expect(r.exists).toEqual({ "/var/lib/weft": true, [WANTS]: true });
  });

  test("purge removes the agent's state and the enable link, and reloads systemd", () => {
    const r = maintainerRun(["postrm purge"]);
    expect(r.log).toEqual(["systemctl --system daemon-reload"]);
    expect(r.exists).toEqual({ "/var/lib/weft": false, [WANTS]: false });
  });

  test("without a running systemd (chroot, image build) no script calls systemctl", () => {
    const r = maintainerRun(["postinst configure", "prerm remove", "postrm remove", "postrm purge"], { systemdRunning: false });
    expect(r.log).toEqual([]);
  });
});
