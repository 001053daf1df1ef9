/**
 * bench/convergence.ts end to end, small: one thread, and split over two worker threads
 * in lockstep (the exact default 1 ms window and the opt-in 3 ms one). The figures themselves are for the README; here the run must finish with
 * every node committed, one view, no duplicate subnet, and the JSON fields the issue asks for.
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

describe("bench/convergence.ts", () => {
  for (const [workers, window] of [["1", "3"], ["2", "3"], ["2", "1"]] as const) {
    test(`${workers} worker(s), --window-ms ${window}: all commit, agree, no duplicates`, async () => {
      const r = await bench("--nodes", "24", "--workers", workers, "--loss", "0.05", "--window-ms", window);
      expect(r).toMatchObject({ nodes: 24, workers: Number(workers), windowMs: workers === "1" ? null : Number(window), committed: 24, errors: 0, duplicates: 0, views: 1 });
      for (const k of ["convergenceP50Ms", "convergenceP99Ms", "bytesPerNodePerSec", "conflictsResolved"]) expect(typeof r[k]).toBe("number");
      expect(r.convergenceP99Ms as number).toBeGreaterThanOrEqual(r.convergenceP50Ms as number);
      expect(r.bytesPerNodePerSec as number).toBeGreaterThan(0);
      expect(r.allConvergedAtMs).not.toBeNull();
    }, 60_000);
  }
});
