/**
 * `weft forget NODE [--api URL]`: retires a dead node before its lease expires, through
 * the local agent's API (POST /v1/nodes/{NODE}/forget, answered to loopback clients
 * only). The agent tombstones the node's lease for the whole cluster; it refuses while
 * the node is alive or suspect. Exit 0 when forgotten, 1 when refused or no agent
 * answers, 2 on bad arguments.
 */
import { parseArgs } from "node:util";
import { agentFetch, apiUrl, DEFAULT_API_URL, describeFetchError, parseApiUrl } from "./status.ts";

const usage = "usage: weft forget NODE [--api URL]\n";

export interface ForgetIo {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Request timeout in ms. */
  timeoutMs: number;
}

const defaultIo: ForgetIo = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s), timeoutMs: 5000 };

export async function forgetCommand(argv: string[], io: Partial<ForgetIo> = {}): Promise<number> {
  const { out, err, timeoutMs } = { ...defaultIo, ...io };
  let values: { api?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, options: { api: { type: "string" }, help: { type: "boolean", short: "h" } }, strict: true, allowPositionals: true }));
  } catch (e) {
    err(`weft forget: ${(e as Error).message}\n${usage}`);
    return 2;
  }
  if (values.help) {
    out(usage);
    return 0;
  }
  if (positionals.length !== 1 || positionals[0] === "") {
    err(`weft forget: ${positionals.length === 0 ? "NODE: the name of the node to forget is required" : `expected one NODE, got ${positionals.length}: ${positionals.join(" ")}`}\n${usage}`);
    return 2;
  }
  const node = positionals[0]!;
  const base = values.api ?? DEFAULT_API_URL;
  const baseUrl = parseApiUrl(base);
  if (typeof baseUrl === "string") {
    err(`weft forget: ${baseUrl}\n`);
    return 2;
  }
  let res: Response;
  let text: string;
  try {
    res = await agentFetch(apiUrl(baseUrl, `v1/nodes/${encodeURIComponent(node)}/forget`), { method: "POST", signal: AbortSignal.timeout(timeoutMs) });
    text = await res.text();
  } catch (e) {
    err(`weft forget: ${describeFetchError(base.replace(/\/+$/, ""), e)}\n`);
    return 1;
  }
  let body: { forgotten?: string; subnet?: string; error?: string } = {};
  try {
    body = JSON.parse(text);
  } catch {}
  if (res.ok && body.forgotten) {
    out(`forgot ${body.forgotten}: its lease of ${body.subnet} is tombstoned on every node; their routes to it go within seconds, and the subnet is free\n`);
    return 0;
  }
  err(`weft forget: ${node} not forgotten (${res.status}): ${body.error ?? text.trim().slice(0, 300)}\n`);
  return 1;
}
