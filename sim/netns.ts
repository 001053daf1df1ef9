/**
 * Network-namespace test harness for kernel tests (root only).
 *
 * Everything lives in namespaces named `<prefix><random>-...`, so parallel suites and
 * engineers never collide and nothing touches the host's interfaces. A topology is an
 * underlay namespace holding bridge br0 (192.0.2.1/24) with one veth per node namespace
 * (`eth0`, 192.0.2.11, .12, ...; default route via 192.0.2.1) plus optional pod
 * namespaces attached to a bridge inside a node. FFI code is exercised by running a Bun
 * script as a child under `ip netns exec` (setns would move only the JS thread), which
 * also keeps a libnl assert from killing the test runner.
 *
 * @example
 * const skip = requireRoot();
 * describe.skipIf(!!skip)("two nodes", () => {
 *   let topo: Topology;
 *   beforeAll(() => { topo = createTopology({ prefix: "wtf-", nodes: 2 }); });
 *   afterAll(() => topo?.cleanup());
 *   test("ping", () => expect(ping(topo.nodes[0]!.ns, topo.nodes[1]!.ip)).toBe(true));
 * });
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";

/** Absolute path of the repository root, for imports inside scripts run by {@link runTs}. */
export const REPO = resolve(import.meta.dir, "..");

const IP = Bun.which("ip") ?? Bun.which("ip", { PATH: "/usr/sbin:/sbin:/usr/bin:/bin" }) ?? "/usr/sbin/ip";

/** Why kernel tests cannot run here, or undefined when they can. Use with `describe.skipIf`. */
export function requireRoot(): string | undefined {
  if (process.platform !== "linux") return "kernel tests need Linux";
  if (process.getuid?.() !== 0) return "kernel tests need root (they create network namespaces)";
  if (!Bun.which("ip") && !Bun.which("ip", { PATH: "/usr/sbin:/sbin" })) return "kernel tests need iproute2 (`ip`)";
  return undefined;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Throw when the command exits non-zero (default true). */
  check?: boolean;
  stdin?: string;
  timeoutMs?: number;
}

/** Runs a command in the current (test runner's) namespace; use only for `ip netns ...`. */
export function sh(cmd: string[], { check = true, stdin, timeoutMs = 20_000 }: ExecOptions = {}): ExecResult {
  const p = Bun.spawnSync(cmd, { stdin: stdin !== undefined ? Buffer.from(stdin) : "ignore", timeout: timeoutMs });
  const r = { code: p.exitCode ?? -1, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
  if (check && r.code !== 0) throw new Error(`${cmd.join(" ")} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r;
}

/** Runs `cmd` inside namespace `ns` and waits for it. */
export function exec(ns: string, cmd: string[], opts: ExecOptions = {}): ExecResult {
  return sh([IP, "netns", "exec", ns, ...cmd], opts);
}

/** `ip -n ns <args>`; with `-j` in args the parsed JSON is returned by {@link ipJson}. */
export function ip(ns: string, ...args: string[]): ExecResult {
  return sh([IP, "-n", ns, ...args]);
}

/** `ip -j -n ns <args>` parsed (for reading state back independently of weft). */
export function ipJson<T = any>(ns: string, ...args: string[]): T {
  const out = sh([IP, "-j", "-n", ns, ...args]).stdout.trim();
  return (out === "" ? [] : JSON.parse(out)) as T;
}

/** `bridge -j fdb show` inside ns, parsed. */
export function bridgeFdb(ns: string, dev: string): any[] {
  const out = exec(ns, ["bridge", "-j", "fdb", "show", "dev", dev]).stdout.trim();
  return out === "" ? [] : JSON.parse(out);
}

/** Starts `cmd` inside `ns` without waiting; stdout/stderr are pipes. */
export function spawn(ns: string, cmd: string[], opts: { env?: Record<string, string>; stdin?: "pipe" | "ignore" } = {}): Subprocess<"pipe" | "ignore", "pipe", "pipe"> {
  return Bun.spawn([IP, "netns", "exec", ns, ...cmd], {
    stdin: opts.stdin ?? "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...opts.env },
  });
}

/**
 * Sends ICMP echo from `fromNs` to `ip` until one reply or the deadline; true on a reply.
 * One probe per second-long ping run so a first lost packet (ARP warm-up) is retried.
 */
export function ping(fromNs: string, ip: string, { deadlineMs = 5000 }: { deadlineMs?: number } = {}): boolean {
  const end = Date.now() + deadlineMs;
  do {
    if (exec(fromNs, ["ping", "-n", "-q", "-c", "1", "-W", "1", ip], { check: false }).code === 0) return true;
  } while (Date.now() < end);
  return false;
}

/** A fresh name `<prefix><8 hex>`; keep prefixes short, namespaces get suffixes. */
export function uniqueName(prefix: string): string {
  return prefix + randomBytes(4).toString("hex");
}

/** Names of existing namespaces starting with `prefix`. */
export function listNamespaces(prefix: string): string[] {
  return sh([IP, "netns", "list"])
    .stdout.split("\n")
    .map((l) => l.split(" ")[0]!)
    .filter((n) => n && n.startsWith(prefix));
}

/**
 * Runs TypeScript `source` with Bun inside `ns`, passing `input` as JSON on stdin, and
 * returns the JSON printed on the last non-empty stdout line. Scripts import project code
 * by absolute path, e.g. `import { openNetlink } from "${REPO}/src/sys/libnl.ts"`, and read
 * input with `await Bun.stdin.json()`. Throws with the exit code and stderr on failure
 * (an abort from a libnl assert shows as exit 134).
 */
export async function runTs<T = unknown>(ns: string, source: string, input: unknown = null, { timeoutMs = 20_000 } = {}): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "wtf-script-"));
  const file = join(dir, "script.ts");
  writeFileSync(file, source);
  try {
    const p = Bun.spawn([IP, "netns", "exec", ns, process.execPath, file], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    p.stdin.write(JSON.stringify(input));
    p.stdin.end();
    const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    clearTimeout(timer);
    if (code !== 0) throw new Error(`script in ${ns} exited ${code}${p.signalCode ? ` (${p.signalCode})` : ""}: ${stderr.trim() || stdout.trim()}`);
    const last = stdout.trim().split("\n").pop() ?? "";
    try {
      return JSON.parse(last) as T;
    } catch {
      throw new Error(`script in ${ns} printed no JSON result; stdout: ${stdout.trim()} stderr: ${stderr.trim()}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export type NetlinkOp = { method: string; args?: unknown[] };
export type NetlinkResult = { ok: true; value: unknown } | { ok: false; error: string };

const BATCH_SOURCE = `
import { openNetlink } from ${JSON.stringify(join(REPO, "src/sys/libnl.ts"))};
const ops = await Bun.stdin.json();
const nl = openNetlink();
const results = [];
for (const op of ops) {
  try {
    const value = nl[op.method](...(op.args ?? []));
    results.push({ ok: true, value: value ?? null });
  } catch (e) {
    results.push({ ok: false, error: e.message });
  }
}
nl.close();
console.log(JSON.stringify(results));
`;

/**
 * Calls Netlink methods (src/sys/netlink.ts) in order through the real libnl
 * implementation inside `ns`, one child process for the whole batch. Each result is
 * `{ ok: true, value }` or `{ ok: false, error }` with the thrown message.
 */
export function netlinkBatch(ns: string, ops: NetlinkOp[]): Promise<NetlinkResult[]> {
  return runTs<NetlinkResult[]>(ns, BATCH_SOURCE, ops);
}

/** Like {@link netlinkBatch} but throws on the first failed op and returns the values. */
export async function netlinkOk(ns: string, ops: NetlinkOp[]): Promise<unknown[]> {
  const results = await netlinkBatch(ns, ops);
  return results.map((r, i) => {
    if (!r.ok) throw new Error(`${ops[i]!.method}: ${r.error}`);
    return r.value;
  });
}

/** A group of namespaces and child processes torn down together. */
export class NamespaceGroup {
  readonly id: string;
  private readonly names: string[] = [];
  private readonly procs: Subprocess[] = [];
  private cleaned = false;
  private readonly onExit = () => this.cleanupSync();

  constructor(prefix: string) {
    if (!/^[a-z0-9][a-z0-9-]{0,11}$/.test(prefix)) throw new Error(`namespace prefix ${JSON.stringify(prefix)} must be 1-12 of [a-z0-9-]`);
    this.id = uniqueName(prefix);
    // Last resort when a test runner dies without running afterAll.
    process.once("exit", this.onExit);
  }

  /** Creates namespace `<id>-<suffix>` with loopback up and returns its name. */
  add(suffix: string): string {
    const ns = `${this.id}-${suffix}`;
    sh([IP, "netns", "add", ns]);
    this.names.push(ns);
    ip(ns, "link", "set", "lo", "up");
    return ns;
  }

  /** {@link spawn} with the process killed at cleanup. */
  spawn(ns: string, cmd: string[], opts?: Parameters<typeof spawn>[2]): ReturnType<typeof spawn> {
    const p = spawn(ns, cmd, opts);
    this.procs.push(p);
    return p;
  }

  /** Kills tracked processes, deletes every namespace of this group; safe to call twice. */
  async cleanup(): Promise<void> {
    for (const p of this.procs) if (p.exitCode === null) p.kill("SIGKILL");
    await Promise.all(this.procs.map((p) => p.exited));
    this.cleanupSync();
  }

  /** Synchronous teardown (kills without waiting); prefer {@link cleanup} in tests. */
  cleanupSync(): void {
    if (this.cleaned) return;
    for (const p of this.procs) if (p.exitCode === null) p.kill("SIGKILL");
    // Deleting a namespace destroys its veths, so peers in other namespaces go too.
    for (const ns of [...this.names].reverse()) sh([IP, "netns", "del", ns], { check: false });
    for (const ns of listNamespaces(this.id)) sh([IP, "netns", "del", ns], { check: false });
    this.cleaned = true;
    process.removeListener("exit", this.onExit);
  }
}

export interface TopologyNode {
  /** Namespace name. */
  ns: string;
  /** Underlay interface inside the node namespace. */
  iface: "eth0";
  /** Underlay address: the IPv4 one ("192.0.2.11"), or the IPv6 one on an IPv6-only underlay. */
  ip: string;
  /** Underlay prefix length of `ip` (24, or 64). */
  prefix: number;
  /** The IPv6 underlay address ("2001:db8::11"), on an underlay with IPv6. */
  ipv6?: string;
}

/** The address families of the underlay: IPv4 only (the default), both, IPv6 only. */
export type UnderlayFamilies = "ipv4" | "dual" | "ipv6";

export interface PodOptions {
  /** Pod address with prefix, e.g. "10.244.1.2/24". */
  cidr: string;
  /** Pod default gateway (the bridge address), e.g. "10.244.1.1". */
  gateway?: string;
  /** Bridge in the node namespace to attach the host-side veth to (must exist). */
  bridge?: string;
}

export interface Pod {
  ns: string;
  /** Pod address without prefix. */
  ip: string;
  /** Host-side veth name in the node namespace. */
  hostVeth: string;
}

export interface Topology {
  id: string;
  /** The underlay bridge and its gateway addresses (192.0.2.1, and 2001:db8::1 with IPv6). */
  underlay: { ns: string; bridge: "br0"; gateway: string; gatewayV6?: string };
  nodes: TopologyNode[];
  /** Creates a pod namespace whose eth0 is a veth peered into `node`'s namespace. */
  addPod(node: number | TopologyNode, opts: PodOptions): Pod;
  exec(ns: string, cmd: string[], opts?: ExecOptions): ExecResult;
  /** Starts a process in `ns`, killed at cleanup. */
  spawn(ns: string, cmd: string[], opts?: Parameters<typeof spawn>[2]): ReturnType<typeof spawn>;
  runTs<T = unknown>(ns: string, source: string, input?: unknown): Promise<T>;
  /** Extra namespace in this topology's group (cleaned up with it). */
  addNamespace(suffix: string): string;
  cleanup(): Promise<void>;
}

/**
 * Builds the underlay and `nodes` node namespaces. Node i (0-based) gets 192.0.2.(11+i)/24
 * on eth0 and a default route via 192.0.2.1 (br0 in the underlay namespace), so
 * "interface of the default route" discovery works as on a real host. With `underlay`
 * "dual" it also gets 2001:db8::(11+i)/64 and an IPv6 default route via 2001:db8::1;
 * with "ipv6" only those (documentation prefix, inside the test's namespaces only;
 * addresses without duplicate address detection, so they are usable at once).
 * On any failure everything created so far is removed before the error propagates.
 */
export function createTopology({ prefix = "wtf-", nodes = 2, underlay = "ipv4" }: { prefix?: string; nodes?: number; underlay?: UnderlayFamilies } = {}): Topology {
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 200) throw new Error(`nodes must be 1..200, got ${nodes}`);
  const v4 = underlay !== "ipv6";
  const v6 = underlay !== "ipv4";
  const group = new NamespaceGroup(prefix);
  try {
    const ul = group.add("ul");
    ip(ul, "link", "add", "br0", "type", "bridge");
    if (v4) ip(ul, "addr", "add", "192.0.2.1/24", "dev", "br0");
    if (v6) ip(ul, "addr", "add", "2001:db8::1/64", "dev", "br0", "nodad");
    ip(ul, "link", "set", "br0", "up");
    const list: TopologyNode[] = [];
    for (let i = 0; i < nodes; i++) {
      const ns = group.add(`n${i}`);
      const addr = `192.0.2.${11 + i}`;
      const addr6 = `2001:db8::${11 + i}`;
      ip(ul, "link", "add", `n${i}`, "type", "veth", "peer", "name", "eth0", "netns", ns);
      ip(ul, "link", "set", `n${i}`, "master", "br0", "up");
      if (v4) ip(ns, "addr", "add", `${addr}/24`, "dev", "eth0");
      if (v6) ip(ns, "addr", "add", `${addr6}/64`, "dev", "eth0", "nodad");
      ip(ns, "link", "set", "eth0", "up");
      if (v4) ip(ns, "route", "add", "default", "via", "192.0.2.1", "dev", "eth0");
      if (v6) ip(ns, "-6", "route", "add", "default", "via", "2001:db8::1", "dev", "eth0");
      list.push({ ns, iface: "eth0", ip: v4 ? addr : addr6, prefix: v4 ? 24 : 64, ...(v6 ? { ipv6: addr6 } : {}) });
    }
    let pods = 0;
    return {
      id: group.id,
      underlay: { ns: ul, bridge: "br0", gateway: v4 ? "192.0.2.1" : "2001:db8::1", ...(v6 ? { gatewayV6: "2001:db8::1" } : {}) },
      nodes: list,
      addPod(node, { cidr, gateway, bridge = "cni0" }) {
        const n = typeof node === "number" ? list[node] : node;
        if (!n) throw new Error(`addPod: no node ${String(node)}`);
        const k = pods++;
        const ns = group.add(`p${k}`);
        const hostVeth = `wtfp${k}`;
        ip(n.ns, "link", "add", hostVeth, "type", "veth", "peer", "name", "eth0", "netns", ns);
        ip(n.ns, "link", "set", hostVeth, "master", bridge, "up");
        ip(ns, "addr", "add", cidr, "dev", "eth0");
        ip(ns, "link", "set", "eth0", "up");
        if (gateway) ip(ns, "route", "add", "default", "via", gateway, "dev", "eth0");
        return { ns, ip: cidr.split("/")[0]!, hostVeth };
      },
      exec,
      spawn: (ns, cmd, opts) => group.spawn(ns, cmd, opts),
      runTs: (ns, source, input) => runTs(ns, source, input),
      addNamespace: (suffix) => group.add(suffix),
      cleanup: () => group.cleanup(),
    };
  } catch (e) {
    group.cleanupSync();
    throw e;
  }
}

/**
 * Line-by-line reader over a child's stdout, for waiting on output with a deadline:
 * `const out = new Lines(proc.stdout); await out.waitFor((l) => l.includes("ready"), 5000)`.
 */
export class Lines {
  readonly seen: string[] = [];
  private waiters: { pred: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  private ended = false;
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = (async () => {
      const decoder = new TextDecoder();
      let rest = "";
      for await (const chunk of stream) {
        rest += decoder.decode(chunk, { stream: true });
        let i: number;
        while ((i = rest.indexOf("\n")) >= 0) {
          this.push(rest.slice(0, i));
          rest = rest.slice(i + 1);
        }
      }
      if (rest) this.push(rest);
      this.ended = true;
    })();
  }

  private push(line: string): void {
    this.seen.push(line);
    this.waiters = this.waiters.filter((w) => {
      if (!w.pred(line)) return true;
      w.resolve(line);
      return false;
    });
  }

  /** Resolves with the first line (already seen or future) matching `pred`; rejects at the deadline. */
  waitFor(pred: (line: string) => boolean, timeoutMs: number): Promise<string> {
    const hit = this.seen.find(pred);
    if (hit !== undefined) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`no matching line within ${timeoutMs} ms${this.ended ? " (stream ended)" : ""}; saw: ${this.seen.slice(-10).join(" | ")}`));
      }, timeoutMs);
      const done = (l: string) => {
        clearTimeout(timer);
        resolve(l);
      };
      this.waiters.push({ pred, resolve: done });
    });
  }
}

/** Writes `source` to a temp file and returns its path and a remover (for {@link spawn} of `bun <file>`). */
export function tempScript(source: string): { file: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), "wtf-script-"));
  const file = join(dir, "script.ts");
  writeFileSync(file, source);
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Resolves with the exit code, or rejects if the process is still running at the deadline. */
export function exitWithin(p: Subprocess, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`process ${p.pid} still running after ${timeoutMs} ms`)), timeoutMs);
    p.exited.then((code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}
