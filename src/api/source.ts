/**
 * Builds the API's StatusSource from the agent's parts. Structural input types (no
 * imports from gossip/lease/backend) keep the API a leaf: the agent passes its gossip
 * members, lease views and metric getters as they are.
 */
import type { AgentStatus, ClusterKeys, MetricsSnapshot, NodeState, NodeStatus, Readiness, StatusSource } from "./status.ts";

type MemberLike = { state: "alive" | "suspect" | "dead" | "left" };
type LeaseLike = {
  nodeName: string;
  publicIp?: string;
  subnet?: string;
  ipv6Subnet?: string;
  publicIpv6?: string;
  backend: { type: string; vtepMac?: string; publicKey?: string };
  state: NodeState;
  /** Clock ms (epoch ms with the real clock); 0 or non-finite = never. */
  lastSeen: number;
  deleted?: boolean;
};

export interface StatusParts {
  node: string;
  /** IPv4 underlay address (null: none); a function when it can change while the agent runs (the underlay address moved). */
  publicIp: string | null | (() => string | null);
  /** IPv4 pod network (null: IPv4 not enabled). */
  network: string | null;
  /** IPv6 pod network and underlay address: present when IPv6 is enabled. */
  ipv6?: { network: string; publicIp: string | null | (() => string | null); subnet: () => string | null };
  backend: string;
  /** A function when it can change while the agent runs (the underlay MTU changed). */
  mtu: number | (() => number);
  version: string;
  /** Epoch ms of agent start (for uptime). */
  startedAt: number;
  now?: () => number;
  /** The committed subnet, or null before commit. */
  subnet: () => string | null;
  members: () => MemberLike[];
  leases: () => LeaseLike[];
  readiness: () => Readiness;
  healthy: () => boolean;
  /** Current dataplane problems (last reconcile), shown in /v1/status and `weft status`. */
  problems?: () => string[];
  /** Undefined (e.g. before the gossip layer exists) reads as zeros. */
  gossip?: () => MetricsSnapshot["gossip"] | undefined;
  cluster?: () => { leases: number; conflictsResolved: number };
  reconcile?: () => MetricsSnapshot["reconcile"];
  udp?: () => MetricsSnapshot["udp"];
  /** wireguard backend only: the device's peers (wall-clock ms handshakes) and byte totals. */
  wireguard?: () => { peers: { publicKey: string; lastHandshakeMs: number }[]; rxBytesTotal: number; txBytesTotal: number } | undefined;
  /** The cluster keys in use (null: --insecure). */
  clusterKeys?: () => ClusterKeys | null;
}

const zeroGossip = (): MetricsSnapshot["gossip"] => ({ packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, decryptFailures: 0, decodeFailures: 0, duplicatesSkipped: 0, replaysRejected: 0, staleRejected: 0, senderMismatches: 0 });
const zeroReconcile = (): MetricsSnapshot["reconcile"] => ({ runs: 0, errors: 0, lastDurationSeconds: 0, durationSecondsSum: 0 });

/** Counts members by state (self included, as memberlist does). */
export function countMembers(members: MemberLike[]): Record<"alive" | "suspect" | "dead" | "left", number> {
  const c = { alive: 0, suspect: 0, dead: 0, left: 0 };
  for (const m of members) if (m.state in c) c[m.state]++;
  return c;
}

const iso = (ms: number): string | null => (Number.isFinite(ms) && ms > 0 ? new Date(ms).toISOString() : null);

/**
 * @example
 * const source = createStatusSource({
 *   node: flags.nodeName, publicIp, network: net.network, backend: net.backend.type, mtu,
 *   version, startedAt: Date.now(), subnet: () => cluster.ownLease()?.subnet ?? null,
 *   members: () => cluster.members(), leases: () => cluster.leases(),
 *   readiness: () => readiness, healthy: () => loopsAlive,
 *   gossip: () => gossip.metrics(), cluster: () => cluster.metrics(),
 *   reconcile: () => reconciler.metrics(), udp: () => udpBackend?.counters() ?? { packetsForwarded: 0, packetsDropped: 0, droppedSpoofedSource: 0, droppedBadOffloadHeader: 0 },
 * });
 */
export function createStatusSource(p: StatusParts): StatusSource {
  const now = p.now ?? Date.now;
  return {
    status(): AgentStatus {
      return {
        node: p.node,
        publicIp: typeof p.publicIp === "function" ? p.publicIp() : p.publicIp,
        network: p.network,
        subnet: p.subnet(),
        backend: p.backend,
        mtu: typeof p.mtu === "function" ? p.mtu() : p.mtu,
        members: countMembers(p.members()),
        version: p.version,
        uptimeSeconds: Math.max(0, Math.floor((now() - p.startedAt) / 1000)),
        problems: p.problems?.() ?? [],
        ...(p.clusterKeys ? { clusterKeys: p.clusterKeys() } : {}),
        ...(p.ipv6 ? { ipv6Network: p.ipv6.network, ipv6Subnet: p.ipv6.subnet(), publicIpv6: typeof p.ipv6.publicIp === "function" ? p.ipv6.publicIp() : p.ipv6.publicIp } : {}),
      };
    },
    nodes(): NodeStatus[] {
      const wg = p.wireguard?.();
      // A node is a peer on each device of Mode separate: its latest handshake on any counts.
      const handshakes = new Map<string, number>();
      for (const x of wg?.peers ?? []) handshakes.set(x.publicKey, Math.max(x.lastHandshakeMs, handshakes.get(x.publicKey) ?? 0));
      const age = (key: string | undefined) => {
        const at = key === undefined ? undefined : handshakes.get(key);
        if (at === undefined) return {};
        return { latestHandshakeAgeSeconds: at > 0 ? Math.max(0, Math.floor((now() - at) / 1000)) : null };
      };
      return p
        .leases()
        .filter((l) => !l.deleted)
        .map((l) => ({
          name: l.nodeName,
          publicIp: l.publicIp ?? null,
          subnet: l.subnet ?? null,
          ...(l.ipv6Subnet !== undefined ? { ipv6Subnet: l.ipv6Subnet } : {}),
          ...(l.publicIpv6 !== undefined ? { publicIpv6: l.publicIpv6 } : {}),
          backend: l.backend.type,
          state: l.state,
          lastSeen: iso(l.lastSeen),
          ...(l.backend.vtepMac ? { vtepMac: l.backend.vtepMac } : {}),
          ...(l.backend.publicKey ? { publicKey: l.backend.publicKey, ...age(l.backend.publicKey) } : {}),
        }))
        .sort((a, b) => a.name.localeCompare(b.name));
    },
    readiness: () => p.readiness(),
    healthy: () => p.healthy(),
    metrics(): MetricsSnapshot {
      const cluster = p.cluster?.() ?? { leases: p.leases().length, conflictsResolved: 0 };
      const r = p.reconcile?.() ?? zeroReconcile();
      const u = p.udp?.() ?? { packetsForwarded: 0, packetsDropped: 0, droppedSpoofedSource: 0, droppedBadOffloadHeader: 0 };
      const wg = p.wireguard?.();
      const keys = p.clusterKeys?.();
      return {
        membersByState: countMembers(p.members()),
        leases: cluster.leases,
        gossip: { ...zeroGossip(), ...(p.gossip?.() ?? {}) },
        reconcile: { runs: r.runs, errors: r.errors, lastDurationSeconds: r.lastDurationSeconds, durationSecondsSum: r.durationSecondsSum },
        conflictsResolved: cluster.conflictsResolved,
        udp: { packetsForwarded: u.packetsForwarded, packetsDropped: u.packetsDropped, droppedSpoofedSource: u.droppedSpoofedSource, droppedBadOffloadHeader: u.droppedBadOffloadHeader },
        ...(wg ? { wireguard: { peers: wg.peers.length, rxBytes: wg.rxBytesTotal, txBytes: wg.txBytesTotal } } : {}),
        ...(keys ? { clusterKeys: keys } : {}),
      };
    },
  };
}
