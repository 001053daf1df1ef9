/**
 * `weft install-cni [--cni-bin-dir DIR] [--cni-conf-dir DIR] [--subnet-file FILE] [--data-dir DIR] [--uninstall]`:
 * makes this node's runtime (kubelet via containerd or CRI-O, podman) use weft as its CNI
 * plugin. Installs this very binary as `<bin-dir>/weft` (a hard link when on the same
 * filesystem, else a copy; placed by rename, so a runtime never executes half a file)
 * and writes `<conf-dir>/10-weft.conflist`, chaining `portmap` when that plugin is in the
 * bin dir. Running it again changes nothing; `--uninstall` removes both files.
 */
import { chmodSync, closeSync, copyFileSync, existsSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ConfigError } from "../config.ts";
import { writeFileAtomic } from "../atomic-file.ts";

export const CONFLIST_NAME = "10-weft.conflist";
export const DEFAULT_BIN_DIR = "/opt/cni/bin";
export const DEFAULT_CONF_DIR = "/etc/cni/net.d";
const DEFAULT_SUBNET_FILE = "/run/flannel/subnet.env";
const DEFAULT_DATA_DIR = "/var/lib/cni/networks";

/**
 * The network configuration list (pure). cniVersion 1.0.0 is what every current runtime
 * reads; runtimes that know 1.1.0 pick it from cniVersions and gain STATUS and GC.
 */
export function conflist({ portmap, subnetFile = DEFAULT_SUBNET_FILE, dataDir = DEFAULT_DATA_DIR }: { portmap: boolean; subnetFile?: string; dataDir?: string }): Record<string, unknown> {
  const weft: Record<string, unknown> = { type: "weft" };
  if (subnetFile !== DEFAULT_SUBNET_FILE) weft.subnetFile = subnetFile;
  if (dataDir !== DEFAULT_DATA_DIR) weft.dataDir = dataDir;
  const plugins: Record<string, unknown>[] = [weft];
  if (portmap) plugins.push({ type: "portmap", capabilities: { portMappings: true } });
  return { cniVersion: "1.0.0", cniVersions: ["1.0.0", "1.1.0"], name: "weft", plugins };
}

/** The running executable when it is the compiled weft; undefined when run from source. */
function selfBinary(): string | undefined {
  return import.meta.path.startsWith("/$bunfs/") ? process.execPath : undefined;
}

function sameFile(a: string, b: string): boolean {
  let sa, sb;
  try {
    sa = statSync(a);
    sb = statSync(b);
  } catch {
    return false;
  }
  if (sa.ino === sb.ino && sa.dev === sb.dev) return true;
  if (sa.size !== sb.size) return false;
  const fa = openSync(a, "r");
  const fb = openSync(b, "r");
  try {
    const ba = Buffer.alloc(1 << 20);
    const bb = Buffer.alloc(1 << 20);
    for (;;) {
      const na = readSync(fa, ba);
      const nb = readSync(fb, bb);
      if (na !== nb || !ba.subarray(0, na).equals(bb.subarray(0, nb))) return false;
      if (na === 0) return true;
    }
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}

/** Puts `src` at `dst` by rename from a temp name beside it; returns how. */
function placeBinary(src: string, dst: string): "hard link" | "copy" {
  const tmp = `${dst}.tmp-${process.pid}`;
  let how: "hard link" | "copy";
  try {
    linkSync(src, tmp);
    how = "hard link";
  } catch {
    copyFileSync(src, tmp);
    how = "copy";
  }
  try {
    chmodSync(tmp, 0o755);
    renameSync(tmp, dst);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {}
    throw new Error(`install ${dst}: ${(e as Error).message}`, { cause: e });
  }
  return how;
}

/** Config files a runtime would read before ours (it takes the first in lexical order). */
function earlierConfigs(confDir: string): string[] {
  try {
    return readdirSync(confDir)
      .filter((f) => /\.(conf|conflist|json)$/.test(f) && f !== CONFLIST_NAME && f < CONFLIST_NAME)
      .sort();
  } catch {
    return [];
  }
}

const usage = "usage: weft install-cni [--cni-bin-dir DIR] [--cni-conf-dir DIR] [--subnet-file FILE] [--data-dir DIR] [--uninstall]";

export async function installCniCommand(argv: string[], io = { out: (s: string) => void process.stdout.write(s) }): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      "cni-bin-dir": { type: "string", default: DEFAULT_BIN_DIR },
      "cni-conf-dir": { type: "string", default: DEFAULT_CONF_DIR },
      "subnet-file": { type: "string", default: DEFAULT_SUBNET_FILE },
      "data-dir": { type: "string", default: DEFAULT_DATA_DIR },
      uninstall: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length) throw new ConfigError(`unexpected argument ${JSON.stringify(positionals[0])}; ${usage}`);
  for (const flag of ["cni-bin-dir", "cni-conf-dir", "subnet-file", "data-dir"] as const) {
    if (!values[flag].startsWith("/")) throw new ConfigError(`--${flag}: expected an absolute path, got ${JSON.stringify(values[flag])}`);
  }
  const binDir = values["cni-bin-dir"];
  const confDir = values["cni-conf-dir"];
  const binPath = join(binDir, "weft");
  const confPath = join(confDir, CONFLIST_NAME);

  if (values.uninstall) {
    let removed = 0;
    for (const p of [confPath, binPath]) {
      if (!existsSync(p)) continue;
      unlinkSync(p);
      io.out(`removed ${p}\n`);
      removed++;
    }
    if (!removed) io.out(`nothing to remove (${confPath}, ${binPath})\n`);
    return 0;
  }

  const self = selfBinary();
  if (!self) {
    process.stderr.write("weft install-cni: run the compiled binary (dist/weft); a source checkout cannot be installed as a plugin\n");
    return 1;
  }
  mkdirSync(binDir, { recursive: true, mode: 0o755 });
  mkdirSync(confDir, { recursive: true, mode: 0o755 });
  if (sameFile(self, binPath)) io.out(`${binPath} is up to date\n`);
  else io.out(`installed ${binPath} (${placeBinary(self, binPath)} of ${self})\n`);

  const portmap = existsSync(join(binDir, "portmap"));
  const content = JSON.stringify(conflist({ portmap, subnetFile: values["subnet-file"], dataDir: values["data-dir"] }), null, 2) + "\n";
  let current: string | undefined;
  try {
    current = readFileSync(confPath, "utf8");
  } catch {}
  if (current === content) io.out(`${confPath} is up to date\n`);
  else {
    writeFileAtomic(confPath, content, 0o644);
    io.out(`wrote ${confPath} (weft${portmap ? " + portmap" : ""})\n`);
  }
  const earlier = earlierConfigs(confDir);
  if (earlier.length) io.out(`note: runtimes use the first config in ${confDir}; these sort before ${CONFLIST_NAME}: ${earlier.join(", ")}\n`);
  return 0;
}
