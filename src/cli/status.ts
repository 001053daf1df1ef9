/**
 * `weft status [--api URL] [--json]`: asks the local agent's HTTP API for /v1/status and
 * /v1/nodes and prints them as a table (or JSON). Exit 1 when no agent answers, 2 on
 * bad flags (contract exit codes).
 */
import { parseArgs } from "node:util";
import type { AgentStatus, NodeStatus, Readiness } from "../api/status.ts";

export const DEFAULT_API_URL = "http://127.0.0.1:7947";

export interface StatusIo {
  out: (s: string) => void;
  err: (s: string) => void;
  now: () => number;
  /** Per-request timeout in ms. */
  timeoutMs: number;
}

const defaultIo: StatusIo = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  now: () => Date.now(),
  timeoutMs: 5000,
};

const usage = "usage: weft status [--api URL] [--json]\n";

export async function statusCommand(argv: string[], io: Partial<StatusIo> = {}): Promise<number> {
  const { out, err, now, timeoutMs } = { ...defaultIo, ...io };
  let values: { api?: string; json?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({ args: argv, options: { api: { type: "string" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" } }, strict: true, allowPositionals: false }));
  } catch (e) {
    err(`weft status: ${(e as Error).message}\n${usage}`);
    return 2;
  }
  if (values.help) {
    out(usage);
    return 0;
  }
  const base = values.api ?? DEFAULT_API_URL;
  const baseUrl = parseApiUrl(base);
  if (typeof baseUrl === "string") {
    err(`weft status: ${baseUrl}\n`);
    return 2;
  }
  const shown = base.replace(/\/+$/, "");
  let status: AgentStatus;
  let nodes: NodeStatus[];
  let readiness: Readiness | undefined;
  try {
    [status, nodes, readiness] = await Promise.all([
      getJson<AgentStatus>(baseUrl, "v1/status", timeoutMs),
      getJson<NodeStatus[]>(baseUrl, "v1/nodes", timeoutMs),
      getReadiness(baseUrl, timeoutMs),
    ]);
  } catch (e) {
    err(`${e instanceof AgentError ? e.message : describeFetchError(shown, e)}\n`);
    return 1;
  }
  if (values.json) out(JSON.stringify({ status, nodes }, null, 2) + "\n");
  else out(formatStatus(status, nodes, now(), readiness));
  return 0;
}

/** The agent API's base URL from --api, or what is wrong with it. */
export function parseApiUrl(base: string): URL | string {
  try {
    const u = new URL(base);
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error("scheme must be http or https");
    return u;
  } catch (e) {
    return `--api: expected a URL like ${DEFAULT_API_URL}, got ${JSON.stringify(base)} (${(e as Error).message})`;
  }
}

/** `path` under the API's base URL (which may carry a path of its own). */
export function apiUrl(base: URL, path: string): URL {
  return new URL(path, base.href.endsWith("/") ? base : new URL(base.href + "/"));
}

class AgentError extends Error {}

/** 127.0.0.0/8, ::1 and localhost: the agent on this machine. */
function isLoopbackHost(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/**
 * fetch() for the agent's API. Bun's fetch sends every request through $HTTP_PROXY when it
 * is set, and NO_PROXY seldom lists 127.0.0.1: on a node with a proxy in its environment
 * the local agent would look down (the proxy cannot reach its loopback) or, for
 * `weft forget`, refuse the request as not from loopback. A loopback URL is therefore
 * added to NO_PROXY for this process.
 */
export function agentFetch(url: URL, init: RequestInit = {}): Promise<Response> {
  if (isLoopbackHost(url.hostname)) {
    for (const name of ["NO_PROXY", "no_proxy"]) {
      const list = process.env[name];
      if (!list?.split(",").some((h) => h.trim() === url.hostname)) process.env[name] = list ? `${list},${url.hostname}` : url.hostname;
    }
  }
  return fetch(url, { redirect: "error", ...init });
}

async function getJson<T>(base: URL, path: string, timeoutMs: number): Promise<T> {
  const url = apiUrl(base, path);
  const res = await agentFetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (!res.ok) {
    let detail = text.trim().slice(0, 300);
    try {
      detail = String((JSON.parse(text) as { error?: unknown }).error ?? detail);
    } catch {}
    throw new AgentError(`weft agent at ${url.href} answered ${res.status}: ${detail}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new AgentError(`weft agent at ${url.href} answered with something that is not JSON: ${JSON.stringify(text.slice(0, 80))}`);
  }
}

/** /readyz answers 503 with a reason when not ready; that is information, not a failure. */
async function getReadiness(base: URL, timeoutMs: number): Promise<Readiness | undefined> {
  try {
    const res = await agentFetch(apiUrl(base, "readyz"), { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.json()) as Readiness;
    return typeof body.ready === "boolean" ? body : undefined;
  } catch {
    return undefined;
  }
}

/** Why no agent answered at `url`, as the CLI commands print it. */
export function describeFetchError(url: string, e: unknown): string {
  const code = (e as { code?: string }).code ?? "";
  const name = (e as Error).name ?? "";
  let why: string;
  if (code === "ConnectionRefused" || code === "ECONNREFUSED") why = "connection refused";
  else if (name === "TimeoutError") why = "no answer (timed out)";
  else why = (e as Error).message ?? String(e);
  return `no weft agent answering at ${url}: ${why} — is \`weft agent\` running?`;
}

/** Renders "12s ago", "3m ago", ... for an ISO time, or "never". */
export function relativeTime(iso: string | null, nowMs: number): string {
  if (!iso) return "never";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return "?";
  const s = Math.round((nowMs - t) / 1000);
  if (s < 1) return "just now";
  if (s < 120) return `${s}s ago`;
  if (s < 2 * 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 2 * 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d${h}h`;
  if (h) return `${h}h${m}m`;
  if (m) return `${m}m${s % 60}s`;
  return `${s}s`;
}

/** Aligns rows into columns separated by two spaces. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n") + "\n";
}

/**
 * The human-readable view: this node, then every known node (this one marked `*`). IPv6
 * lines and columns appear when the cluster has IPv6 pod networks; an IPv6-only
 * cluster's IPv4 fields read "-".
 */
export function formatStatus(s: AgentStatus, nodes: NodeStatus[], nowMs: number, readiness?: Readiness): string {
  const m = s.members;
  const ready: string[][] = readiness ? [["ready:", readiness.ready ? "yes" : `no (${readiness.reason ?? "no reason given"})`]] : [];
  const v6 = s.ipv6Network !== undefined;
  const v4 = s.network !== null;
  const head = table([
    ["node:", s.node],
    ...ready,
    ["public IP:", s.publicIp ?? "-"],
    ...(v6 ? [["public IPv6:", s.publicIpv6 ?? "-"]] : []),
    ...(v4 ? [["network:", s.network ?? "-"], ["subnet:", s.subnet ?? "(no lease yet)"]] : []),
    ...(v6 ? [["IPv6 network:", s.ipv6Network ?? "-"], ["IPv6 subnet:", s.ipv6Subnet ?? "(no lease yet)"]] : []),
    ["backend:", `${s.backend} (mtu ${s.mtu})`],
    ["members:", `${m.alive} alive, ${m.suspect} suspect, ${m.dead} dead, ${m.left} left`],
    ...(s.clusterKeys !== undefined ? [["cluster keys:", s.clusterKeys ? `${s.clusterKeys.count} (sealing with ${s.clusterKeys.primary})` : "none (--insecure)"]] : []),
    ["version:", `${s.version}, up ${formatDuration(s.uptimeSeconds)}`],
  ]);
  const sorted = [...nodes].sort((a, b) => a.name.localeCompare(b.name));
  const showV6 = v6 || sorted.some((n) => n.ipv6Subnet !== undefined);
  const rows = [["", "NAME", "PUBLIC IP", "SUBNET", ...(showV6 ? ["PUBLIC IPV6", "IPV6 SUBNET"] : []), "BACKEND", "STATE", "LAST SEEN"]];
  for (const n of sorted) {
    const ipv6 = showV6 ? [n.publicIpv6 ?? "-", n.ipv6Subnet ?? "-"] : [];
    rows.push([n.name === s.node ? "*" : "", n.name, n.publicIp ?? "-", n.subnet ?? "-", ...ipv6, n.backend, n.state, n.name === s.node ? "self" : relativeTime(n.lastSeen, nowMs)]);
  }
  const problems = (s.problems ?? []).map((p) => `problem: ${p}\n`).join("");
  return `${head}${problems}\n${table(rows)}`;
}
