/** The lease layer's options (each knob with its unit and default) and its surface beyond {@link Cluster}. */
import type { Clock } from "../clock.ts";
import type { NetConf } from "../net-conf.ts";
import type { GossipMetrics, Keyring, Member } from "../gossip/types.ts";
import type { Transport } from "../gossip/transport.ts";
import type { ForgetOutcome } from "./forget.ts";
import type { Logger } from "../log.ts";
import type { ClaimBlockedError } from "./allocator.ts";
import type { ResolveHost } from "./seeds.ts";
import type { StateStore } from "./state-store.ts";
import type { LeaseTable } from "./table.ts";
import type { BackendData, Cluster } from "./types.ts";

export interface ClusterCoreOptions {
  net: NetConf;
  nodeName: string;
  /** This node's IPv4 public (underlay) address; at least one of publicIp and publicIpv6 is given. */
  publicIp?: string;
  /** This node's IPv6 public address (nodes running IPv6 pods that have one). */
  publicIpv6?: string;
  /** This node's gossip address "ip:port"; seeds equal to it are skipped. */
  advertiseAddr: string;
  /** "host:port" peers to join; entries that are this node's own address are skipped. */
  seeds: string[];
  /** Backend data for the record; a function gets the persisted nodeId (stable VTEP MAC). */
  backend: BackendData | ((nodeId: string) => BackendData);
  store: StateStore;
  clock: Clock;
  logger: Logger;
  /** Leases of silent owners are kept this long after the last sign of life, ms (24 h). */
  leaseTtlMs?: number;
  /** Wait after announcing a claim before the verifying push-pulls, ms (2 s). */
  settleMs?: number;
  /**
   * After settleMs, keep waiting while a storm of records is still arriving: until at
   * most settleQuietRecords peer records changed the table in the last settleQuietMs,
   * ms (1 s). A join storm is still delivering claims that may beat ours; committing in
   * the middle of it means renumbering later.
   */
  settleQuietMs?: number;
  /**
   * Changed records per settleQuietMs that still count as quiet (16), if none of them was
   * late (made more than settleQuietMs before it arrived): a trickle of joins is not a storm.
   */
  settleQuietRecords?: number;
  /** Longest settle window, storms included, ms (30 s). */
  settleMaxMs?: number;
  /**
   * With this listener, a blocked claim does not reject start(): the listener hears why,
   * and the claim is tried again every exhaustedRetryMs until it can be made. Named for
   * the common case, a full range (SubnetExhaustedError: until an expired or released
   * lease, or a widened range after restart, frees a subnet); also clocks that disagree
   * (ClockSkewError). Without it start() rejects with that error.
   */
  onExhausted?: (e: ClaimBlockedError) => void;
  /**
   * Time between claim attempts while a claim is blocked, ms (60 s); also the cap of the
   * growing back-off between failed renumber attempts.
   */
  exhaustedRetryMs?: number;
  /**
   * How far ahead of our clock a received record may be dated (claimedAt or renewedAt),
   * ms (2 × CLOCK_SKEW_MS = 60 s); our own claims are dated at most half of it ahead.
   * createCluster derives it from its clockSkewMs (see CLOCK_SKEW_MS in src/clock.ts).
   */
  maxClockSkewMs?: number;
  /** Owners re-announce (version+1, renewedAt=now) this often, ms (1 h). */
  refreshMs?: number;
  /**
   * Most members push-pulled after one settle window (3): all of them in clusters up to 4
   * nodes, a random sample beyond (claim.ts settleTargets says why not more).
   */
  settlePeers?: number;
  /** Expiry/GC sweep period, ms (60 s). */
  sweepMs?: number;
  /** Extra addresses ("ip:port" or "ip") that count as this node's own when filtering seeds. */
  ownAddrs?: string[];
  /** Resolves a seed host name to addresses (default: the system resolver, IPv4). */
  resolveHost?: ResolveHost;
  random?: () => number;
  /** The replicated table to fill (default: a new, empty one); a simulation may pass one that observes merges. */
  table?: LeaseTable;
}

/** The lease layer with what the agent, the gossip wiring (createCluster) and tests need beyond {@link Cluster}. */
export interface ClusterCore extends Cluster {
  /** The persisted node id, once started (the VTEP MAC derives from it). */
  nodeId(): string | undefined;
  /** The replicated table, read-only use. */
  table(): LeaseTable;
  /** Resolves once a background join (persisted-lease start) has reached a seed. */
  joined(): Promise<void>;
  /**
   * Feed of the gossip layer's membership events (createCluster wires it). Member states
   * in leases() change; a member that comes back from suspect/dead (a healed partition)
   * gets a full-state push-pull, so claims made on either side meet at once.
   */
  memberEvent(kind: "join" | "update" | "leave", m: Member): void;
  /** The gossip layer's counters (for /metrics); zeros before start. */
  gossipMetrics(): GossipMetrics;
  /**
   * Moves this node's public address of `ip`'s family to `ip`: the own lease is announced
   * again with it. With `transport` (bound to `ip`: the address gossip runs over moved),
   * gossip re-binds to it too and members learn the new address. Throws, changing
   * nothing, for an IP peers would reject, or (with a transport) before start().
   */
  readdress(ip: string, transport?: Transport): Promise<void>;
  /** The gossip layer seals and opens with `keyring` from now on (a re-read key file). */
  setKeyring(keyring: Keyring | null): void;
  /**
   * Writes and spreads a tombstone for `name`'s lease (forget.ts): every node drops it
   * and its routes. Refused (409) for this node and while `name` is alive or suspect,
   * 404 without a lease.
   */
  forget(name: string): ForgetOutcome;
}
