/**
 * Lease records as replicated by gossip, and the Cluster surface the agent uses.
 * One record per node, written only by its owner; merge = higher (generation, version).
 * A record has at least one subnet (IPv4, IPv6 or both: families.ts) and at least one
 * public address.
 */
import type { BackendType } from "../net-conf.ts";
import type { Member } from "../gossip/types.ts";

export interface BackendData {
  type: BackendType;
  /** vxlan: the node's VTEP MAC, "aa:bb:cc:dd:ee:ff". */
  vtepMac?: string;
  /** wireguard: the node's Curve25519 public key, base64 of 32 bytes (as `wg pubkey` prints it). */
  publicKey?: string;
}

export interface Lease {
  nodeName: string;
  /** Random id made at first start and persisted; tells a renamed/reinstalled node apart. */
  nodeId: string;
  /** Bumped and persisted on every agent start; never goes backwards. */
  generation: number;
  /** Bumped on every change the owner makes within a generation. */
  version: number;
  /** The IPv4 subnet, canonical CIDR, e.g. "10.244.3.0/24"; absent in an IPv6-only cluster. */
  subnet?: string;
  /** The IPv6 subnet, canonical CIDR, e.g. "fd00:10:244:3::/64"; present when the owner runs IPv6 pods. */
  ipv6Subnet?: string;
  /** IPv4 underlay address peers send to; absent on a node without one (IPv6-only underlay). */
  publicIp?: string;
  /** IPv6 underlay address, e.g. "2001:db8::11"; present when the owner runs IPv6 pods and has one. */
  publicIpv6?: string;
  backend: BackendData;
  /** Clock ms when the owner first claimed this subnet (conflict rule: earliest wins, then name). */
  claimedAt: number;
  /**
   * Owner's clock ms when it last wrote or refreshed this record (owners refresh hourly).
   * Expiry counts from max(renewedAt, member lastSeen). Absent = claimedAt.
   */
  renewedAt?: number;
  /** Tombstone: the owner released the lease (graceful leave or renumber). */
  deleted?: boolean;
}

/** A lease plus what this node has observed about its owner. */
export interface LeaseView extends Lease {
  /** Owner's gossip state, "unknown" if not (yet) a member we know. */
  state: Member["state"] | "unknown";
  /** Clock ms of the last sign of life from the owner (member lastSeen or record update). */
  lastSeen: number;
  /** Clock ms after which this lease expires if the owner stays silent. */
  expiresAt: number;
}

export interface ClusterMetrics {
  leases: number;
  conflictsResolved: number;
  renumbers: number;
  rejectedRecords: number;
  /** Times another nodeId took over this node's name (see docs/leases.md). */
  nameConflicts?: number;
  /** Records dropped because they expired (owner silent longer than the lease TTL). */
  expired?: number;
  /** Winning leases this node does not route (public IP or VTEP MAC rules; problems() says why). */
  unrouted?: number;
}

/** The lease layer's event counters: ClusterMetrics without the counts that walk the table. */
export interface LeaseCounters {
  conflictsResolved: number;
  renumbers: number;
  rejectedRecords: number;
  nameConflicts: number;
  expired: number;
}

/** The lease layer as the agent sees it. */
export interface Cluster {
  /** Starts gossip, joins, and runs allocation until the own lease is committed. */
  start(signal?: AbortSignal): Promise<Lease>;
  /** The committed own lease, once committed. */
  ownLease(): Lease | undefined;
  /**
   * Every lease that justifies routes now: not deleted, not expired, winning its subnet,
   * and routable from this node (public IP and VTEP MAC rules, docs/leases.md); own included.
   */
  leases(): LeaseView[];
  /** Lease conditions an operator should know: leases not routed and why, records refused for their dates. */
  problems(): string[];
  /**
   * While the committed lease lost its subnet and is being renumbered, or a failed
   * renumber waits for its next attempt: why (for readiness). Undefined otherwise.
   */
  renumbering(): string | undefined;
  members(): Member[];
  /** Called (synchronously, after the table changed) whenever leases() may differ. */
  onChange(fn: () => void): () => void;
  /** Called when the own lease had to be renumbered after commit (a conflict lost). */
  onRenumber(fn: (old: Lease, now: Lease) => void): () => void;
  /**
   * Graceful: release nothing (leases outlive restarts), tell peers we leave, stop.
   * `release: true` (decommissioning) first publishes a tombstone so the subnet is free at
   * once, and always leaves (whatever `leave` says) so the tombstone is gossiped out.
   */
  stop(opts: { leave: boolean; release?: boolean }): Promise<void>;
  metrics(): ClusterMetrics;
}
