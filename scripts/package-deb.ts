/**
 * Builds Debian packages of weft from compiled binaries (run `bun run build.ts --target
 * all` first; `npm run package` does both):
 *
 *   bun run scripts/package-deb.ts [--arch amd64|arm64|all] [--bin FILE] [--compress xz|gzip|none]
 *
 * writes dist/weft_<version>_<arch>.deb with /usr/bin/weft, the systemd unit (installed,
 * neither enabled nor started), example /etc/weft/net-conf.json and weft.env as conffiles,
 * a man page made from the README's flag table, copyright, changelog and md5sums; built
 * by `dpkg-deb --root-owner-group`, so no fakeroot. The package's sources are in
 * packaging/ and packaging/deb/.
 */
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { dirname, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import pkg from "../package.json";

const REPO = resolve(import.meta.dir, "..");
const HOMEPAGE = "https://github.com/weft-net/weft";

/** Debian architecture → the binary `build.ts --target` writes for it. */
export const ARCHES = { amd64: "dist/weft-linux-x64", arm64: "dist/weft-linux-arm64" } as const;
export type DebArch = keyof typeof ARCHES;

/** Run-time libraries: what ffi/ dlopens. libnftables only for --ip-masq, libnl-genl for wireguard. */
export const DEPENDS = ["libnl-3-200", "libnl-route-3-200"];
export const RECOMMENDS = ["libnftables1", "libnl-genl-3-200"];
export const SUGGESTS = ["wireguard-go"];

/** The files the package installs besides the binary: [source in the repo, path on the node, mode]. */
const FILES: [string, string, number][] = [
  ["packaging/net-conf.json", "etc/weft/net-conf.json", 0o644],
  ["packaging/weft.env", "etc/weft/weft.env", 0o644],
  ["packaging/deb/copyright", "usr/share/doc/weft/copyright", 0o644],
  ["packaging/deb/lintian-overrides", "usr/share/lintian/overrides/weft", 0o644],
];
export const CONFFILES = ["/etc/weft/net-conf.json", "/etc/weft/weft.env"];
const MAINTAINER_SCRIPTS = ["postinst", "prerm", "postrm"];

/** The newest changelog entry: version, maintainer line and date (RFC 2822). */
export function changelogHead(text: string): { version: string; maintainer: string; date: string } {
  const version = /^weft \(([^)]+)\)/.exec(text)?.[1];
  const trailer = /^ -- (.+ <[^>]+>) {2}(.+)$/m.exec(text);
  if (!version || !trailer) throw new Error("packaging/deb/changelog: cannot read the newest entry's version and trailer");
  return { version, maintainer: trailer[1]!, date: trailer[2]! };
}

/** The lowest glibc the binary runs on: the highest GLIBC_2.N symbol version it references. */
export function minGlibc(binary: Uint8Array): string {
  const text = Buffer.from(binary.buffer, binary.byteOffset, binary.byteLength).toString("latin1");
  let best = -1;
  for (const m of text.matchAll(/GLIBC_2\.(\d+)(?![\d.])/g)) best = Math.max(best, Number(m[1]));
  if (best < 0) throw new Error("no GLIBC_2.N symbol version in the binary: is it a glibc executable?");
  return `2.${best}`;
}

export function controlFile(o: { version: string; arch: DebArch; maintainer: string; installedSizeKb: number; glibc: string }): string {
  return [
    "Package: weft",
    `Version: ${o.version}`,
    `Architecture: ${o.arch}`,
    `Maintainer: ${o.maintainer}`,
    `Installed-Size: ${o.installedSizeKb}`,
    `Depends: libc6 (>= ${o.glibc}), ${DEPENDS.join(", ")}`,
    `Recommends: ${RECOMMENDS.join(", ")}`,
    `Suggests: ${SUGGESTS.join(", ")}`,
    "Section: net",
    "Priority: optional",
    `Homepage: ${HOMEPAGE}`,
    "Description: flannel-style overlay network agent with gossip-replicated leases",
    " weft gives every node of a Kubernetes or bare-metal cluster a subnet of",
    " one pod network and makes every pod reach every other pod without NAT, as",
    " flannel does, but the nodes agree on subnets over an encrypted gossip",
    " protocol instead of etcd. It programs the bridge, VXLAN or TUN devices,",
    " routes and neighbour entries through libnl, reads flannel's net-conf.json",
    " and writes flannel's subnet.env.",
    " .",
    " The systemd unit is installed but neither enabled nor started: it needs a",
    " cluster key (weft keygen) and a net-conf.json of the admin's choosing.",
    "",
  ].join("\n");
}

/** Roff text for one Markdown table cell: `code` in bold, hyphens and backslashes escaped. */
function roff(md: string): string {
  return md
    .replace(/\\/g, "\\e")
    .replace(/-/g, "\\-")
    .replace(/`([^`]+)`/g, "\\fB$1\\fR")
    .replace(/\*\*([^*]+)\*\*/g, "\\fB$1\\fR")
    .replace(/^\./, "\\&.");
}

/** Rows of the Markdown table under `heading` in the README, cells trimmed. */
export function readmeTable(readme: string, heading: string): string[][] {
  const at = readme.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`README: no section ${JSON.stringify(heading)}`);
  const rows: string[][] = [];
  for (const line of readme.slice(at + heading.length + 2).split("\n")) {
    if (line.startsWith("#")) break;
    if (!line.startsWith("|")) {
      if (rows.length > 0) break;
      continue;
    }
    rows.push(line.slice(1, line.lastIndexOf("|")).split("|").map((c) => c.trim()));
  }
  if (rows.length < 3) throw new Error(`README: no table under ${JSON.stringify(heading)}`);
  return rows.slice(2); // header and separator
}

/** weft(1): commands from `weft --help`, agent flags from the README's table. */
export function manPage(o: { version: string; date: string; usage: string; readme: string }): string {
  const commands = [...o.usage.matchAll(/^ {2}(\S+)\s+(.+)$/gm)].map((m) => `.TP\n.B ${roff(m[1]!)}\n${roff(m[2]!)}`);
  if (commands.length === 0) throw new Error("weft --help listed no commands");
  const flags = readmeTable(o.readme, "### weft agent flags").map(([flag, def, meaning]) => `.TP\n${roff(flag!)}\n${roff(meaning!)} (default: ${roff(def!)})`);
  const day = new Date(o.date).toISOString().slice(0, 10);
  return [
    `.TH WEFT 1 ${day} "weft ${o.version}" "User Commands"`,
    ".SH NAME",
    "weft \\- flannel\\-style overlay network agent with gossip\\-replicated subnet leases",
    ".SH SYNOPSIS",
    ".B weft",
    ".I command",
    ".RI [ flags ]",
    ".SH DESCRIPTION",
    "Every node gets one subnet of the cluster's pod network; nodes agree on subnets over",
    "an encrypted gossip protocol and each programs routes to the others' subnets.",
    ".B weft agent",
    "is the node agent (see",
    ".BR systemctl (1)",
    "and the unit weft.service); the other commands inspect or prepare it.",
    ".SH COMMANDS",
    ...commands,
    ".SH AGENT FLAGS",
    "Each flag can also be set as the environment variable WEFT_\\fIFLAG\\fR",
    "(e.g. WEFT_JOIN, WEFT_IP_MASQ=true); the flag wins.",
    ...flags,
    ".SH FILES",
    ".TP",
    ".I /etc/weft/net\\-conf.json",
    "the cluster's network (flannel's format)",
    ".TP",
    ".I /etc/weft/weft.env",
    "WEFT_* settings read by weft.service",
    ".TP",
    ".I /etc/weft/key",
    "cluster key from \\fBweft keygen\\fR, the same on every node (not made by the package)",
    ".TP",
    ".I /var/lib/weft",
    "node identity and persisted lease",
    ".TP",
    ".I /run/flannel/subnet.env",
    "this node's subnet, for CNI",
    ".SH EXIT STATUS",
    "0 clean stop, 1 runtime failure (the message says what failed), 2 usage or configuration",
    "error (the message names the flag or field).",
    ".SH SEE ALSO",
    "/usr/share/doc/weft/README.md.gz, " + roff(HOMEPAGE),
    "",
  ].join("\n");
}

/** Every regular file under `root`, relative, sorted; DEBIAN/ excluded. */
function filesUnder(root: string, dir = root): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (relative(root, p) !== "DEBIAN") out.push(...filesUnder(root, p));
    } else out.push(relative(root, p));
  }
  return out.sort();
}

function install(src: string | Uint8Array, root: string, dest: string, mode: number): void {
  const to = join(root, dest);
  mkdirSync(dirname(to), { recursive: true });
  if (typeof src === "string") copyFileSync(src, to);
  else writeFileSync(to, src);
  chmodSync(to, mode);
}

/** Builds one .deb from `binary` and returns its path. */
export function buildDeb(o: { arch: DebArch; binary: string; outDir: string; compress: string }): string {
  const changelog = readFileSync(join(REPO, "packaging/deb/changelog"), "utf8");
  const head = changelogHead(changelog);
  if (head.version !== pkg.version) throw new Error(`packaging/deb/changelog's newest entry is ${head.version}, package.json says ${pkg.version}: add a changelog entry`);
  const usage = Bun.spawnSync([process.execPath, join(REPO, "src/main.ts"), "help"], { stdout: "pipe", stderr: "pipe" });
  if (usage.exitCode !== 0) throw new Error(`weft help failed: ${usage.stderr.toString()}`);
  const binary = readFileSync(o.binary);
  mkdirSync(o.outDir, { recursive: true });
  const root = mkdtempSync(join(o.outDir, `.deb-${o.arch}-`));
  try {
    for (const d of ["usr/bin", "DEBIAN"]) mkdirSync(join(root, d), { recursive: true });
    install(o.binary, root, "usr/bin/weft", 0o755);
    // The hand-install unit names /usr/local/bin/weft; the package's binary is /usr/bin/weft.
    const unit = readFileSync(join(REPO, "packaging/weft.service"), "utf8");
    if (!unit.includes("ExecStart=/usr/local/bin/weft ")) throw new Error("packaging/weft.service: no ExecStart=/usr/local/bin/weft to point at /usr/bin/weft");
    install(Buffer.from(unit.replace("ExecStart=/usr/local/bin/weft ", "ExecStart=/usr/bin/weft ")), root, "lib/systemd/system/weft.service", 0o644);
    for (const [src, dest, mode] of FILES) install(join(REPO, src), root, dest, mode);
    const gz = (text: string) => gzipSync(Buffer.from(text), { level: 9 });
    const readme = readFileSync(join(REPO, "README.md"), "utf8");
    install(gz(changelog), root, "usr/share/doc/weft/changelog.gz", 0o644);
    install(gz(readme), root, "usr/share/doc/weft/README.md.gz", 0o644);
    install(gz(manPage({ version: pkg.version, date: head.date, usage: usage.stdout.toString(), readme })), root, "usr/share/man/man1/weft.1.gz", 0o644);

    const files = filesUnder(root);
    const installedSizeKb = files.reduce((kb, f) => kb + Math.ceil(statSync(join(root, f)).size / 1024), 0) + 1;
    writeFileSync(join(root, "DEBIAN/control"), controlFile({ version: pkg.version, arch: o.arch, maintainer: head.maintainer, installedSizeKb, glibc: minGlibc(binary) }));
    writeFileSync(join(root, "DEBIAN/conffiles"), CONFFILES.join("\n") + "\n");
    writeFileSync(join(root, "DEBIAN/md5sums"), files.map((f) => `${createHash("md5").update(readFileSync(join(root, f))).digest("hex")}  ${f}\n`).join(""));
    for (const f of ["control", "conffiles", "md5sums"]) chmodSync(join(root, "DEBIAN", f), 0o644);
    for (const s of MAINTAINER_SCRIPTS) install(join(REPO, "packaging/deb", s), root, `DEBIAN/${s}`, 0o755);
    // Directories 0755 whatever the umask; dpkg-deb checks DEBIAN's mode.
    const dirs = (d: string): void => {
      chmodSync(d, 0o755);
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) dirs(join(d, e.name));
    };
    dirs(root);

    const out = join(o.outDir, `weft_${pkg.version}_${o.arch}.deb`);
    // Member times from the changelog's date, so the same inputs give the same archive.
    const epoch = String(Math.floor(new Date(head.date).getTime() / 1000));
    const r = Bun.spawnSync(["dpkg-deb", "--root-owner-group", `-Z${o.compress}`, "--build", root, out], { stdout: "pipe", stderr: "pipe", env: { ...process.env, SOURCE_DATE_EPOCH: epoch } });
    if (r.exitCode !== 0) throw new Error(`dpkg-deb --build ${out}: ${r.stderr.toString().trim()}`);
    return out;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const { values: a } = parseArgs({
    args: Bun.argv.slice(2),
    options: { arch: { type: "string", default: "all" }, bin: { type: "string" }, compress: { type: "string", default: "xz" }, out: { type: "string", default: "dist" } },
    strict: true,
  });
  const fail = (msg: string): never => {
    console.error(`package-deb: ${msg}`);
    process.exit(2);
  };
  const arches = a.arch === "all" ? (Object.keys(ARCHES) as DebArch[]) : a.arch! in ARCHES ? [a.arch as DebArch] : fail(`--arch: expected amd64, arm64 or all, got ${JSON.stringify(a.arch)}`);
  if (a.bin && arches.length !== 1) fail("--bin needs one --arch");
  if (!["xz", "gzip", "none"].includes(a.compress!)) fail(`--compress: expected xz, gzip or none, got ${JSON.stringify(a.compress)}`);
  for (const arch of arches) {
    const binary = resolve(a.bin ?? join(REPO, ARCHES[arch]));
    try {
      statSync(binary);
    } catch {
      fail(`${binary} not found: run \`bun run build.ts --target all\` first`);
    }
    const t0 = performance.now();
    const out = buildDeb({ arch, binary, outDir: resolve(a.out!), compress: a.compress! });
    console.log(`built ${relative(process.cwd(), out)} (${(statSync(out).size / 1e6).toFixed(1)} MB, ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }
}
