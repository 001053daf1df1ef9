/**
 * Calls the compiled plugin exactly as a container runtime does: `dist/weft` with the
 * CNI_* environment (nothing else of the test's), the network configuration on stdin,
 * the answer read from stdout — run inside a node's namespace, which is the "host" the
 * plugin plumbs.
 */
import { join } from "node:path";
import { REPO } from "../../sim/netns.ts";

export const BIN = join(REPO, "dist/weft");

export interface CniCall {
  command: "ADD" | "DEL" | "CHECK" | "VERSION" | "STATUS" | "GC";
  containerId?: string;
  netns?: string;
  ifname?: string;
  /** The network configuration: an object (serialised) or raw stdin text. */
  conf: object | string;
}

export interface CniAnswer {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed, when it is JSON. */
  json: any;
}

function argv(nodeNs: string): string[] {
  return ["ip", "netns", "exec", nodeNs, BIN];
}

function environment(c: CniCall): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", CNI_COMMAND: c.command, CNI_PATH: "/opt/cni/bin" };
  if (c.containerId !== undefined) env.CNI_CONTAINERID = c.containerId;
  if (c.netns !== undefined) env.CNI_NETNS = c.netns;
  if (c.ifname !== undefined) env.CNI_IFNAME = c.ifname;
  return env;
}

const stdinOf = (c: CniCall) => Buffer.from(typeof c.conf === "string" ? c.conf : JSON.stringify(c.conf));

function answer(code: number, stdout: string, stderr: string): CniAnswer {
  let json: unknown;
  try {
    json = stdout.trim() ? JSON.parse(stdout) : undefined;
  } catch {
    json = undefined;
  }
  return { code, stdout, stderr, json };
}

/** One invocation, waited for. */
export function cni(nodeNs: string, c: CniCall): CniAnswer {
  const p = Bun.spawnSync(argv(nodeNs), { env: environment(c), stdin: stdinOf(c), stdout: "pipe", stderr: "pipe", timeout: 30_000 });
  return answer(p.exitCode ?? -1, p.stdout.toString(), p.stderr.toString());
}

/** One invocation running concurrently with others. */
export async function cniAsync(nodeNs: string, c: CniCall): Promise<CniAnswer> {
  const p = Bun.spawn(argv(nodeNs), { env: environment(c), stdin: stdinOf(c), stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return answer(code, stdout, stderr);
}

/** ADD that must succeed; returns the pod's address without prefix and the result. */
export function addPod(nodeNs: string, c: Omit<CniCall, "command">): { ip: string; result: any } {
  const r = cni(nodeNs, { ...c, command: "ADD" });
  if (r.code !== 0) throw new Error(`CNI ADD ${c.containerId} in ${nodeNs} failed (${r.code}): ${r.stdout} ${r.stderr}`);
  return { ip: String(r.json.ips[0].address).split("/")[0]!, result: r.json };
}
