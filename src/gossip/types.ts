/**
 * The contract between the gossip layer (src/gossip/, membership + dissemination +
 * anti-entropy, modelled on hashicorp/memberlist) and its user, the lease layer
 * (src/lease/). Gossip moves opaque payload bytes; the lease layer encodes, validates
 * and merges them. Neither side reaches into the other's internals.
 */
import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { Transport } from "./transport.ts";

export type MemberState = "alive" | "suspect" | "dead" | "left";

export interface Member {
  /** Unique node name (the lease owner's name). */
  name: string;
  /** Gossip address peers use, "ip:port". */
  addr: string;
  state: MemberState;
  incarnation: number;
  /** Clock time (ms) of the last direct or indirect evidence the member was alive. */
  lastSeen: number;
  /** Small opaque metadata the member advertises (≤ 256 bytes), e.g. encoded public IP. */
  meta?: Uint8Array;
}

/** Callbacks the gossip layer makes into its user. They must not block or throw. */
export interface GossipDelegate {
  /**
   * A user broadcast arrived; `from` is its origin's name. Never called for our own
   * broadcasts. The gossip layer delivers each (origin, key, version) at most once and
   * drops versions older than one already delivered, but merge must still cope with
   * stale content (push-pull may have brought newer state meanwhile).
   */
  notifyMessage(payload: Uint8Array, from: string): void;
  /** Full local state for a TCP push-pull exchange (join = the exchange is a join). Must stay under maxStreamBytes. */
  localState(join: boolean): Uint8Array;
  /** The remote side's full state from a push-pull exchange; called on both sides of every exchange. */
  mergeRemoteState(payload: Uint8Array, join: boolean, from: string): void;
  /**
   * A hash of localState's *content*, equal on two nodes exactly when their states are
   * equal (order-independent). With it, periodic and on-demand (non-join) push-pulls
   * first compare digests and skip the full exchange when nothing differs. Optional:
   * without it every push-pull is a full exchange.
   */
  stateDigest?(): Uint8Array;
}

/** Membership events; never about the local node; called synchronously inside packet handling. */
export interface MembershipListener {
  onJoin?(m: Member): void;
  onUpdate?(m: Member): void;
  /** A member was declared dead or left gracefully. */
  onLeave?(m: Member): void;
}

/** One encryption key set: `primary` seals, every key in `keys` (primary included) opens. */
export interface Keyring {
  primary: Uint8Array; // 32 bytes
  keys: Uint8Array[];
}

/** The gossip layer's surface, as the lease layer and the agent use it. */
export interface Gossip {
  /** Binds the transport and starts probing/gossip timers. */
  start(): Promise<void>;
  /**
   * Contacts seeds ("host:port"), retrying with backoff until one answers or `signal`
   * aborts; performs a push-pull with the first that answers. Resolves to how many answered.
   * Starts the node if needed. Resolves 0 at once when no seed other than ourselves is
   * given (bootstrap), and 0 when `signal` aborts or the node shuts down; never rejects.
   */
  join(seeds: string[], signal?: AbortSignal): Promise<number>;
  /**
   * Queues a payload for piggybacked dissemination; a newer payload with the same key
   * replaces a queued older one. Throws RangeError if it cannot fit one packet (~1.3 kB).
   */
  broadcast(key: string, payload: Uint8Array): void;
  /**
   * Full-state TCP exchange with one member now (used by the allocator's settle window).
   * Resolves after both sides merged — or after both digests compared equal, when the
   * delegate offers stateDigest (then a merge would change nothing); rejects for an unknown member ("unknown member"),
   * an unreachable one (after config.streamTimeoutMs) or a failed exchange. For our own
   * name it resolves at once.
   */
  pushPull(memberName: string): Promise<void>;
  /** All members known, self included. */
  members(): Member[];
  /**
   * One member by name (self included), or undefined: O(1), unlike members(), which
   * copies the whole table. Optional so existing fakes of this interface stay valid.
   */
  member?(name: string): Member | undefined;
  localName(): string;
  /** Broadcasts a leave, waits up to `timeoutMs` for it to spread, then stops. */
  leave(timeoutMs: number): Promise<void>;
  /** Stops timers and closes the transport without telling anyone (kill-like). */
  shutdown(): Promise<void>;
  metrics(): GossipMetrics;
  /**
   * Sends and receives through `transport`, bound to this node's new address (the
   * underlay address moved), from now on, and closes the old one; members learn the new
   * address. Optional (like setKeyring) so fakes of this interface stay small.
   */
  rebind?(transport: Transport): Promise<void>;
  /** Seals with `keyring.primary` and opens with each of its keys from now on; throws when it would switch encryption on or off. */
  setKeyring?(keyring: Keyring | null): void;
}

export interface GossipMetrics {
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
  /** Packets/streams that failed to decrypt (wrong key, tampered, truncated). */
  decryptFailures: number;
  /** Decrypted but malformed messages (schema failures). */
  decodeFailures: number;
  /** Copies of broadcasts already handled, dropped before decoding (see RecentHashes). */
  duplicatesSkipped: number;
  /** Sealed messages refused as replays: an id accepted before (network duplicates too), a sent-at time at or below the replay floor, a stream reply that does not name our request. */
  replaysRejected: number;
  /** Sealed messages refused because their sent-at time lies outside ±maxClockSkewMs of our clock (old captures, or a sender whose clock is off). */
  staleRejected: number;
  /** Sealed messages refused because the sender address inside does not match where they came from (a copy sent from elsewhere). */
  senderMismatches: number;
}

/** What the gossip layer is built from; transport and clock are injected for tests. */
export interface GossipDeps {
  clock: Clock;
  logger: Logger;
  delegate: GossipDelegate;
  listener?: MembershipListener;
  /** null = insecure (no encryption); only allowed with --insecure. */
  keyring: Keyring | null;
  /** Bound as AEAD associated data so two clusters with one key still cannot mix. */
  clusterName: string;
}

/** Every GossipMetrics counter at zero (before start, and for fakes). */
export function emptyGossipMetrics(): GossipMetrics {
  return { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, decryptFailures: 0, decodeFailures: 0, duplicatesSkipped: 0, replaysRejected: 0, staleRejected: 0, senderMismatches: 0 };
}
