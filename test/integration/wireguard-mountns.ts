/**
 * wireguard-go keeps its UAPI socket in /var/run/wireguard/<ifname>.sock, a directory
 * compiled into it and shared by every network namespace of a machine: two test nodes
 * would both use /var/run/wireguard/weft-wg.sock. So each node gets a mount namespace
 * of its own with a private tmpfs on /run/wireguard (/var/run is /run), held open by a
 * `sleep` process; the node's agent, its wireguard-go and any `wg` run inside it via
 * `nsenter -t <holder> -m`. Nothing is mounted in the test runner's mount namespace.
 */
import { mkdirSync } from "node:fs";
import type { Subprocess } from "bun";
import { Lines, sh } from "../../sim/netns.ts";

export const WG_SOCKET_DIR = "/run/wireguard";

export class WireguardMountNs {
  private constructor(private readonly holder: Subprocess<"ignore", "pipe", "pipe">) {}

  /** A new mount namespace with an empty tmpfs on /run/wireguard. */
  static async create(): Promise<WireguardMountNs> {
    // The mount point must exist; an empty directory, as wireguard-go itself would make.
    mkdirSync(WG_SOCKET_DIR, { recursive: true });
    const holder = Bun.spawn(["unshare", "--mount", "--propagation", "private", "sh", "-c", `mount -t tmpfs -o mode=0700 tmpfs ${WG_SOCKET_DIR} && echo mounted && exec sleep 86400`], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    await new Lines(holder.stdout).waitFor((l) => l === "mounted", 5000);
    return new WireguardMountNs(holder);
  }

  /** argv that runs `cmd` in this mount namespace and network namespace `ns`. */
  argv(ns: string, cmd: string[]): string[] {
    return ["nsenter", "-t", String(this.holder.pid), "-m", "ip", "netns", "exec", ns, ...cmd];
  }

  /** Runs `cmd` here, in network namespace `ns`, and waits for it. */
  exec(ns: string, cmd: string[], opts: { check?: boolean } = {}) {
    return sh(this.argv(ns, cmd), opts);
  }

  close(): void {
    if (this.holder.exitCode === null) this.holder.kill("SIGKILL");
  }
}

/** Kills every process in network namespace `ns` (agents, wireguard-go daemons), by pid. */
export function killNamespaceProcesses(ns: string): void {
  for (const pid of sh(["ip", "netns", "pids", ns], { check: false }).stdout.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** `wg show <dev> dump` parsed: the interface line, then one entry per peer. */
export function parseWgDump(text: string): { publicKey: string; listenPort: number; peers: { publicKey: string; endpoint: string; allowedIps: string; latestHandshake: number; rx: number; tx: number; keepalive: string }[] } {
  const [dev, ...peers] = text.trim().split("\n").map((l) => l.split("\t"));
  return {
    publicKey: dev?.[1] ?? "",
    listenPort: Number(dev?.[2]),
    peers: peers.map((p) => ({ publicKey: p[0]!, endpoint: p[2]!, allowedIps: p[3]!, latestHandshake: Number(p[4]), rx: Number(p[5]), tx: Number(p[6]), keepalive: p[7]! })),
  };
}
