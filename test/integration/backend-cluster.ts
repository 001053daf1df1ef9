/**
 * Kernel-test fixture shared by the backend suites: a topology of node namespaces on one
 * underlay (harness.ts), a cni0 bridge with one pod per node, and one
 * test/backend/node-agent.ts per node running the backend under test through the real
 * libnl Netlink. Node i owns 10.244.(i+1).0/24 and the VTEP MAC stableMac("node<i>");
 * with `ipv6` the pods are dual-stack and node i also owns fd00:10:244:(i+1)::/64.
 */
import { expect } from "bun:test";
import { exec, ip, createTopology, type Topology, type UnderlayFamilies } from "../../sim/netns.ts";
import { NODE_AGENT, NodeAgentClient } from "../backend/node-agent-client.ts";
import { stableMac } from "../../src/backend/mac.ts";
import type { BackendConf } from "../../src/net-conf.ts";
import type { PeerLease } from "../../src/backend/backend.ts";

export const NETWORK = "10.244.0.0/16";
export const IPV6_NETWORK = "fd00:10:244::/56";

export interface Cluster {
  topo: Topology;
  agents: NodeAgentClient[];
  peers: PeerLease[];
  pods: { ns: string; ip: string; ip6?: string }[];
}

export interface AgentOpts {
  /** Run the compiled node-agent at this path instead of the source. */
  agentBin?: string;
  udpOffload?: boolean;
  reconcile?: { periodMs?: number };
}

/** Starts node-agent in node i with the cluster's peer list (from source, or as the compiled binary `agentBin`). */
export function startAgent(c: { topo: Topology; peers: PeerLease[] }, i: number, backend: BackendConf, { agentBin, udpOffload, reconcile }: AgentOpts = {}): NodeAgentClient {
  const n = c.topo.nodes[i]!;
  const self = c.peers[i]!;
  const v6 = self.ipv6Subnet ? { ownIpv6Subnet: self.ipv6Subnet, ipv6Network: IPV6_NETWORK, ...(self.publicIpv6 ? { publicIpv6: self.publicIpv6 } : {}) } : {};
  const conf = { backend, publicIp: n.ip, underlayIface: "eth0", underlayMtu: 1500, ownSubnet: self.subnet, network: NETWORK, ...v6, vtepMac: self.vtepMac, peers: c.peers, ...(udpOffload !== undefined ? { udpOffload } : {}), ...(reconcile ? { reconcile } : {}) };
  const cmd = agentBin ? [agentBin, JSON.stringify(conf)] : [process.execPath, NODE_AGENT, JSON.stringify(conf)];
  return new NodeAgentClient(c.topo.spawn(n.ns, cmd, { stdin: "pipe" }) as never);
}

/**
 * Builds the topology (namespaces prefixed `prefix`), pods and agents, and waits until
 * every agent applied its peers without errors. The caller cleans up `topo`
 * (register it before anything can throw: `onTopology` is called right after creation).
 */
export async function startCluster(
  backend: BackendConf,
  { prefix, nodes = 2, onTopology, ipv6 = false, underlay = "ipv4", ...agentOpts }: { prefix: string; nodes?: number; onTopology: (t: Topology) => void; ipv6?: boolean; underlay?: Exclude<UnderlayFamilies, "ipv6"> } & AgentOpts,
): Promise<Cluster> {
  const topo = createTopology({ prefix, nodes, underlay });
  onTopology(topo);
  const peers: PeerLease[] = topo.nodes.map((n, i) => ({
    nodeName: `node${i}`,
    subnet: `10.244.${i + 1}.0/24`,
    publicIp: n.ip,
    ...(ipv6 ? { ipv6Subnet: `fd00:10:244:${i + 1}::/64` } : {}),
    ...(ipv6 && n.ipv6 ? { publicIpv6: n.ipv6 } : {}),
    vtepMac: stableMac(`node${i}`),
  }));
  const pods = topo.nodes.map((n, i) => {
    ip(n.ns, "link", "add", "cni0", "type", "bridge");
    ip(n.ns, "addr", "add", `10.244.${i + 1}.1/24`, "dev", "cni0");
    if (ipv6) ip(n.ns, "addr", "add", `fd00:10:244:${i + 1}::1/64`, "dev", "cni0", "nodad");
    ip(n.ns, "link", "set", "cni0", "up");
    exec(n.ns, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1", ...(ipv6 ? ["net.ipv6.conf.all.forwarding=1"] : [])]);
    const pod = topo.addPod(i, { cidr: `10.244.${i + 1}.2/24`, gateway: `10.244.${i + 1}.1` });
    if (!ipv6) return pod;
    const ip6 = `fd00:10:244:${i + 1}::2`;
    ip(pod.ns, "addr", "add", `${ip6}/64`, "dev", "eth0", "nodad");
    ip(pod.ns, "-6", "route", "add", "default", "via", `fd00:10:244:${i + 1}::1`, "dev", "eth0");
    return { ...pod, ip6 };
  });
  const agents = topo.nodes.map((_, i) => startAgent({ topo, peers }, i, backend, agentOpts));
  for (const a of agents) {
    const r = await a.next();
    expect(r).toMatchObject({ ready: true });
    expect(r.result.errors).toEqual([]);
  }
  return { topo, agents, peers, pods };
}

/** Polls `read` until `done(value)` or the deadline; returns the last value read. */
export async function pollUntil<T>(read: () => Promise<T> | T, done: (v: T) => boolean, timeoutMs = 3000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let v = await read();
  while (!done(v) && Date.now() < end) {
    await Bun.sleep(25);
    v = await read();
  }
  return v;
}
