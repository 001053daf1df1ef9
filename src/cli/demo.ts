/**
 * `weft demo`: a throwaway N-node weft cluster on one machine, built from network
 * namespaces, to see the product work end to end.
 *
 *   <prefix>-ul        underlay: bridge br0; one veth per node (192.0.2.0/24)
 *   <prefix>-nodeI     a "node": eth0 = 192.0.2.(10+I), runs `weft agent` (same binary)
 *   <prefix>-podI      a "pod" on nodeI's cni0, plumbed by weft's own CNI plugin (this
 *                      binary with CNI_COMMAND=ADD, as a container runtime calls it) from
 *                      nodeI's subnet.env; no other CNI plugin is needed
 *
 * It then checks every pod from every other pod with `weft probe` (an ICMP echo of weft's
 * own, run inside the pod's namespace, so iputils is not needed either), prints
 * `weft status` from node1 and tears everything down (also on Ctrl-C/SIGTERM and on error). The lab itself is built with
 * `ip` (a lab, not the product's dataplane, which is programmed through netlink); nothing
 * is changed in the host's own namespace. `--keep` leaves it running; `--cleanup` removes
 * anything left under the prefix.
 *
 * Its files (the cluster key, agent state and logs) go to a fresh directory made by
 * mkdtemp in the system temp dir (random name, mode 0700, ours): a predictable path there
 * could be prepared by another user beforehand (a symlink or a directory of theirs) to
 * read the key or feed the agents. It carries a marker file so `--cleanup` can find the
 * demo's directories later and remove only those.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parseSubnetEnv } from "../subnet-env.ts";
import { cniConfig, DEMO_API, DEMO_BACKENDS, DEMO_MARKER, type DemoBackend, type DemoOptions, type DemoPlan, planDemo, selfCommand, setupCommands } from "./demo-plan.ts";

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

function run(args: string[], { allowFail = false, input }: { allowFail?: boolean; input?: string } = {}): { code: number; out: string; err: string } {
  const r = Bun.spawnSync(args, { stdin: input === undefined ? "ignore" : new TextEncoder().encode(input), stdout: "pipe", stderr: "pipe" });
  const res = { code: r.exitCode ?? 1, out: r.stdout.toString(), err: r.stderr.toString() };
  if (res.code !== 0 && !allowFail) throw new Error(`${args.join(" ")}: exit ${res.code}: ${res.err.trim() || res.out.trim()}`);
  return res;
}

/** Namespaces whose names start with `<prefix>-` (the only ones demo touches). */
export function demoNamespaces(prefix: string, netnsList: string): string[] {
  return netnsList
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter((n) => n.startsWith(`${prefix}-`));
}

/**
 * A new private directory for one demo run: `<tmp>/<prefix>-XXXXXX`, mode 0700, with
 * the marker file. `parent` defaults to the system temp dir.
 */
export function makeDemoDir(prefix: string, parent = tmpdir()): string {
  const dir = mkdtempSync(join(parent, `${prefix}-`));
  writeFileSync(join(dir, DEMO_MARKER), "weft demo files; removed by weft demo --cleanup\n", { mode: 0o600, flag: "wx" });
  return dir;
}

/**
 * The demo directories of `prefix` in `parent`: names from {@link makeDemoDir}, real
 * directories (not symlinks) owned by us with mode 0700 and the marker file. Anything
 * else with a similar name belongs to somebody else and is left alone.
 */
export function demoDirs(prefix: string, parent = tmpdir(), uid = process.geteuid?.() ?? 0): string[] {
  // planDemo allows only [a-z0-9-] in a prefix: nothing to escape.
  const name = new RegExp(`^${prefix}-[A-Za-z0-9]{6}$`);
  const out: string[] = [];
  for (const entry of readdirSync(parent)) {
    if (!name.test(entry)) continue;
    const dir = join(parent, entry);
    try {
      const st = lstatSync(dir);
      if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o777) !== 0o700) continue;
      if (!lstatSync(join(dir, DEMO_MARKER)).isFile()) continue;
      out.push(dir);
    } catch {}
  }
  return out;
}

/**
 * Removes everything under `prefix`: stops the processes inside its namespaces (only
 * those), deletes the namespaces (their veths, bridges and routes go with them) and the
 * demo directories `dirs`. Returns the namespaces it removed.
 */
export async function cleanupDemo(prefix: string, dirs: string[]): Promise<string[]> {
  const namespaces = demoNamespaces(prefix, run(["ip", "netns", "list"], { allowFail: true }).out);
  const pids = new Set<number>();
  for (const ns of namespaces) {
    for (const p of run(["ip", "netns", "pids", ns], { allowFail: true }).out.split(/\s+/)) if (/^\d+$/.test(p)) pids.add(Number(p));
  }
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {}
  }
  const deadline = Date.now() + 5000;
  while ([...pids].some(alive) && Date.now() < deadline) await Bun.sleep(50);
  for (const pid of pids) {
    if (alive(pid)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
  }
  // Pods and nodes before the underlay, so no veth end outlives its peer's namespace.
  const order = [...namespaces].sort((a, b) => Number(a.endsWith("-ul")) - Number(b.endsWith("-ul")));
  for (const ns of order) run(["ip", "netns", "del", ns], { allowFail: true });
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  return order;
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined | null, check?: () => void): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    check?.();
    const v = probe();
    if (v !== undefined && v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await Bun.sleep(200);
  }
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).map((l) => `    ${l}`).join("\n");
  } catch {
    return "    (no log)";
  }
}

const usage = `usage: weft demo [--backend vxlan|host-gw|udp|wireguard] [--nodes N] [--keep] [--prefix P]
       weft demo --cleanup [--prefix P]
`;

export async function demoCommand(argv: string[], io: Io = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) }): Promise<number> {
  let values: { backend?: string; nodes?: string; keep?: boolean; cleanup?: boolean; prefix?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { backend: { type: "string" }, nodes: { type: "string" }, keep: { type: "boolean" }, cleanup: { type: "boolean" }, prefix: { type: "string" }, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    io.err(`weft demo: ${(e as Error).message}\n${usage}`);
    return 2;
  }
  if (values.help) {
    io.out(usage);
    return 0;
  }
  const backend = (values.backend ?? "vxlan") as DemoBackend;
  if (!DEMO_BACKENDS.includes(backend)) {
    io.err(`weft demo: --backend: expected vxlan, host-gw, udp or wireguard, got ${JSON.stringify(values.backend)}\n`);
    return 2;
  }
  const nodesText = values.nodes ?? "3";
  const prefix = values.prefix ?? "weft-demo";
  const opts = (dir: string): DemoOptions => ({ backend, nodes: Number(nodesText), prefix, dir, weft: selfCommand(), network: "10.244.0.0/16" });
  try {
    if (!/^\d+$/.test(nodesText)) throw new RangeError(`--nodes: expected 2..50, got ${JSON.stringify(nodesText)}`);
    planDemo(opts(tmpdir())); // validates before anything is created
  } catch (e) {
    io.err(`weft demo: ${(e as Error).message}\n`);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    io.err("weft demo: needs root (it creates network namespaces); try: sudo weft demo\n");
    return 1;
  }
  if (values.cleanup) {
    const dirs = demoDirs(prefix);
    const removed = await cleanupDemo(prefix, dirs);
    io.out(removed.length ? `removed ${removed.length} namespaces: ${removed.join(" ")}\n` : `nothing to clean up under ${prefix}-*\n`);
    if (dirs.length) io.out(`removed ${dirs.join(" ")}\n`);
    return 0;
  }
  return runDemo(planDemo(opts(makeDemoDir(prefix))), !!values.keep, io);
}

export async function runDemo(plan: DemoPlan, keep: boolean, io: Io): Promise<number> {
  const { prefix, dir } = plan.opts;
  const leftovers = demoNamespaces(prefix, run(["ip", "netns", "list"], { allowFail: true }).out);
  const refuse = (why: string) => {
    rmSync(dir, { recursive: true, force: true });
    io.err(`weft demo: ${why}\n`);
    return 1;
  };
  if (leftovers.length) return refuse(`namespaces from an earlier demo exist (${leftovers.join(" ")}); remove them with: weft demo --cleanup${prefix === "weft-demo" ? "" : ` --prefix ${prefix}`}`);

  const children: ChildProcess[] = [];
  let cleaning: Promise<unknown> | null = null;
  const cleanup = () => (cleaning ??= (async () => {
    io.out("cleaning up ...\n");
    const removed = await cleanupDemo(prefix, [dir]);
    io.out(`removed ${removed.length} namespaces and ${dir}\n`);
  })());
  const onSignal = (sig: NodeJS.Signals) => {
    io.err(`\nweft demo: ${sig}, stopping\n`);
    void cleanup().finally(() => process.exit(sig === "SIGINT" ? 130 : 143));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  try {
    io.out(`building a ${plan.nodes.length}-node weft cluster (${plan.opts.backend}) in namespaces ${prefix}-*\n`);
    writeFileSync(plan.nodes[0]!.keyFile, randomBytes(32).toString("base64") + "\n", { mode: 0o600, flag: "wx" });
    for (const cmd of setupCommands(plan)) run(cmd);

    for (const n of plan.nodes) {
      mkdirSync(n.stateDir, { recursive: true, mode: 0o700 });
      writeFileSync(n.netConfFile, JSON.stringify(plan.netConf, null, 2) + "\n");
      const log = openSync(n.logFile, "a");
      // Detached (a process group of its own): Ctrl-C reaches only the demo, which stops agents in order; with
      // --keep they outlive it.
      const child = spawn(n.agentArgv[0]!, n.agentArgv.slice(1), { stdio: ["ignore", log, log], detached: true });
      closeSync(log);
      child.unref();
      children.push(child);
      io.out(`  ${n.name}: ${n.ip} in ${n.ns}, agent pid ${child.pid}, log ${n.logFile}\n`);
    }

    const checkAgents = () => {
      plan.nodes.forEach((n, i) => {
        const c = children[i]!;
        if (c.exitCode !== null || c.signalCode !== null) throw new Error(`agent on ${n.name} exited (${c.exitCode ?? c.signalCode}); last log lines:\n${tail(n.logFile)}`);
      });
    };

    for (const n of plan.nodes) {
      const env = await waitFor(`${n.name}'s lease (${n.subnetFile})`, 60_000, () => {
        if (!existsSync(n.subnetFile)) return null;
        const e = parseSubnetEnv(readFileSync(n.subnetFile, "utf8"));
        return e.FLANNEL_SUBNET ? e : null;
      }, checkAgents);
      io.out(`  ${n.name}: lease ${env.FLANNEL_SUBNET} (mtu ${env.FLANNEL_MTU})\n`);
    }

    const podIps: string[] = [];
    for (const n of plan.nodes) {
      // As a runtime calls a plugin: CNI_* environment, the network configuration on stdin.
      const cniEnv = ["CNI_COMMAND=ADD", `CNI_CONTAINERID=${n.podNs}`, `CNI_NETNS=/run/netns/${n.podNs}`, "CNI_IFNAME=eth0", `CNI_PATH=${process.env.CNI_PATH ?? "/opt/cni/bin"}`];
      const r = run(["ip", "netns", "exec", n.ns, "env", ...cniEnv, ...plan.opts.weft], { input: JSON.stringify(cniConfig(n)), allowFail: true });
      const ip = r.code === 0 ? String((JSON.parse(r.out) as { ips?: { address: string }[] }).ips?.[0]?.address ?? "").split("/")[0] : "";
      if (!ip) throw new Error(`weft CNI ADD on ${n.name} failed (exit ${r.code}): ${r.out.trim() || r.err.trim()}`);
      podIps.push(ip);
      io.out(`  pod${n.index}: ${ip} on ${n.name}'s cni0 (${n.podNs})\n`);
    }

    io.out("\nprobing every pod from every other pod (ICMP echo, weft probe) ...\n");
    const ok = await pingMatrix(plan, podIps, io, checkAgents);

    io.out(`\n$ ip netns exec ${plan.nodes[0]!.ns} weft status\n`);
    const st = run(["ip", "netns", "exec", plan.nodes[0]!.ns, ...plan.opts.weft, "status", "--api", DEMO_API], { allowFail: true });
    io.out(st.out + st.err);

    if (keep) {
      io.out(`\nthe cluster keeps running. Explore:
  ip netns exec ${plan.nodes[0]!.podNs} ${plan.opts.weft.join(" ")} probe ${podIps[1]}   (or ping, if iputils is installed)
  ip netns exec ${plan.nodes[0]!.ns} ${plan.opts.weft.join(" ")} status
  ip netns exec ${plan.nodes[0]!.ns} ip route; ip netns exec ${plan.nodes[0]!.ns} bridge fdb show
  less ${plan.nodes[0]!.logFile}
remove it with: weft demo --cleanup${prefix === "weft-demo" ? "" : ` --prefix ${prefix}`}\n`);
    } else {
      await cleanup();
    }
    io.out(ok ? `\nall ${podIps.length * (podIps.length - 1)} pod-to-pod probes answered\n` : "\nsome pods could not reach each other\n");
    return ok && st.code === 0 ? 0 : 1;
  } catch (e) {
    io.err(`weft demo: ${(e as Error).message}\n`);
    await cleanup();
    return 1;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** Probes each pod from each other pod, retrying while routes converge; prints a matrix. */
async function pingMatrix(plan: DemoPlan, podIps: string[], io: Io, check: () => void): Promise<boolean> {
  const n = podIps.length;
  const ok: boolean[][] = Array.from({ length: n }, () => Array<boolean>(n).fill(false));
  const deadline = Date.now() + 30_000;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (i === j) continue;
      for (;;) {
        check();
        const r = run(["ip", "netns", "exec", plan.nodes[i]!.podNs, ...plan.opts.weft, "probe", "--timeout-ms", "1000", podIps[j]!], { allowFail: true });
        if (r.code === 0) {
          ok[i]![j] = true;
          break;
        }
        if (Date.now() > deadline) break;
        await Bun.sleep(200);
      }
    }
  }
  const head = ["from \\ to", ...podIps];
  const rows = podIps.map((ip, i) => [`pod${i + 1} ${ip}`, ...podIps.map((_, j) => (i === j ? "-" : ok[i]![j] ? "ok" : "FAIL"))]);
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  for (const r of [head, ...rows]) io.out(("  " + r.map((c, k) => c.padEnd(widths[k]!)).join("  ")).trimEnd() + "\n");
  return ok.every((row, i) => row.every((v, j) => v || i === j));
}
