/**
 * The plan of a `weft demo` lab as data (demo.ts runs it): which namespaces, addresses and
 * files each node gets, and the `ip` commands that build the lab. Pure, so the layout is
 * unit-tested without root.
 */
import { join, resolve } from "node:path";

export const DEMO_BACKENDS = ["vxlan", "host-gw", "udp", "wireguard"] as const;
export type DemoBackend = (typeof DEMO_BACKENDS)[number];

/**
 * wireguard on a kernel without the module runs one wireguard-go per node, and
 * wireguard-go keeps its control socket in /var/run/wireguard/<device>.sock: every node's
 * weft-wg would take the same path. Each node's agent therefore gets its own empty
 * /var/run/wireguard, a tmpfs mounted inside the mount namespace `ip netns exec` gives
 * it (mounts there do not reach the host), which its wireguard-go inherits.
 */
const PRIVATE_WIREGUARD_SOCKETS = 'mkdir -p /var/run/wireguard && mount -t tmpfs -o mode=0700 weft-demo /var/run/wireguard && exec "$@"';

export interface DemoOptions {
  backend: DemoBackend;
  nodes: number;
  prefix: string;
  /** Where per-node files go (net-conf, key, state, subnet.env, logs). */
  dir: string;
  /** How to run weft itself, e.g. ["/usr/local/bin/weft"] or ["bun", "src/main.ts"]. */
  weft: string[];
  network: string;
}

export interface NodePlan {
  index: number;
  name: string;
  ns: string;
  podNs: string;
  /** Underlay address of the node. */
  ip: string;
  /** The node's veth end in the underlay namespace. */
  ulIf: string;
  dir: string;
  netConfFile: string;
  keyFile: string;
  stateDir: string;
  subnetFile: string;
  logFile: string;
  /** The full command line: `ip netns exec <ns> weft agent ...`. */
  agentArgv: string[];
}

export interface DemoPlan {
  opts: DemoOptions;
  underlayNs: string;
  netConf: Record<string, unknown>;
  nodes: NodePlan[];
}

export const DEMO_GOSSIP_PORT = 7946;
/** Marker file in every demo directory: `--cleanup` removes only directories that carry it. */
export const DEMO_MARKER = ".weft-demo";
export const DEMO_API = "http://127.0.0.1:7947";

/** The whole lab as data (pure): names, addresses, files and command lines. */
export function planDemo(opts: DemoOptions): DemoPlan {
  if (!Number.isInteger(opts.nodes) || opts.nodes < 2 || opts.nodes > 50) throw new RangeError(`--nodes: expected 2..50, got ${opts.nodes}`);
  if (!/^[a-z][a-z0-9-]{0,19}$/.test(opts.prefix)) throw new RangeError(`--prefix: expected 1-20 lowercase letters, digits or '-', starting with a letter, got ${JSON.stringify(opts.prefix)}`);
  const backend: Record<string, unknown> = { Type: opts.backend };
  const netConf = { Network: opts.network, SubnetLen: 24, Backend: backend };
  const seed = `192.0.2.11:${DEMO_GOSSIP_PORT}`;
  const nodes: NodePlan[] = [];
  for (let i = 1; i <= opts.nodes; i++) {
    const dir = join(opts.dir, `node${i}`);
    const n: Omit<NodePlan, "agentArgv"> = {
      index: i,
      name: `node${i}`,
      ns: `${opts.prefix}-node${i}`,
      podNs: `${opts.prefix}-pod${i}`,
      ip: `192.0.2.${10 + i}`,
      ulIf: `n${i}`,
      dir,
      netConfFile: join(dir, "net-conf.json"),
      keyFile: join(opts.dir, "cluster.key"),
      stateDir: join(dir, "state"),
      subnetFile: join(dir, "subnet.env"),
      logFile: join(dir, "agent.log"),
    };
    const agentArgv = [
      "ip", "netns", "exec", n.ns,
      ...(opts.backend === "wireguard" ? ["sh", "-c", PRIVATE_WIREGUARD_SOCKETS, "weft-demo-agent"] : []),
      ...opts.weft, "agent",
      "--net-conf", n.netConfFile,
      "--node-name", n.name,
      "--iface", "eth0",
      "--public-ip", n.ip,
      "--gossip-port", String(DEMO_GOSSIP_PORT),
      // Every node gets the same seed list; node1 skips itself and bootstraps.
      "--join", seed,
      "--key-file", n.keyFile,
      "--state-dir", n.stateDir,
      "--subnet-file", n.subnetFile,
      "--api-listen", "127.0.0.1:7947",
      "--bridge", "cni0",
      "--log-level", "info",
    ];
    nodes.push({ ...n, agentArgv });
  }
  return { opts, underlayNs: `${opts.prefix}-ul`, netConf, nodes };
}

/** The `ip` commands that build namespaces and the underlay (pure). */
export function setupCommands(plan: DemoPlan): string[][] {
  const ul = plan.underlayNs;
  const cmds: string[][] = [
    ["ip", "netns", "add", ul],
    ["ip", "-n", ul, "link", "set", "lo", "up"],
    ["ip", "-n", ul, "link", "add", "br0", "type", "bridge"],
    ["ip", "-n", ul, "link", "set", "br0", "up"],
  ];
  for (const n of plan.nodes) {
    cmds.push(
      ["ip", "netns", "add", n.ns],
      ["ip", "netns", "add", n.podNs],
      ["ip", "-n", n.ns, "link", "set", "lo", "up"],
      ["ip", "-n", n.podNs, "link", "set", "lo", "up"],
      ["ip", "-n", ul, "link", "add", n.ulIf, "type", "veth", "peer", "name", "eth0", "netns", n.ns],
      ["ip", "-n", ul, "link", "set", n.ulIf, "master", "br0", "up"],
      ["ip", "-n", n.ns, "addr", "add", `${n.ip}/24`, "dev", "eth0"],
      ["ip", "-n", n.ns, "link", "set", "eth0", "up"],
      // A node forwards pod traffic (kubelet/kube-proxy would normally see to this).
      ["ip", "netns", "exec", n.ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"],
    );
  }
  return cmds;
}

/**
 * The network configuration the demo's "runtime" hands weft's CNI plugin for a node: the
 * node's own subnet.env and an IPAM directory under the node's files.
 */
export function cniConfig(n: Pick<NodePlan, "subnetFile" | "dir">): Record<string, unknown> {
  return { cniVersion: "1.1.0", name: "weft", type: "weft", subnetFile: n.subnetFile, dataDir: join(n.dir, "cni") };
}

/** How to run this very weft: the compiled binary, or bun + main.ts from source. */
export function selfCommand(): string[] {
  if (import.meta.path.startsWith("/$bunfs/")) return [process.execPath];
  return [process.execPath, resolve(import.meta.dir, "../main.ts")];
}

// ---------------------------------------------------------------------------------------
// Side effects
