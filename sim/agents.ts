/**
 * Real `dist/weft agent` processes in harness namespaces, for the hardening kernel tests
 * and bench/load.ts: start/stop, read readiness and /v1/nodes through curl inside the
 * node's namespace, logs in files, and a poll-with-deadline helper.
 */
import type { Subprocess } from "bun";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseSubnetEnv } from "../src/subnet-env.ts";
import { REPO, createTopology, exec, type Topology } from "./netns.ts";
import { until } from "./wait.ts";

export const BIN = join(REPO, "dist/weft");

export { until };

export interface AgentNode {
  name: string;
  ns: string;
  ip: string;
  dir: string;
  stateDir: string;
  subnetFile: string;
  logFile: string;
  proc?: Subprocess;
}

export interface AgentOptions {
  netConf: string;
  keyFile: string;
  join: string[];
  extra?: string[];
  /** The command line that runs the agent's argv in the node; `ip netns exec <ns>` by default. */
  inNode?: (argv: string[]) => string[];
}

export function agentNode(name: string, ns: string, ip: string, baseDir: string): AgentNode {
  const dir = join(baseDir, name);
  mkdirSync(dir, { recursive: true });
  return { name, ns, ip, dir, stateDir: join(dir, "state"), subnetFile: join(dir, "subnet.env"), logFile: join(dir, "agent.log") };
}

export function startAgent(n: AgentNode, o: AgentOptions): Subprocess {
  const args = [BIN, "agent", "--net-conf", o.netConf, "--node-name", n.name, "--key-file", o.keyFile, "--state-dir", n.stateDir, "--subnet-file", n.subnetFile, "--join", o.join.join(","), "--log-level", "debug", ...(o.extra ?? [])];
  // Appended, so a restarted agent's log follows the previous run's.
  const fd = openSync(n.logFile, "a");
  try {
    n.proc = Bun.spawn(o.inNode ? o.inNode(args) : ["ip", "netns", "exec", n.ns, ...args], { stdout: fd, stderr: fd, stdin: "ignore" });
  } finally {
    closeSync(fd);
  }
  return n.proc;
}

export async function stopAgent(n: AgentNode, signal: "SIGKILL" | "SIGTERM" = "SIGKILL"): Promise<void> {
  if (!n.proc || n.proc.exitCode !== null || n.proc.signalCode) return;
  n.proc.kill(signal);
  await n.proc.exited;
}

export const logOf = (n: AgentNode): string => (existsSync(n.logFile) ? readFileSync(n.logFile, "utf8") : "");

/** GET http://127.0.0.1:7947<path> inside the node's namespace; status and body, or undefined if unreachable. */
export function api(n: AgentNode, path: string, timeoutS = 2): { status: number; body: string } | undefined {
  const r = exec(n.ns, ["curl", "-s", "-m", String(timeoutS), "-w", "\n%{http_code}", `http://127.0.0.1:7947${path}`], { check: false });
  if (r.code !== 0) return undefined;
  const i = r.stdout.lastIndexOf("\n");
  return { status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
}

export function readiness(n: AgentNode): { ready: boolean; reason?: string } | undefined {
  const r = api(n, "/readyz");
  if (!r) return undefined;
  try {
    return JSON.parse(r.body);
  } catch {
    return undefined;
  }
}

export interface NodeRow {
  name: string;
  subnet: string;
  state: string;
  publicIp: string | null;
  publicIpv6?: string | null;
}

export function nodesOf(n: AgentNode): NodeRow[] | undefined {
  const r = api(n, "/v1/nodes", 5);
  if (!r || r.status !== 200) return undefined;
  return JSON.parse(r.body) as NodeRow[];
}

export function subnetOf(n: AgentNode): string | undefined {
  if (!existsSync(n.subnetFile)) return undefined;
  return parseSubnetEnv(readFileSync(n.subnetFile, "utf8")).FLANNEL_SUBNET;
}

/** "10.244.3.1/24" → "10.244.3.0/24". */
export const networkOfGateway = (s: string): string => s.replace(/\.\d+\/(\d+)$/, ".0/$1");

/** Peak and current resident set of a process, in MB (from /proc/<pid>/status). */
export function rssMb(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const t = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(t)?.[1] ?? NaN);
    return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
  } catch {
    return undefined;
  }
}

export interface AgentCluster {
  topo: Topology;
  /** Temp directory of the keys, net-conf and each node's files (removed by stop()). */
  dir: string;
  netConf: string;
  /** The shared cluster key file (mode 0600). */
  keyFile: string;
  nodes: AgentNode[];
  /** Seeds: every node's gossip address. */
  seeds: string[];
  /** (Re)starts node `n`'s agent with the cluster's options. */
  start(n: AgentNode): Subprocess;
  /** Running and /readyz says ready. */
  ready(n: AgentNode): boolean;
  /** Kills every agent, removes the namespaces and the directory. */
  stop(): Promise<void>;
}

/**
 * `nodes` node namespaces (sim/netns.ts topology; node i at 192.0.2.(11+i)) running
 * `dist/weft agent` with one net-conf and a fresh cluster key, the first `running` of
 * them started and waited for until ready (their logs in the error otherwise).
 * `extra(n)` adds flags per node; `keyFile(n)` gives a node its own key file (written
 * with the cluster key) instead of the shared one.
 */
export async function startAgentCluster(o: { prefix: string; nodes: number; running?: number; netConf: object; extra?: (n: AgentNode) => string[]; keyFile?: (dir: string, n: AgentNode) => string }): Promise<AgentCluster> {
  const topo = createTopology({ prefix: o.prefix, nodes: o.nodes });
  const dir = mkdtempSync(join(tmpdir(), `${o.prefix}agents-`));
  const nodes = topo.nodes.map((t, i) => agentNode(`node${i + 1}`, t.ns, t.ip, dir));
  const keyFile = join(dir, "key");
  const netConf = join(dir, "net-conf.json");
  const key = exec(topo.nodes[0]!.ns, [BIN, "keygen"]).stdout;
  writeFileSync(keyFile, key, { mode: 0o600 });
  writeFileSync(netConf, JSON.stringify(o.netConf));
  const keyOf = new Map(nodes.map((n) => [n, o.keyFile?.(dir, n) ?? keyFile]));
  for (const f of new Set(keyOf.values())) if (f !== keyFile) writeFileSync(f, key, { mode: 0o600 });
  const seeds = topo.nodes.map((t) => `${t.ip}:7946`);
  const c: AgentCluster = {
    topo,
    dir,
    netConf,
    keyFile,
    nodes,
    seeds,
    start: (n) => startAgent(n, { netConf, keyFile: keyOf.get(n)!, join: seeds, extra: o.extra?.(n) ?? [] }),
    ready: (n) => n.proc?.exitCode === null && readiness(n)?.ready === true,
    async stop() {
      await Promise.all(nodes.map((n) => stopAgent(n)));
      await topo.cleanup();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    const up = nodes.slice(0, o.running ?? o.nodes);
    for (const n of up) c.start(n);
    for (const n of up) await until(`${n.name} ready`, 30_000, () => c.ready(n)).catch((e) => Promise.reject(new Error(`${(e as Error).message}\n${logOf(n)}`)));
  } catch (e) {
    await c.stop();
    throw e;
  }
  return c;
}
