/**
 * The lease layer over a Gossip: allocation without a central store.
 *
 * A node announces a claim (its record, broadcast under its name), waits a settle
 * window, exchanges full state (push-pull) with the live members it knows, and commits
 * only if no better claim for the subnet turned up; otherwise it re-picks. Claims on one
 * subnet are ordered by (claimedAt, nodeName) — earliest wins — so every node that holds
 * the same records picks the same winner. A committed node that later learns of a better
 * claim (a healed partition) renumbers through the same procedure and reports it.
 * New claims carry claimedAt = max(now, newest claimedAt seen + 1), so a late joiner
 * cannot out-rank a committed lease it already knew about, even with a slow clock.
 * The node-name key is owned by the newest start: a fresh start (new nodeId) that finds
 * its name held by another nodeId takes the name over with a higher generation; a running
 * node that is taken over that way does not fight back (it logs an error and goes quiet).
 * Details and windows: docs/leases.md.
 */
import { lookup } from "node:dns/promises";
import type { Clock, TimerHandle } from "../clock.ts";
import type { NetConf } from "../config.ts";
import type { Logger } from "../log.ts";
import { type Gossip, type GossipDelegate, type GossipMetrics, type Member, emptyGossipMetrics } from "../gossip/types.ts";
import { ClaimBlockedError, ClockSkewError, SubnetExhaustedError, claimWinner, pickSubnet } from "./allocator.ts";
import { MAX_GENERATION, encodeRecord, encodeState } from "./record-codec.ts";
import { RecordValidator, publicIpTextProblem, rangeOf, subnetProblem } from "./record-validate.ts";
import { checkDecoded, decodePayload } from "./payload.ts";
import { claimBeats, compareCounters, compareRecords, isEncodingOf, sameAsWire, sameRecord } from "./record-order.ts";
import { type NodeIdentity, type StateStore, nextIdentity } from "./state-store.ts";
import { LeaseTable } from "./table.ts";
import type { BackendData, Cluster, ClusterMetrics, Lease, LeaseView } from "./types.ts";

export const HOUR = 3_600_000;

export interface ClusterCoreOptions {
  net: NetConf;
  nodeName: string;
  publicIp: string;
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
   * Largest difference between two nodes' clocks the lease layer tolerates, ms (60 s).
   * A received record dated (claimedAt or renewedAt) more than this ahead of our clock
   * is rejected, and a new claim is never dated more than half of it ahead of our clock,
   * so records of nodes whose clocks agree within half of it are accepted everywhere.
   * Keep it equal to the gossip layer's bound on sender timestamps.
   */
  maxClockSkewMs?: number;
  /** Owners re-announce (version+1, renewedAt=now) this often, ms (1 h). */
  refreshMs?: number;
  /**
   * Most members push-pulled in one settle window (3): all of them in clusters up to 4
   * nodes, a random sample beyond. Each push-pull moves the whole table and member list
   * both ways, so "every member" costs O(N²) bytes per join storm (1000 simultaneous
   * joins with 8 peers moved 900 MB in one simulated second); the claim broadcast reaches
   * the rest during the settle window, and a conflict found after commit is renumbered.
   */
  settlePeers?: number;
  /** Expiry/GC sweep period, ms (60 s). */
  sweepMs?: number;
  /** Extra addresses ("ip:port" or "ip") that count as this node's own when filtering seeds. */
  ownAddrs?: string[];
  /** Resolves a seed host name to addresses (default: the system resolver, IPv4). */
  resolveHost?: (host: string) => Promise<string[]>;
  random?: () => number;
  /** The replicated table to fill (default: a new, empty one); a simulation may pass one that observes merges. */
  table?: LeaseTable;
}

/** Extra surface for tests and the bench; the agent only needs {@link Cluster}. */
export interface ClusterCore extends Cluster {
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
}

/** Most peers remembered as sending records from the future (see futureNames). */
const FUTURE_NAMES_MAX = 1024;
/** First wait before a failed renumber is tried again, ms; doubled per failure up to exhaustedRetryMs. */
const RENUMBER_FIRST_RETRY_MS = 1000;

class Aborted extends Error {
  override name = "AbortError";
}

/** Builds the lease layer; `makeGossip` gets the delegate and returns the node's Gossip. */
export function createClusterCore(opts: ClusterCoreOptions, makeGossip: (delegate: GossipDelegate) => Gossip): ClusterCore {
  const {
    net,
    nodeName,
    clock,
    store,
    leaseTtlMs = 24 * HOUR,
    settleMs = 2000,
    settleQuietMs = 1000,
    settleQuietRecords = 16,
    settleMaxMs = 30_000,
    exhaustedRetryMs = 60_000,
    maxClockSkewMs = 60_000,
    refreshMs = HOUR,
    settlePeers = 3,
    sweepMs = 60_000,
    random = Math.random,
    resolveHost = async (host: string) => (await lookup(host, { all: true, family: 4 })).map((a) => a.address),
  } = opts;
  const log = opts.logger.child("lease");
  const range = rangeOf(net);
  const validator = new RecordValidator(range);
  const table = opts.table ?? new LeaseTable();
  const changeFns = new Set<() => void>();
  const renumberFns = new Set<(old: Lease, now: Lease) => void>();
  const m = { conflictsResolved: 0, renumbers: 0, rejectedRecords: 0, nameConflicts: 0, expired: 0 };

  let identity: NodeIdentity | undefined;
  let own: Lease | undefined; // our current record (claim or committed)
  let committed: Lease | undefined;
  let gossip: Gossip | undefined;
  let stopped = false;
  let displaced = false;
  let claiming = false; // a claim procedure (first claim or renumber) is running
  let attempt = 0;
  let maxClaimedAt = 0;
  // When peers' records last changed our table: the newest settleQuietRecords + 1 times,
  // and the last time a record arrived late (made more than settleQuietMs ago).
  const recentChanges: number[] = [];
  let lastLateChangeAt = -Infinity;
  const timers = new Set<TimerHandle>();
  const bg = new AbortController();
  let joinedResolve!: () => void;
  const joinedP = new Promise<void>((r) => (joinedResolve = r));
  let lastLiveKey = "";
  let stateCache: { rev: number; bytes: Uint8Array } | undefined;
  // Peers whose latest record was rejected as dated too far ahead of our clock: when, and
  // by how much. Bounded; entries older than a refresh period are dropped by the sweep
  // (an honest owner re-sends at least that often).
  const futureNames = new Map<string, { at: number; aheadMs: number }>();
  // Problems of the last routing pass already logged (each is logged once when it appears).
  let reportedProblems = new Set<string>();
  // Members whose address disagreed with their record's public IP at their last event.
  const mismatchedMembers = new Set<string>();

  // Record timestamps go on the wire as integers; fake clocks may run fractional.
  const stamp = () => Math.floor(clock.now());

  const sleep = (ms: number, signal?: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(new Aborted("start aborted"));
      const t = clock.after(ms, () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      });
      const onAbort = () => {
        t.cancel();
        reject(new Aborted("start aborted"));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
    });

  // ---- expiry -------------------------------------------------------------------------

  // Last time each owner was seen alive, kept after the gossip layer reaps a dead member,
  // so expiry counts from the last sign of life, not from the last refresh.
  const lastAlive = new Map<string, number>();

  const memberMap = (): Map<string, Member> => {
    const out = new Map<string, Member>();
    if (gossip) for (const mb of gossip.members()) out.set(mb.name, mb);
    return out;
  };

  function lastSeenOf(l: Lease, members: Map<string, Member> | undefined, now: number): number {
    if (l.nodeName === nodeName) {
      if (committed && !displaced) return now;
      // Before commit the member under our name is us, not the record's past owner.
      return l.renewedAt ?? l.claimedAt;
    }
    let seen = Math.max(l.renewedAt ?? l.claimedAt, lastAlive.get(l.nodeName) ?? 0);
    const mb = members?.get(l.nodeName);
    if (mb) {
      if (mb.state === "alive" || mb.state === "suspect") {
        lastAlive.set(l.nodeName, now);
        return now;
      }
      seen = Math.max(seen, mb.lastSeen);
    }
    return seen;
  }

  /** A record that holds its subnet now: not deleted and owner seen within the TTL. */
  const isLive = (l: Lease, members: Map<string, Member> | undefined, now: number) =>
    !l.deleted && lastSeenOf(l, members, now) + leaseTtlMs > now;

  /** Calls `fn` with the lease that holds each claimed subnet now (the live claim that wins it). */
  function forEachWinner(members: Map<string, Member>, now: number, fn: (w: Lease) => void): void {
    for (const subnet of table.claimedSubnets()) {
      const w = claimWinner(table.claimants(subnet), (c) => isLive(c, members, now));
      if (w) fn(w);
    }
  }

  function subnetTakenByOther(subnet: string, members: Map<string, Member>, now: number): boolean {
    for (const c of table.claimants(subnet)) if (c.nodeName !== nodeName && isLive(c, members, now)) return true;
    return false;
  }

  /** The live claim that beats `mine` on its subnet, if any. */
  function betterClaim(mine: Lease, members: Map<string, Member>, now: number): Lease | undefined {
    const rivals = table.claimants(mine.subnet).filter((c) => c.nodeName !== nodeName && isLive(c, members, now));
    if (rivals.length === 0) return undefined;
    const w = claimWinner([mine, ...rivals]);
    return w === mine ? undefined : w;
  }

  // ---- which winners get routes ---------------------------------------------------------

  /**
   * Why this node must not route to `w` (a peer's winning lease), or undefined. Records
   * are checked on arrival for what holds everywhere (record-validate.ts); these rules depend on
   * this node: its own public IP and VTEP MAC, and what its gossip layer knows of the
   * owner. The agent advertises its public IP as its gossip address, so a member that
   * gossips from another usable address while its record names this one is inconsistent
   * (a forged or stale record). A member address that could not be a public IP (loopback
   * in tests) is not compared; neither is an owner that is not a member (yet or any more).
   */
  function unroutableWhy(w: Lease, members: Map<string, Member>): string | undefined {
    const what = `lease of ${w.nodeName} (${w.subnet})`;
    if (w.publicIp === opts.publicIp) return `${what} names this node's public IP ${w.publicIp}: not routed`;
    const mac = w.backend.vtepMac;
    if (mac !== undefined && mac === ownMac()) return `${what} carries this node's VTEP MAC ${mac}: not routed`;
    const mb = members.get(w.nodeName);
    if (mb && !mb.addr.startsWith(`${w.publicIp}:`)) {
      const ip = mb.addr.slice(0, mb.addr.lastIndexOf(":"));
      if (!publicIpTextProblem(ip)) return `${what} names public IP ${w.publicIp} but member ${w.nodeName} gossips from ${ip}: not routed`;
    }
    return undefined;
  }

  const ownMac = (): string | undefined => (identity ? backendFor(identity.nodeId).vtepMac : undefined);

  /**
   * The winning leases this node routes to (leases()), and why the others are not. Of
   * peers sharing a VTEP MAC only one is routed — an FDB entry names one destination per
   * MAC, so a second claimant would capture or black-hole the first's traffic — chosen
   * the same way wherever the owners' gossip states agree: an owner that is up (alive or
   * suspect) before one that is not, then the subnet claim order (earliest claimedAt,
   * then name). A renamed host's old record (same nodeId, so same MAC, owner gone) thus
   * yields to the new one. Both claimants are named in the problem.
   */
  function routed(members: Map<string, Member>, now: number): { routes: Lease[]; problems: string[]; unrouted: number } {
    const routes: Lease[] = [];
    const problems: string[] = [];
    const byMac = new Map<string, Lease>();
    let clashes: Map<string, Lease[]> | undefined;
    forEachWinner(members, now, (w) => {
      // Once our name was taken over, the record under it is another machine's.
      if (w.nodeName !== nodeName || displaced) {
        const why = unroutableWhy(w, members);
        if (why) return void problems.push(why);
        const mac = w.backend.vtepMac;
        if (mac !== undefined) {
          const first = byMac.get(mac);
          if (!first) byMac.set(mac, w);
          else {
            clashes ??= new Map();
            const group = clashes.get(mac) ?? [first];
            group.push(w);
            clashes.set(mac, group);
          }
        }
      }
      routes.push(w);
    });
    if (!clashes) return { routes, problems, unrouted: problems.length };
    const up = (l: Lease) => {
      const st = members.get(l.nodeName)?.state;
      return st === "alive" || st === "suspect";
    };
    const dropped = new Set<Lease>();
    const unfit = problems.length;
    for (const [mac, group] of clashes) {
      const keep = group.reduce((a, b) => (up(a) !== up(b) ? (up(a) ? a : b) : claimBeats(a, b) ? a : b));
      for (const l of group) if (l !== keep) dropped.add(l);
      const who = group
        .map((l) => `${l.nodeName} (${l.subnet} at ${l.publicIp})`)
        .sort()
        .join(", ");
      problems.push(`VTEP MAC ${mac} is claimed by ${who}: only ${keep.nodeName} is routed`);
    }
    return { routes: routes.filter((l) => !dropped.has(l)), problems, unrouted: unfit + dropped.size };
  }

  /** routed(), logging each problem once when it appears (warn). */
  function routedNow(): ReturnType<typeof routed> & { members: Map<string, Member>; now: number } {
    const now = clock.now();
    const members = memberMap();
    const r = routed(members, now);
    if (r.problems.length > 0 || reportedProblems.size > 0) {
      for (const p of r.problems) if (!reportedProblems.has(p)) log.warn("Lease not routed", { problem: p });
      reportedProblems = new Set(r.problems);
    }
    return { ...r, members, now };
  }

  // ---- table updates ------------------------------------------------------------------

  function ingest(payload: Uint8Array, from: string, what: string): void {
    try {
      // A record dated beyond this is refused: far-future claimedAt would push every later
      // claim past what peers accept, far-future renewedAt would never expire.
      const latest = clock.now() + maxClockSkewMs;
      const d = decodePayload(payload, (name) => table.get(name));
      if ("error" in d) {
        m.rejectedRecords++;
        log.debug("Dropped lease payload", { from, what, error: d.error });
        return;
      }
      let changed = false;
      for (let i = 0; i < d.raw.length; i++) {
        // Push-pull resends mostly records we hold. One that is older than (or identical
        // to) the held record cannot change the table, so it is skipped unvalidated.
        const k = d.known[i];
        if (k ? cannotWinKnown(k.lease) : cannotWin(d.raw[i], payload, d.at[2 * i]!, d.at[2 * i + 1]!)) continue;
        const l = checkDecoded(validator, d, i, payload);
        if (typeof l === "string") {
          m.rejectedRecords++;
          log.debug("Rejected lease record", { from, what, reason: l });
          continue;
        }
        const dated = Math.max(l.claimedAt, l.renewedAt ?? 0);
        if (dated > latest) {
          m.rejectedRecords++;
          const aheadMs = dated - (latest - maxClockSkewMs);
          if (futureNames.size < FUTURE_NAMES_MAX || futureNames.has(l.nodeName)) futureNames.set(l.nodeName, { at: latest - maxClockSkewMs, aheadMs });
          log.debug("Rejected lease record", { from, what, node: l.nodeName, reason: `dated ${aheadMs} ms ahead of this node's clock (more than maxClockSkewMs ${maxClockSkewMs})` });
          continue;
        }
        if (futureNames.size > 0) futureNames.delete(l.nodeName);
        if (table.merge(l)) {
          changed = true;
          const at = clock.now();
          recentChanges.push(at);
          if (recentChanges.length > settleQuietRecords + 1) recentChanges.shift();
          if ((l.renewedAt ?? l.claimedAt) < at - settleQuietMs) lastLateChangeAt = at;
          if (!l.deleted && l.claimedAt > maxClaimedAt) maxClaimedAt = l.claimedAt;
        }
      }
      if (changed) afterChange();
    } catch (e) {
      // A delegate callback must never throw into the gossip layer.
      m.rejectedRecords++;
      log.warn("Cannot merge lease payload", { from, what, error: e as Error });
    }
  }

  /** cannotWin() for a record found by its bytes (the same answer, from the record). */
  function cannotWinKnown(l: Lease): boolean {
    const held = table.get(l.nodeName);
    if (!held) return false;
    const c = compareCounters(l.generation, l.version, held);
    return c !== 0 ? c < 0 : l === held || sameRecord(l, held);
  }

  /** `raw` was decoded from payload[start, end) (start < 0: unknown). */
  function cannotWin(raw: unknown, payload: Uint8Array, start: number, end: number): boolean {
    if (!Array.isArray(raw) || typeof raw[0] !== "string") return false;
    const held = table.get(raw[0]);
    if (!held) return false;
    const gen = raw[2];
    const ver = raw[3];
    if (typeof gen !== "number" || typeof ver !== "number") return false;
    const c = compareCounters(gen, ver, held);
    // Same counters: usually the very record we hold, which its bytes show at once.
    return c !== 0 ? c < 0 : (start >= 0 && isEncodingOf(held, payload, start, end)) || sameAsWire(raw, held);
  }

  function afterChange(): void {
    if (!stopped) checkOwn();
    emitChange();
  }

  function emitChange(): void {
    for (const fn of changeFns) {
      try {
        fn();
      } catch (e) {
        log.error("onChange listener threw", { error: e as Error });
      }
    }
  }

  function publish(l: Lease): void {
    own = l;
    table.merge(l);
    if (l.claimedAt > maxClaimedAt) maxClaimedAt = l.claimedAt;
    gossip?.broadcast(nodeName, encodeRecord(l));
  }

  function persistIdentity(): void {
    store.saveIdentity(identity!);
  }

  /** Reacts to records about our name or our subnet (committed nodes only; claims check at settle). */
  function checkOwn(): void {
    if (!own || displaced) return;
    const rec = table.get(nodeName);
    if (rec && rec !== own && compareRecords(rec, own) > 0) {
      if ((rec.nodeId === own.nodeId || !committed) && bumpGenerationAbove(rec.generation)) {
        // Our own older start (restored state dir) or, before commit, a previous owner of
        // the name: take the name with a higher generation.
        const next = { ...own, generation: identity!.generation, version: 0, renewedAt: stamp() };
        publish(next);
        if (committed && !claiming) {
          try {
            commit(next);
          } catch (e) {
            log.error("Cannot persist lease with raised generation", { error: e as Error });
          }
        }
      } else {
        displaced = true;
        m.nameConflicts++;
        if (rec.nodeId === own.nodeId) log.error("A record for our name and node id sits at the generation limit; it cannot be out-ranked (forged or corrupted)", { generation: rec.generation });
        log.error("Node name taken over by another node; this node stops announcing its lease", {
          node: nodeName,
          ourNodeId: own.nodeId,
          theirNodeId: rec.nodeId,
          theirSubnet: rec.subnet,
        });
        return;
      }
    }
    // While a failed renumber waits for its retry, only the retry timer tries again: a
    // retry on every table change would be a loop paced by the peers, not by us.
    if (committed && !claiming && !renumberRetry && table.claimants(own.subnet).length > 1) {
      const now = clock.now();
      const better = betterClaim(own, memberMap(), now);
      if (better) void renumber(better);
    }
  }

  /**
   * Raises our generation above `gen`. Returns false, without changing anything, when that
   * would leave the valid range: a record at the limit can only be a forgery (or a
   * corrupted peer), and no record of ours could ever out-rank it on peers.
   */
  function bumpGenerationAbove(gen: number): boolean {
    if (identity!.generation > gen) return true;
    if (gen + 1 > MAX_GENERATION) return false;
    identity = { ...identity!, generation: gen + 1 };
    try {
      persistIdentity();
    } catch (e) {
      log.error("Cannot persist raised generation", { error: e as Error });
    }
    return true;
  }

  // ---- claiming -----------------------------------------------------------------------

  function backendFor(nodeId: string): BackendData {
    return typeof opts.backend === "function" ? opts.backend(nodeId) : opts.backend;
  }

  /**
   * The next claim. `previousName` is a still-live record under our name (re-learned from
   * peers: it keeps its claimedAt, i.e. its seniority). `prefer` is a subnet we held
   * before whose lease expired: taken again if free, but as a new claim.
   */
  function newClaim(previousName?: Lease, prefer?: string): Lease {
    const skewed = clockSkewBlock();
    if (skewed) throw skewed;
    const now = stamp();
    const members = memberMap();
    const base = {
      nodeName,
      nodeId: identity!.nodeId,
      generation: identity!.generation,
      version: own && own.generation === identity!.generation ? own.version + 1 : 0,
      publicIp: opts.publicIp,
      backend: backendFor(identity!.nodeId),
      renewedAt: now,
    };
    // Re-learn: peers still hold our name's record (lost state dir, reinstall).
    if (previousName && !previousName.deleted && !subnetProblem(previousName.subnet, range) && isLive(previousName, members, now)) {
      const mine = { ...base, subnet: previousName.subnet, claimedAt: previousName.claimedAt };
      if (!betterClaim(mine, members, now)) {
        log.info("Re-learned own lease from peers", { subnet: mine.subnet, previousNodeId: previousName.nodeId });
        return mine;
      }
    }
    const taken = (s: string) => subnetTakenByOther(s, members, now);
    const subnet = prefer && !subnetProblem(prefer, range) && !taken(prefer) ? prefer : pickSubnet(nodeName, range, taken, attempt);
    // After every claim we know of, but never more than half the allowed skew ahead of our
    // clock: peers whose clocks agree with ours within that half still accept it.
    return { ...base, subnet, claimedAt: Math.max(now, Math.min(maxClaimedAt + 1, now + Math.floor(maxClockSkewMs / 2))) };
  }

  /**
   * A ClockSkewError when at least as many peers sent only records dated too far ahead
   * (futureNames) as sent records we accepted: then our clock is the odd one out, most
   * likely behind, and a claim would neither see their leases nor rank after them.
   */
  function clockSkewBlock(): ClockSkewError | undefined {
    if (futureNames.size === 0) return undefined;
    let accepted = table.size - (table.get(nodeName) ? 1 : 0);
    for (const name of futureNames.keys()) if (table.get(name)) accepted--;
    if (futureNames.size < accepted) return undefined;
    let worst = 0;
    for (const f of futureNames.values()) worst = Math.max(worst, f.aheadMs);
    return new ClockSkewError(
      `Cannot claim a subnet: lease records of ${futureNames.size} of ${futureNames.size + accepted} peers are dated up to ${Math.round(worst / 1000)} s ahead of this node's clock (allowed: ${maxClockSkewMs / 1000} s); fix time synchronisation`,
    );
  }

  function settleTargets(): string[] {
    const names: string[] = [];
    if (!gossip) return names;
    for (const mb of gossip.members()) if (mb.name !== nodeName && mb.state === "alive") names.push(mb.name);
    // Partial Fisher-Yates: a uniform sample without sorting the whole list.
    const k = Math.min(settlePeers, names.length);
    for (let i = 0; i < k; i++) {
      const j = i + Math.floor(random() * (names.length - i));
      [names[i], names[j]] = [names[j]!, names[i]!];
    }
    return names.slice(0, k);
  }

  /** settleMs, then on until the table is quiet (see settleQuietMs), at most settleMaxMs in all. */
  async function settle(signal: AbortSignal): Promise<void> {
    const t0 = clock.now();
    await sleep(settleMs, signal);
    for (;;) {
      const now = clock.now();
      // Quiet once the (settleQuietRecords + 1)-th newest change has left the window, and
      // no late news came within it: old claims still arriving mean dissemination lags
      // (a storm's tail), while a trickle of joins brings only fresh ones.
      const oldestThatCounts = recentChanges.length > settleQuietRecords ? recentChanges[recentChanges.length - 1 - settleQuietRecords]! : -Infinity;
      const quietAt = Math.max(oldestThatCounts, lastLateChangeAt) + settleQuietMs;
      if (quietAt <= now || now - t0 >= settleMaxMs) return;
      await sleep(Math.min(quietAt, t0 + settleMaxMs) - now, signal);
    }
  }

  /** Announce → settle → push-pull → verify, until a claim survives. Returns the claim. */
  async function claimLoop(signal: AbortSignal, first: Lease | undefined, prefer?: string): Promise<Lease> {
    let learned = first;
    for (;;) {
      const mine = newClaim(learned, prefer);
      learned = undefined;
      prefer = undefined;
      publish(mine);
      log.info("Claiming subnet", { subnet: mine.subnet, claimedAt: mine.claimedAt, attempt });
      await settle(signal);
      const targets = settleTargets();
      await Promise.allSettled(targets.map((t) => gossip!.pushPull(t)));
      if (signal.aborted) throw new Aborted("start aborted");
      if (displaced) throw new Error(`Cannot claim a subnet: node name ${nodeName} was taken over by another node`);
      const now = clock.now();
      const better = betterClaim(own!, memberMap(), now);
      if (!better) return own!;
      m.conflictsResolved++;
      attempt++;
      log.info("Lost subnet claim, re-picking", { subnet: own!.subnet, winner: better.nodeName, winnerClaimedAt: better.claimedAt });
    }
  }

  function commit(l: Lease): void {
    store.saveLease(l);
    committed = l;
  }

  // ---- renumbering ---------------------------------------------------------------------

  // Why the committed lease is being renumbered, or why the last attempt failed and when
  // the next one runs (readiness); undefined while the lease stands unchallenged.
  let renumberWhy: string | undefined;
  let renumberRetry: TimerHandle | undefined;
  let renumberDelayMs = 0;

  function setRenumberWhy(why: string | undefined): void {
    if (why === renumberWhy) return;
    renumberWhy = why;
    emitChange();
  }

  async function renumber(winner: Lease): Promise<void> {
    if (claiming || stopped) return;
    claiming = true;
    const old = committed!;
    attempt++;
    log.warn("RENUMBERING: a better claim on our committed subnet appeared (partition healed?)", {
      subnet: old.subnet,
      winner: winner.nodeName,
      winnerClaimedAt: winner.claimedAt,
      ourClaimedAt: old.claimedAt,
    });
    setRenumberWhy(`renumbering: ${winner.nodeName} holds an earlier claim on ${old.subnet}`);
    try {
      const now = await claimLoop(bg.signal, undefined);
      commit(now);
      m.conflictsResolved++;
      m.renumbers++;
      renumberDelayMs = 0;
      renumberWhy = undefined;
      log.warn("Renumbered own lease", { old: old.subnet, now: now.subnet });
      for (const fn of renumberFns) {
        try {
          fn(old, now);
        } catch (e) {
          log.error("onRenumber listener threw", { error: e as Error });
        }
      }
      emitChange();
    } catch (e) {
      if (e instanceof Aborted || stopped) return;
      // Every failure waits for a timer, growing up to exhaustedRetryMs: retrying at once
      // (a full range fails without any wait) would spin the event loop.
      renumberDelayMs = renumberDelayMs === 0 ? Math.min(RENUMBER_FIRST_RETRY_MS, exhaustedRetryMs) : Math.min(2 * renumberDelayMs, exhaustedRetryMs);
      const delay = Math.round(renumberDelayMs * (0.75 + random() / 4));
      log.error("Cannot renumber own lease; trying again later", { subnet: old.subnet, error: e as Error, retryInMs: delay });
      const h = clock.after(delay, () => {
        timers.delete(h);
        renumberRetry = undefined;
        retryRenumber();
      });
      timers.add(h);
      renumberRetry = h;
      setRenumberWhy(`cannot renumber ${old.subnet} (${winner.nodeName} holds an earlier claim): ${(e as Error).message}; next attempt in ${Math.ceil(delay / 1000)} s`);
      return;
    } finally {
      claiming = false;
    }
    if (!stopped && committed) checkOwn();
  }

  /** The back-off timer fired: renumber again if our committed subnet is still lost. */
  function retryRenumber(): void {
    if (stopped || claiming || !committed) return;
    if (displaced) return setRenumberWhy(undefined);
    const better = betterClaim(committed, memberMap(), clock.now());
    if (better) return void renumber(better);
    log.info("The better claim on our subnet is gone; keeping it", { subnet: committed.subnet });
    // A failed attempt may have left one of its claims as our record.
    if (own !== committed) republishCommitted();
    renumberDelayMs = 0;
    setRenumberWhy(undefined);
  }

  // ---- partition heal -----------------------------------------------------------------

  // The last state each member was seen in, kept only while it is not alive (absent =
  // alive): a map of every member was a sixth of each node's maps in a 1000-node run.
  const downStates = new Map<string, Member["state"]>();
  // Token bucket: at most 3 recovery push-pulls at once, one more every 5 s, so a heal
  // between two halves of a large cluster does not start N²/4 exchanges.
  let recoveryTokens = 3;
  let recoveryRefillAt = 0;
  function recoveryPushPull(name: string): void {
    const now = clock.now();
    if (now >= recoveryRefillAt) {
      recoveryTokens = Math.min(3, recoveryTokens + Math.max(1, Math.floor((now - recoveryRefillAt) / 5000)));
      recoveryRefillAt = now + 5000;
    }
    if (recoveryTokens <= 0 || !gossip) return;
    recoveryTokens--;
    later(random() * 500, () => {
      if (stopped || !gossip) return;
      gossip.pushPull(name).catch((e) => log.debug("Recovery push-pull failed", { member: name, error: e as Error }));
    });
  }

  /**
   * True when `mb`'s address now agrees with its record's public IP where it did not, or
   * the other way round (a moved node, or a forgery): leases() changes then, even though
   * the member's state did not.
   */
  function addressFitChanged(mb: Member): boolean {
    const rec = table.get(mb.name);
    const ip = mb.addr.slice(0, mb.addr.lastIndexOf(":"));
    const misfit = !!rec && ip !== rec.publicIp;
    if (misfit === mismatchedMembers.has(mb.name)) return false;
    if (misfit) mismatchedMembers.add(mb.name);
    else mismatchedMembers.delete(mb.name);
    return true;
  }

  // ---- periodic work ------------------------------------------------------------------

  function every(ms: number, fn: () => void): void {
    const tick = () => {
      if (stopped) return;
      try {
        fn();
      } catch (e) {
        log.error("Periodic lease task failed", { error: e as Error });
      }
      later(ms, tick);
    };
    later(ms, tick);
  }

  /** A timer that stop() cancels; forgotten once it fired. */
  function later(ms: number, fn: () => void): void {
    const h = clock.after(ms, () => {
      timers.delete(h);
      fn();
    });
    timers.add(h);
  }

  function refresh(): void {
    if (!committed || displaced || claiming) return;
    republishCommitted();
  }

  /** Announces the committed lease again (renewedAt = now), above our newest record's counters. */
  function republishCommitted(): void {
    const c = committed!;
    // After a failed renumber our newest record may be one of its claims, not the lease.
    const top = own && compareCounters(own.generation, own.version, c) > 0 ? own : c;
    const l = { ...c, generation: top.generation, version: top.version + 1, renewedAt: stamp() };
    publish(l);
    try {
      commit(l);
    } catch (e) {
      log.error("Cannot persist refreshed lease", { error: e as Error });
    }
  }

  /** Drops records silent for 2×TTL (tombstones included) and reports expiries. */
  function sweep(): void {
    const now = clock.now();
    const members = memberMap();
    const gone: string[] = [];
    let liveKey = "";
    for (const l of table.all()) {
      if (l.nodeName === nodeName) continue;
      const seen = lastSeenOf(l, members, now);
      if (seen + 2 * leaseTtlMs <= now) gone.push(l.nodeName);
      else if (!l.deleted && seen + leaseTtlMs > now) liveKey += `${l.nodeName}|`;
    }
    for (const n of gone) {
      table.remove(n);
      lastAlive.delete(n);
      mismatchedMembers.delete(n);
    }
    for (const [n, f] of futureNames) if (f.at + refreshMs <= now) futureNames.delete(n);
    m.expired += gone.length;
    if (liveKey !== lastLiveKey) {
      if (lastLiveKey !== "") emitChange();
      lastLiveKey = liveKey;
    }
  }

  // ---- seeds --------------------------------------------------------------------------

  /**
   * Seeds as "ip:port", without this node's own address (so every node can share one
   * list). Host names are resolved; one that does not resolve is kept as written and
   * left to the gossip layer's retries.
   */
  async function otherSeeds(): Promise<string[]> {
    const advIp = opts.advertiseAddr.replace(/:\d+$/, "");
    const advPort = opts.advertiseAddr.slice(advIp.length + 1);
    const ownIps = new Set([advIp, opts.publicIp, ...(opts.ownAddrs ?? [])]);
    const out: string[] = [];
    for (const seed of opts.seeds) {
      const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(seed);
      if (!m) {
        log.warn("Ignoring malformed seed (expected host:port)", { seed });
        continue;
      }
      const [, host, port] = m as unknown as [string, string, string];
      let ips = [host];
      if (!/^[\d.]+$/.test(host) && !host.includes(":")) {
        try {
          const found = await resolveHost(host);
          if (found.length > 0) ips = found;
        } catch (e) {
          log.warn("Cannot resolve seed; the gossip layer will retry it", { seed, error: e as Error });
        }
      }
      if (port === advPort && ips.some((ip) => ownIps.has(ip))) continue;
      if (opts.ownAddrs?.includes(seed)) continue;
      const addr = `${ips[0]}:${port}`;
      if (!out.includes(addr)) out.push(addr);
    }
    return out;
  }

  // ---- the facade ---------------------------------------------------------------------

  const delegate: GossipDelegate = {
    notifyMessage: (payload, from) => ingest(payload, from, "broadcast"),
    localState: () => {
      if (!stateCache || stateCache.rev !== table.revision) stateCache = { rev: table.revision, bytes: encodeState(table.all()) };
      return stateCache.bytes;
    },
    mergeRemoteState: (payload, _join, from) => ingest(payload, from, "push-pull"),
    stateDigest: () => table.digest(),
  };

  /** Why the persisted own lease cannot be reused as it is, or undefined. */
  function persistedProblem(p: Lease): string | undefined {
    const now = clock.now();
    if (p.nodeName !== nodeName) return `it belongs to node ${p.nodeName}`;
    if (p.deleted) return "it was released";
    // Peers whose clocks agree with ours would reject it; it is claimed anew (the same subnet if free).
    if (Math.max(p.claimedAt, p.renewedAt ?? 0) > now + maxClockSkewMs) return `it is dated more than ${maxClockSkewMs / 1000} s ahead of this node's clock (was the clock set back?)`;
    if ((p.renewedAt ?? p.claimedAt) + leaseTtlMs <= now) return "it expired while this node was down (peers may have handed it out)";
    return subnetProblem(p.subnet, range);
  }

  async function start(signal: AbortSignal = new AbortController().signal): Promise<Lease> {
    if (gossip) throw new Error("Cannot start cluster: already started");
    const ipProblem = validator.publicIpProblem(opts.publicIp);
    if (ipProblem) throw new Error(`Cannot start cluster: ${ipProblem}; peers would reject this node's lease`);
    const loaded = store.load();
    identity = nextIdentity(loaded, nodeName);
    persistIdentity(); // before anything is announced: the generation must never repeat
    log.info("Node identity", { nodeId: identity.nodeId, generation: identity.generation });
    gossip = makeGossip(delegate);
    await gossip.start();
    const seeds = await otherSeeds();
    every(refreshMs, refresh);
    every(sweepMs, sweep);

    const persisted = loaded.lease;
    const problem = persisted ? persistedProblem(persisted) : "none persisted";
    if (persisted && !problem) {
      const now = stamp();
      const l: Lease = {
        nodeName,
        nodeId: identity.nodeId,
        generation: identity.generation,
        version: 0,
        subnet: persisted.subnet,
        publicIp: opts.publicIp,
        backend: backendFor(identity.nodeId),
        claimedAt: persisted.claimedAt,
        renewedAt: now,
      };
      publish(l);
      commit(l);
      log.info("Reusing persisted lease; joining in the background", { subnet: l.subnet, seeds: seeds.length });
      if (seeds.length === 0) joinedResolve();
      else
        gossip.join(seeds, bg.signal).then(
          () => {
            joinedResolve();
            if (!stopped) checkOwn();
          },
          (e) => {
            if (!stopped) log.error("Background join failed", { error: e as Error });
          },
        );
      emitChange();
      return l;
    }
    if (persisted) log.warn("Not reusing persisted lease", { subnet: persisted.subnet, reason: problem });

    const combined = AbortSignal.any([signal, bg.signal]);
    if (seeds.length > 0) {
      log.info("Joining cluster before claiming", { seeds });
      const answered = await gossip.join(seeds, combined);
      if (answered === 0 || combined.aborted) throw new Aborted("Cannot start cluster: aborted while joining (no seed answered)");
    } else {
      log.info("No other seeds: bootstrapping a new cluster");
    }
    joinedResolve();
    // What peers know about our name: our own old record, or a previous owner's.
    const previous = table.get(nodeName);
    if (previous && previous !== own && !bumpGenerationAbove(previous.generation)) {
      log.error("A record for our name sits at the generation limit and cannot be out-ranked (forged or corrupted)", { generation: previous.generation });
    }
    claiming = true;
    try {
      // An expired own lease is preferred again, as a new claim, if nobody took it.
      const prefer = persisted && persisted.nodeName === nodeName && !persisted.deleted ? persisted.subnet : previous?.subnet;
      let l: Lease;
      for (;;) {
        try {
          l = await claimLoop(combined, previous, prefer);
          break;
        } catch (e) {
          if (!(e instanceof ClaimBlockedError) || !opts.onExhausted) throw e;
          log.error(e instanceof SubnetExhaustedError ? "No free subnet; trying again later" : "Cannot claim a subnet now; trying again later", { error: e, retryInMs: exhaustedRetryMs });
          opts.onExhausted(e);
          await sleep(exhaustedRetryMs, combined);
        }
      }
      commit(l);
      log.info("Committed lease", { subnet: l.subnet });
      emitChange();
      return l;
    } finally {
      claiming = false;
    }
  }

  const facade: ClusterCore = {
    start,
    ownLease: () => (displaced ? undefined : committed),
    leases(): LeaseView[] {
      const { routes, members, now } = routedNow();
      return routes.map((w) => {
        const seen = lastSeenOf(w, members, now);
        return {
          ...w,
          state: w.nodeName === nodeName ? "alive" : (members.get(w.nodeName)?.state ?? "unknown"),
          lastSeen: seen,
          expiresAt: seen + leaseTtlMs,
        };
      });
    },
    problems(): string[] {
      const out = routedNow().problems;
      if (futureNames.size > 0) {
        let worst = { name: "", aheadMs: 0 };
        for (const [name, f] of futureNames) if (f.aheadMs > worst.aheadMs) worst = { name, aheadMs: f.aheadMs };
        out.push(
          `lease records of ${futureNames.size} peer(s) rejected as dated more than ${maxClockSkewMs / 1000} s ahead of this node's clock (${worst.name}: ${Math.round(worst.aheadMs / 1000)} s ahead): this clock is behind, theirs ahead, or the records are forged`,
        );
      }
      return out;
    },
    renumbering: () => (displaced ? undefined : renumberWhy),
    members: () => gossip?.members() ?? [],
    onChange(fn) {
      changeFns.add(fn);
      return () => void changeFns.delete(fn);
    },
    onRenumber(fn) {
      renumberFns.add(fn);
      return () => void renumberFns.delete(fn);
    },
    async stop({ leave, release = false }: { leave: boolean; release?: boolean }) {
      if (stopped) return;
      if (release && committed && gossip && !displaced) {
        // A tombstone frees the subnet at once instead of after the TTL.
        const tomb = { ...committed, version: committed.version + 1, renewedAt: stamp(), deleted: true };
        publish(tomb);
        try {
          store.saveLease(tomb);
        } catch (e) {
          log.error("Cannot persist released lease", { error: e as Error });
        }
      }
      stopped = true;
      bg.abort();
      for (const t of timers) t.cancel();
      if (!gossip) return;
      // A release must reach the peers: leaving gossips the queued tombstone out first,
      // a plain shutdown would drop it with the queue.
      if (leave || release) await gossip.leave(5000);
      else await gossip.shutdown();
    },
    metrics: (): ClusterMetrics => {
      const r = routed(memberMap(), clock.now());
      return { leases: r.routes.length, ...m, unrouted: r.unrouted };
    },
    nodeId: () => identity?.nodeId,
    table: () => table,
    joined: () => joinedP,
    gossipMetrics: () =>
      gossip?.metrics() ?? emptyGossipMetrics(),
    memberEvent: (kind, mb) => {
      if (stopped) return;
      const prev = downStates.get(mb.name) ?? "alive";
      if (mb.state === "alive") downStates.delete(mb.name);
      else downStates.set(mb.name, mb.state);
      if (kind !== "leave" && mb.state === "alive" && (prev === "suspect" || prev === "dead" || prev === "left")) recoveryPushPull(mb.name);
      if (kind !== "update" || prev !== mb.state || addressFitChanged(mb)) emitChange();
    },
  };
  return facade;
}
