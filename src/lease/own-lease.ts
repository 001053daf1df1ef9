/**
 * This node's own record and what it may do with it. The node-name key is owned by the
 * newest start: a fresh start (new nodeId) that finds its name held by another nodeId
 * takes the name over with a higher generation; a running node that is taken over that
 * way does not fight back (it logs an error and goes quiet: `displaced`). The generation
 * is persisted before anything is announced, so it never repeats.
 */
import type { Gossip } from "../gossip/types.ts";
import type { Logger } from "../log.ts";
import { encodeRecord, MAX_GENERATION } from "./record-codec.ts";
import { compareCounters, compareRecords } from "./record-order.ts";
import type { ClockBounds } from "./clock-bounds.ts";
import type { NodeIdentity, StateStore } from "./state-store.ts";
import type { LeaseTable } from "./table.ts";
import type { BackendData, Lease, LeaseCounters } from "./types.ts";

export interface OwnLeaseDeps {
  nodeName: string;
  /** Backend data for the record; a function gets the persisted nodeId (stable VTEP MAC). */
  backend: BackendData | ((nodeId: string) => BackendData);
  store: StateStore;
  table: LeaseTable;
  bounds: ClockBounds;
  /** The gossip node once started: records are broadcast through it. */
  gossip: () => Gossip | undefined;
  /** Now as an integer: record timestamps go on the wire as integers; fake clocks may run fractional. */
  stamp: () => number;
  counters: LeaseCounters;
  log: Logger;
}

export class OwnLease {
  identity: NodeIdentity | undefined;
  /** Our newest record: a claim or the committed lease. */
  own: Lease | undefined;
  committed: Lease | undefined;
  /** Our name was taken over by a newer start elsewhere; we announce nothing any more. */
  displaced = false;
  /** A claim procedure (first claim or renumber) is running. */
  claiming = false;
  /** Claims lost so far: each shifts where the next pick starts (pickSubnet). */
  attempt = 0;

  constructor(private readonly o: OwnLeaseDeps) {}

  backendFor(nodeId: string): BackendData {
    return typeof this.o.backend === "function" ? this.o.backend(nodeId) : this.o.backend;
  }

  /** This node's VTEP MAC, once its identity is known. */
  ownMac(): string | undefined {
    return this.identity ? this.backendFor(this.identity.nodeId).vtepMac : undefined;
  }

  /** Makes `l` our newest record: into the table and out to the peers. */
  publish(l: Lease): void {
    this.own = l;
    this.o.table.merge(l);
    this.o.bounds.noteClaimedAt(l.claimedAt);
    this.o.gossip()?.broadcast(this.o.nodeName, encodeRecord(l));
  }

  /** Persists `l` as the committed lease. */
  commit(l: Lease): void {
    this.o.store.saveLease(l);
    this.committed = l;
  }

  persistIdentity(): void {
    this.o.store.saveIdentity(this.identity!);
  }

  /**
   * Raises our generation above `gen`. Returns false, without changing anything, when that
   * would leave the valid range: a record at the limit can only be a forgery (or a
   * corrupted peer), and no record of ours could ever out-rank it on peers.
   */
  bumpGenerationAbove(gen: number): boolean {
    if (this.identity!.generation > gen) return true;
    if (gen + 1 > MAX_GENERATION) return false;
    this.identity = { ...this.identity!, generation: gen + 1 };
    try {
      this.persistIdentity();
    } catch (e) {
      this.o.log.error("Cannot persist raised generation", { error: e as Error });
    }
    return true;
  }

  /** Announces the committed lease again (renewedAt = now), above our newest record's counters. */
  republishCommitted(): void {
    const c = this.committed!;
    // After a failed renumber our newest record may be one of its claims, not the lease.
    const top = this.own && compareCounters(this.own.generation, this.own.version, c) > 0 ? this.own : c;
    const l = { ...c, generation: top.generation, version: top.version + 1, renewedAt: this.o.stamp() };
    this.publish(l);
    try {
      this.commit(l);
    } catch (e) {
      this.o.log.error("Cannot persist refreshed lease", { error: e as Error });
    }
  }

  /**
   * A public address changed (the underlay address of its family moved): the committed lease is announced
   * again with it (version+1, persisted), and a claim in flight carries it too, so peers
   * route to the new address. Displaced: nothing of ours is announced any more.
   */
  readdress(ip: string): void {
    if (this.displaced) return;
    const field = ip.includes(":") ? "publicIpv6" : "publicIp";
    if (this.committed && this.committed[field] !== ip) {
      this.committed = { ...this.committed, [field]: ip };
      if (!this.claiming) return this.republishCommitted();
    }
    const own = this.own;
    if (own && own[field] !== ip) this.publish({ ...own, [field]: ip, version: own.version + 1, renewedAt: this.o.stamp() });
  }

  /**
   * Reacts to a record under our name that out-ranks ours. Our own older start (restored
   * state dir) or, before commit, a previous owner of the name: we take the name with a
   * higher generation. Another node's newer start: we are displaced. Returns false when
   * displaced (nothing more to check).
   */
  defendName(): boolean {
    const { table, nodeName, log, counters } = this.o;
    const own = this.own!;
    const rec = table.get(nodeName);
    if (!rec || rec === own || compareRecords(rec, own) <= 0) return true;
    if ((rec.nodeId === own.nodeId || !this.committed) && this.bumpGenerationAbove(rec.generation)) {
      const next = { ...own, generation: this.identity!.generation, version: 0, renewedAt: this.o.stamp() };
      this.publish(next);
      if (this.committed && !this.claiming) {
        try {
          this.commit(next);
        } catch (e) {
          log.error("Cannot persist lease with raised generation", { error: e as Error });
        }
      }
      return true;
    }
    this.displaced = true;
    counters.nameConflicts++;
    if (rec.nodeId === own.nodeId) log.error("A record for our name and node id sits at the generation limit; it cannot be out-ranked (forged or corrupted)", { generation: rec.generation });
    log.error("Node name taken over by another node; this node stops announcing its lease", {
      node: nodeName,
      ourNodeId: own.nodeId,
      theirNodeId: rec.nodeId,
      theirSubnet: rec.subnet,
    });
    return false;
  }
}
