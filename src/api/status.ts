/**
 * Status types shared by the agent (producer), the HTTP API and `weft status`
 * (consumers). A leaf module: it imports nothing from the rest of weft.
 */
export type NodeState = "alive" | "suspect" | "dead" | "left" | "unknown";

export interface NodeStatus {
  name: string;
  /** IPv4 underlay address; null for a node without one (IPv6-only underlay). */
  publicIp: string | null;
  /** IPv4 subnet; null in an IPv6-only cluster. */
  subnet: string | null;
  /** IPv6 subnet and underlay address, when the node has them (IPv6 pod networks). */
  ipv6Subnet?: string;
  publicIpv6?: string;
  backend: string;
  state: NodeState;
  /** ISO-8601 time of the last sign of life, or null if never seen. */
  lastSeen: string | null;
  vtepMac?: string;
  /** wireguard: the node's public key from its lease. */
  publicKey?: string;
  /**
   * wireguard, peers only: seconds since the latest handshake with this node, null while
   * there has been none; absent for this node itself and for keys not on the device.
   */
  latestHandshakeAgeSeconds?: number | null;
}

export interface AgentStatus {
  node: string;
  /** IPv4 underlay address; null on a node without one. */
  publicIp: string | null;
  /** IPv4 pod network; null when IPv4 is not enabled. */
  network: string | null;
  /** IPv4 subnet; null until the lease is committed (and in an IPv6-only cluster). */
  subnet: string | null;
  /** With IPv6 pod networks: the IPv6 pod network, this node's IPv6 subnet (null until committed), its IPv6 underlay address. */
  ipv6Network?: string;
  ipv6Subnet?: string | null;
  publicIpv6?: string | null;
  backend: string;
  mtu: number;
  members: { alive: number; suspect: number; dead: number; left: number };
  version: string;
  uptimeSeconds: number;
  /**
   * Dataplane conditions an operator must fix (e.g. a host-gw peer that is not on-link).
   * An addition to the contract's fields; empty when all is well.
   */
  problems: string[];
  /** The cluster keys in use: how many, and the sealing (first) key's fingerprint; null with --insecure. An addition to the contract's fields. */
  clusterKeys?: ClusterKeys | null;
}

/** What status and metrics show of the cluster key file: never a key, only its fingerprint (16 hex digits of its SHA-256). */
export interface ClusterKeys {
  count: number;
  primary: string;
}

export interface Readiness {
  ready: boolean;
  /** Why not ready, e.g. "waiting for lease commit", "subnet exhausted: ...". */
  reason?: string;
}

/** Counters and gauges for /metrics; the API renders them as Prometheus text. */
export interface MetricsSnapshot {
  membersByState: Record<"alive" | "suspect" | "dead" | "left", number>;
  leases: number;
  gossip: {
    packetsIn: number;
    packetsOut: number;
    bytesIn: number;
    bytesOut: number;
    messagesIn: number;
    messagesOut: number;
    decryptFailures: number;
    decodeFailures: number;
    duplicatesSkipped: number;
    replaysRejected: number;
    staleRejected: number;
    senderMismatches: number;
  };
  reconcile: { runs: number; errors: number; lastDurationSeconds: number; durationSecondsSum: number };
  conflictsResolved: number;
  /** udp backend: packets forwarded and dropped; of the drops, those refused as forged (outer source spoofed, or a malformed offload header). */
  udp: { packetsForwarded: number; packetsDropped: number; droppedSpoofedSource: number; droppedBadOffloadHeader: number };
  /** wireguard backend only: peers on weft-wg (and weft-wg-v6, once per device) and bytes over all of them since start. */
  wireguard?: { peers: number; rxBytes: number; txBytes: number };
  /** Absent with --insecure. */
  clusterKeys?: ClusterKeys;
}

/** What the API reads from the agent on each request. Must be cheap and never throw. */
export interface StatusSource {
  status(): AgentStatus;
  nodes(): NodeStatus[];
  readiness(): Readiness;
  metrics(): MetricsSnapshot;
  /** False once a main loop has died; drives /healthz. */
  healthy(): boolean;
}

/** The answer to forgetting a node (POST /v1/nodes/{name}/forget). */
export type ForgetResult =
  /** `subnet`: the forgotten lease's subnets ("10.244.3.0/24", "… + fd00:…/64" dual-stack). */
  | { ok: true; node: string; subnet: string }
  /** 404: no lease under that name; 409: it may not be forgotten now (alive, suspect, this node); 503: the agent has no lease layer running yet. */
  | { ok: false; status: 404 | 409 | 503; error: string };

/** The one change the API makes: what the agent implements besides its StatusSource. */
export interface NodeActions {
  /** Tombstones a dead node's lease cluster-wide. */
  forget(name: string): ForgetResult;
}
