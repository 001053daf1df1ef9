/**
 * Builds dist/weft: one self-contained executable (Bun runtime + all code + workers).
 * Version comes from package.json, the commit from git (or "unknown" outside a checkout).
 */
import pkg from "./package.json";

function gitCommit(): string {
  const r = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { stderr: "ignore" });
  if (r.exitCode !== 0) return "unknown";
  const dirty = Bun.spawnSync(["git", "status", "--porcelain", "--untracked-files=no"]).stdout.toString().trim();
  return r.stdout.toString().trim() + (dirty ? "-dirty" : "");
}

const commit = gitCommit();
const entrypoints = ["./src/main.ts", ...workerEntrypoints()];

function workerEntrypoints(): string[] {
  // Workers must be listed as extra entrypoints so `new Worker(new URL(...))` resolves inside the binary.
  const glob = new Bun.Glob("src/**/*.worker.ts");
  return [...glob.scanSync(".")].map((p) => `./${p}`);
}

const result = await Bun.build({
  entrypoints,
  compile: { outfile: "dist/weft" },
  minify: false,
  sourcemap: "none",
  define: {
    WEFT_VERSION: JSON.stringify(pkg.version),
    WEFT_COMMIT: JSON.stringify(commit),
  },
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
console.log(`built dist/weft ${pkg.version} (${commit})`);
