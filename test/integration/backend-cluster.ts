/**
 * Kernel-test fixture shared by the backend suites: a topology of node namespaces on one
 * underlay (harness.ts), a cni0 bridge with one pod per node, and one
 * test/backend/node-agent.ts per node running the backend under test through the real
 * libnl Netlink. Node i owns 10.244.(i+1).0/24 and the VTEP MAC stableMac("node<i>").
 */
import { expect } from "bun:test";
import { exec, ip, createTopology, type Topology } from "../../sim/netns.ts";
import { NODE_AGENT, NodeAgentClient } from "../backend/node-agent-client.ts";
import { stableMac } from "../../src/backend/mac.ts";
import type { BackendConf } from "../../src/net-conf.ts";
import type { PeerLease } from "../../src/backend/backend.ts";

export const NETWORK = "10.244.0.0/16";

export interface Cluster {
  topo: Topology;
  agents: NodeAgentClient[];
  peers: PeerLease[];
  pods: { ns: string; ip: string }[];
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
  const conf = { backend, publicIp: n.ip, underlayIface: "eth0", underlayMtu: 1500, ownSubnet: c.peers[i]!.subnet, network: NETWORK, vtepMac: c.peers[i]!.vtepMac, peers: c.peers, ...(udpOffload !== undefined ? { udpOffload } : {}), ...(reconcile ? { reconcile } : {}) };
  const cmd = agentBin ? [agentBin, JSON.stringify(conf)] : [process.execPath, NODE_AGENT, JSON.stringify(conf)];
  return new NodeAgentClient(c.topo.spawn(n.ns, cmd, { stdin: "pipe" }) as never);
}

/**
 * Builds the topology (namespaces prefixed `prefix`), pods and agents, and waits until
 * every agent applied its peers without errors. The caller cleans up `topo`
 * (register it before anything can throw: `onTopology` is called right after creation).
 */
export async function startCluster(backend: BackendConf, { prefix, nodes = 2, onTopology, ...agentOpts }: { prefix: string; nodes?: number; onTopology: (t: Topology) => void } & AgentOpts): Promise<Cluster> {
  const topo = createTopology({ prefix, nodes });
  onTopology(topo);
  const peers: PeerLease[] = topo.nodes.map((n, i) => ({ nodeName: `node${i}`, subnet: `10.244.${i + 1}.0/24`, publicIp: n.ip, vtepMac: stableMac(`node${i}`) }));
  const pods = topo.nodes.map((n, i) => {
    ip(n.ns, "link", "add", "cni0", "type", "bridge");
    ip(n.ns, "addr", "add", `10.244.${i + 1}.1/24`, "dev", "cni0");
    ip(n.ns, "link", "set", "cni0", "up");
    exec(n.ns, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    return topo.addPod(i, { cidr: `10.244.${i + 1}.2/24`, gateway: `10.244.${i + 1}.1` });
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
