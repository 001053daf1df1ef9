/**
 * Builds weft as one self-contained executable (Bun runtime + all code + workers).
 *
 *   bun run build.ts                                  dist/weft, for this machine
 *   bun run build.ts --target linux-x64|linux-arm64   dist/weft-linux-x64 / dist/weft-linux-arm64
 *   bun run build.ts --target all                     both of those
 *
 * A cross build needs Bun's runtime for the other target: Bun fetches it once from the npm
 * registry (package @oven/bun-linux-<arch>) into its install cache. Version comes from
 * package.json, the commit from git (or "unknown" outside a checkout).
 */
import { parseArgs } from "node:util";
import pkg from "./package.json";

// x64 nodes get Bun's baseline runtime (x86-64-v2: SSE4.2/POPCNT, CPUs since 2008): the
// default x64 runtime needs AVX2 and dies with SIGILL on older servers and on VMs with a
// conservative CPU model. `bun run build.ts` with no --target builds for this machine.
const TARGETS = { "linux-x64": "bun-linux-x64-baseline", "linux-arm64": "bun-linux-arm64" } as const;
type Target = keyof typeof TARGETS;

/**
 * Bundle options every compiled weft uses (tests that compile their own binaries take
 * these too). Bytecode: the runtime skips parsing at start, for a slightly larger binary
 * (README, "Binary size and start-up"); ESM bytecode needs format "esm". No minify: it
 * gains nothing measurable and would garble stack traces. msgpackr would otherwise look for
 * its optional native addon under the build machine's node_modules at run time (found
 * there, absent on every node): the binary always uses msgpackr's JavaScript decoder,
 * and the addon's loader stays out of it.
 */
export const COMPILE_OPTIONS = {
  bytecode: true,
  format: "esm",
  minify: false,
  sourcemap: "none",
  external: ["msgpackr-extract"],
  define: { "process.env.MSGPACKR_NATIVE_ACCELERATION_DISABLED": JSON.stringify("true") },
} as const;

/** The checkout's commit, "-dirty" if tracked files changed; "unknown" without git or a checkout. */
export function gitCommit(git = "git"): string {
  if (!Bun.which(git)) return "unknown";
  const r = Bun.spawnSync([git, "rev-parse", "--short=12", "HEAD"], { stderr: "ignore" });
  if (r.exitCode !== 0) return "unknown";
  const dirty = Bun.spawnSync([git, "status", "--porcelain", "--untracked-files=no"]).stdout.toString().trim();
  return r.stdout.toString().trim() + (dirty ? "-dirty" : "");
}

function workerEntrypoints(): string[] {
  // Workers must be listed as extra entrypoints so `new Worker(new URL(...))` resolves inside the binary.
  const glob = new Bun.Glob("src/**/*.worker.ts");
  return [...glob.scanSync(".")].map((p) => `./${p}`);
}

/** Which executables to build: `[outfile, Bun compile target or undefined for this machine]`. */
export function plan(target: string | undefined): [string, string | undefined][] {
  if (target === undefined) return [["dist/weft", undefined]];
  const names = target === "all" ? (Object.keys(TARGETS) as Target[]) : [target];
  return names.map((t) => {
    if (!(t in TARGETS)) throw new Error(`--target: expected ${[...Object.keys(TARGETS), "all"].join(", ")}, got ${JSON.stringify(t)}`);
    return [`dist/weft-${t}`, TARGETS[t as Target]];
  });
}

async function build(outfile: string, target: string | undefined, commit: string): Promise<void> {
  const result = await Bun.build({
    entrypoints: ["./src/main.ts", ...workerEntrypoints()],
    compile: target === undefined ? { outfile } : { outfile, target: target as Bun.Build.CompileTarget },
    ...COMPILE_OPTIONS,
    external: [...COMPILE_OPTIONS.external],
    define: {
      ...COMPILE_OPTIONS.define,
      WEFT_VERSION: JSON.stringify(pkg.version),
      WEFT_COMMIT: JSON.stringify(commit),
    },
  });
  if (!result.success) {
    for (const log of result.logs) console.error(log);
    throw new Error(`build ${outfile} failed`);
  }
  console.log(`built ${outfile} ${pkg.version} (${commit})${target ? ` for ${target}` : ""}`);
}

if (import.meta.main) {
  const { values } = parseArgs({ args: Bun.argv.slice(2), options: { target: { type: "string" } }, strict: true });
  let builds: [string, string | undefined][];
  try {
    builds = plan(values.target);
  } catch (e) {
    console.error(`build.ts: ${(e as Error).message}`);
    process.exit(2);
  }
  const commit = gitCommit();
  for (const [outfile, target] of builds) await build(outfile, target, commit);
}
