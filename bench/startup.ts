/**
 * Size and start-up of compiled weft binaries (figures for the README's benchmarks).
 *
 *   bun run bench/startup.ts [--bin dist/weft]... [--runs 20] [--agent-runs 5]
 *
 * For each binary: its size; `weft version` and `weft check-config` wall time (process
 * spawn to exit, median and min over --runs); and, as root, one `weft agent` (vxlan, no
 * peers) in a fresh namespace --agent-runs times: spawn → first log line → READY=1 on
 * $NOTIFY_SOCKET, first with an empty state dir (a new lease: includes the settle wait)
 * and then restarted on the state it persisted. Runs of the binaries are interleaved so
 * a busy machine slows them alike. Prints one JSON object; times read "median (min–max) ms".
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { bindUnix, closeFd, recvDatagram, unixDatagramSocket } from "../src/sys/unix-socket.ts";
import { createTopology, requireRoot } from "../sim/netns.ts";

const { values: a } = parseArgs({
  options: {
    bin: { type: "string", multiple: true, default: ["dist/weft"] },
    runs: { type: "string", default: "20" },
    "agent-runs": { type: "string", default: "5" },
  },
});
const runs = Number(a.runs);
const agentRuns = Number(a["agent-runs"]);
const bins = a.bin!;
const dir = mkdtempSync(join(tmpdir(), "wbs-startup-"));
const netConf = join(dir, "net-conf.json");
writeFileSync(netConf, JSON.stringify({ Network: "10.244.0.0/16", Backend: { Type: "vxlan" } }));

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const round = (x: number) => Math.round(x * 10) / 10;
/** "median (min–max) ms" over the runs. */
const summary = (xs: number[]) => `${round(median(xs))} (${round(Math.min(...xs))}–${round(Math.max(...xs))}) ms`;

function timeCommand(bin: string, args: string[]): number {
  const t0 = performance.now();
  const r = Bun.spawnSync([bin, ...args], { stdout: "ignore", stderr: "pipe" });
  const ms = performance.now() - t0;
  if (r.exitCode !== 0) throw new Error(`${bin} ${args.join(" ")} exited ${r.exitCode}: ${r.stderr.toString().trim()}`);
  return ms;
}

interface AgentTimes {
  firstLogMs: number;
  readyMs: number;
}

/** Starts the agent in `ns` with `stateDir`, waits for READY=1, stops it; times from spawn. */
async function timeAgent(bin: string, ns: string, stateDir: string, keyFile: string): Promise<AgentTimes> {
  const sock = join(dir, `notify-${Math.random().toString(36).slice(2, 8)}`);
  const fd = unixDatagramSocket({ nonBlocking: true });
  try {
    bindUnix(fd, sock);
    const argv = ["ip", "netns", "exec", ns, bin, "agent", "--net-conf", netConf, "--node-name", "bench", "--key-file", keyFile, "--state-dir", stateDir, "--subnet-file", join(stateDir, "subnet.env"), "--log-format", "json"];
    const t0 = performance.now();
    const proc = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, NOTIFY_SOCKET: sock } });
    let firstLogMs: number | undefined;
    const onOutput = async (stream: ReadableStream<Uint8Array>) => {
      for await (const _ of stream) {
        firstLogMs ??= performance.now() - t0;
      }
    };
    void onOutput(proc.stderr);
    void onOutput(proc.stdout);
    try {
      const deadline = t0 + 30_000;
      for (;;) {
        const d = recvDatagram(fd, 0);
        if (d && new TextDecoder().decode(d).split("\n").includes("READY=1")) break;
        if (proc.exitCode !== null) throw new Error(`agent exited ${proc.exitCode} before READY=1`);
        if (performance.now() > deadline) throw new Error("agent not ready within 30 s");
        await Bun.sleep(1);
      }
      const readyMs = performance.now() - t0;
      return { firstLogMs: firstLogMs ?? NaN, readyMs };
    } finally {
      proc.kill("SIGTERM");
      await proc.exited;
    }
  } finally {
    closeFd(fd);
    rmSync(sock, { force: true });
  }
}

const results: Record<string, any> = {};
for (const bin of bins) results[bin] = { sizeBytes: statSync(bin).size, sizeMB: round(statSync(bin).size / 1e6), version: [] as number[], checkConfig: [] as number[] };
for (let i = 0; i < runs; i++) {
  for (const bin of bins) {
    results[bin].version.push(timeCommand(bin, ["version"]));
    results[bin].checkConfig.push(timeCommand(bin, ["check-config", "--net-conf", netConf]));
  }
}
for (const bin of bins) {
  results[bin].version = summary(results[bin].version);
  results[bin].checkConfig = summary(results[bin].checkConfig);
}

const noRoot = requireRoot();
if (noRoot) {
  for (const bin of bins) results[bin].agent = `skipped: ${noRoot}`;
} else {
  const topo = createTopology({ prefix: "wbs-", nodes: 1 });
  try {
    const ns = topo.nodes[0]!.ns;
    const keyFile = join(dir, "key");
    writeFileSync(keyFile, Bun.spawnSync([bins[0]!, "keygen"]).stdout, { mode: 0o600 });
    const times: Record<string, { cold: AgentTimes[]; warm: AgentTimes[] }> = {};
    for (const bin of bins) times[bin] = { cold: [], warm: [] };
    for (let i = 0; i < agentRuns; i++) {
      for (const bin of bins) {
        const stateDir = mkdtempSync(join(dir, "state-"));
        times[bin]!.cold.push(await timeAgent(bin, ns, stateDir, keyFile));
        times[bin]!.warm.push(await timeAgent(bin, ns, stateDir, keyFile));
        rmSync(stateDir, { recursive: true, force: true });
      }
    }
    for (const bin of bins) {
      const t = times[bin]!;
      results[bin].agent = {
        firstLogLine: summary([...t.cold, ...t.warm].map((x) => x.firstLogMs)),
        readyNewLease: summary(t.cold.map((x) => x.readyMs)),
        readyPersistedLease: summary(t.warm.map((x) => x.readyMs)),
      };
    }
  } finally {
    await topo.cleanup();
  }
}
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ date: new Date().toISOString(), bun: Bun.version, cpus: navigator.hardwareConcurrency, runs, agentRuns, results }, null, 2));
