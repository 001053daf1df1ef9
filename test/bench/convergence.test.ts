/**
 * bench/convergence.ts end to end, small: one thread, and split over two worker threads
 * in lockstep (the exact default 1 ms window and the opt-in 3 ms one). The figures
 * themselves are bench/RESULTS.md's; here the run must finish with every node committed,
 * one view, no duplicate subnet, and every figure of its JSON a finite number.
 */
import { describe, expect, test } from "bun:test";

async function bench(...args: string[]): Promise<Record<string, unknown>> {
  const p = Bun.spawn([process.execPath, "run", "bench/convergence.ts", "--json", "--quiet-ms", "1000", "--steady-ms", "2000", ...args], {
    cwd: `${import.meta.dir}/../..`,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`bench exited ${code}: ${err}`);
  return JSON.parse(out);
}

/** Every numeric field of the result. */
const FIGURES = [
  "nodes", "loss", "partitionMs", "seed", "workers", "committed", "errors", "allCommittedAtMs", "allConvergedAtMs",
  "convergenceP50Ms", "convergenceP99Ms", "convergenceMaxMs", "duplicates", "views", "bytesPerNodePerSec",
  "conflictsResolved", "renumbers", "rejectedRecords", "stormPackets", "stormStreams", "stormMB", "wallMs",
];

describe("bench/convergence.ts", () => {
  for (const [workers, window] of [["1", "3"], ["2", "3"], ["2", "1"]] as const) {
    test(`${workers} worker(s), --window-ms ${window}: all commit, agree, no duplicates, every figure a finite number`, async () => {
      const r = await bench("--nodes", "24", "--workers", workers, "--loss", "0.05", "--window-ms", window);
      expect(r).toMatchObject({ nodes: 24, workers: Number(workers), windowMs: workers === "1" ? null : Number(window), committed: 24, errors: 0, duplicates: 0, views: 1 });
      // JSON has no NaN: a figure that could not be computed arrives as null and fails here.
      expect(Object.keys(r).sort()).toEqual([...FIGURES, "staggered", "windowMs"].sort());
      for (const k of FIGURES) expect({ k, finite: Number.isFinite(r[k]) }).toEqual({ k, finite: true });
      expect(r.convergenceP99Ms as number).toBeGreaterThanOrEqual(r.convergenceP50Ms as number);
      expect(r.bytesPerNodePerSec as number).toBeGreaterThan(0);
    }, 60_000);
  }
});
