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
import type { Gossip, GossipDelegate, GossipMetrics, Member } from "../gossip/types.ts";
import { SubnetExhaustedError, claimWinner, pickSubnet } from "./allocator.ts";
import { MAX_GENERATION, RecordValidator, checkDecoded, compareCounters, compareRecords, decodePayload, encodeRecord, encodeState, isEncodingOf, rangeOf, sameAsWire, sameRecord, subnetProblem } from "./record.ts";
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
   * With this listener, a full range does not reject start(): the listener hears why, and
   * the claim is tried again every exhaustedRetryMs until a subnet frees up (an expired
   * lease, a released one, a widened range after restart). Without it start() rejects
   * with SubnetExhaustedError.
   */
  onExhausted?: (e: SubnetExhaustedError) => void;
  /** Time between claim attempts while the range is full, ms (60 s). */
  exhaustedRetryMs?: number;
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
}

/** Extra surface for tests and the bench; the agent only needs {@link Cluster}. */
export interface ClusterCore extends Cluster {
  nodeId(): string | undefined;
  /** The replicated table, read-only use. */
  table(): LeaseTable;
  /** Called for every record that changed the table (cheap; used by the bench). */
  onRecord(fn: (l: Lease) => void): () => void;
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
  /** metrics() without the lease count, which walks the table (the bench reads 1000 nodes). */
  counters(): Omit<ClusterMetrics, "leases">;
}

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
    refreshMs = HOUR,
    settlePeers = 3,
    sweepMs = 60_000,
    random = Math.random,
    resolveHost = async (host: string) => (await lookup(host, { all: true, family: 4 })).map((a) => a.address),
  } = opts;
  const log = opts.logger.child("lease");
  const range = rangeOf(net);
  const validator = new RecordValidator(range);
  const table = new LeaseTable();
  const changeFns = new Set<() => void>();
  const renumberFns = new Set<(old: Lease, now: Lease) => void>();
  const recordFns = new Set<(l: Lease) => void>();
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

  // ---- table updates ------------------------------------------------------------------

  function ingest(payload: Uint8Array, from: string, what: string): void {
    try {
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
        if (table.merge(l)) {
          changed = true;
          const at = clock.now();
          recentChanges.push(at);
          if (recentChanges.length > settleQuietRecords + 1) recentChanges.shift();
          if ((l.renewedAt ?? l.claimedAt) < at - settleQuietMs) lastLateChangeAt = at;
          if (!l.deleted && l.claimedAt > maxClaimedAt) maxClaimedAt = l.claimedAt;
          for (const fn of recordFns) fn(l);
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
    for (const fn of recordFns) fn(l);
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
    if (committed && !claiming && table.claimants(own.subnet).length > 1) {
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
    return { ...base, subnet, claimedAt: Math.max(now, maxClaimedAt + 1) };
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

  async function renumber(winner: Lease): Promise<void> {
    if (claiming || stopped) return;
    claiming = true;
    const old = committed!;
    m.conflictsResolved++;
    m.renumbers++;
    attempt++;
    log.warn("RENUMBERING: a better claim on our committed subnet appeared (partition healed?)", {
      subnet: old.subnet,
      winner: winner.nodeName,
      winnerClaimedAt: winner.claimedAt,
      ourClaimedAt: old.claimedAt,
    });
    try {
      const now = await claimLoop(bg.signal, undefined);
      commit(now);
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
      if (!(e instanceof Aborted)) log.error("Cannot renumber own lease", { error: e as Error });
    } finally {
      claiming = false;
    }
    if (!stopped && committed) checkOwn();
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
    const l = { ...committed, version: committed.version + 1, renewedAt: stamp() };
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
    }
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

  async function start(signal: AbortSignal = new AbortController().signal): Promise<Lease> {
    if (gossip) throw new Error("Cannot start cluster: already started");
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
    const problem = persisted
      ? persisted.nodeName !== nodeName
        ? `it belongs to node ${persisted.nodeName}`
        : persisted.deleted
          ? "it was released"
          : (persisted.renewedAt ?? persisted.claimedAt) + leaseTtlMs <= clock.now()
            ? "it expired while this node was down (peers may have handed it out)"
            : subnetProblem(persisted.subnet, range)
      : "none persisted";
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
          if (!(e instanceof SubnetExhaustedError) || !opts.onExhausted) throw e;
          log.error("No free subnet; trying again later", { error: e, retryInMs: exhaustedRetryMs });
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
      const now = clock.now();
      const members = memberMap();
      const out: LeaseView[] = [];
      forEachWinner(members, now, (w) => {
        const mb = members.get(w.nodeName);
        const seen = lastSeenOf(w, members, now);
        out.push({
          ...w,
          state: w.nodeName === nodeName ? "alive" : (mb?.state ?? "unknown"),
          lastSeen: seen,
          expiresAt: seen + leaseTtlMs,
        });
      });
      return out;
    },
    members: () => gossip?.members() ?? [],
    onChange(fn) {
      changeFns.add(fn);
      return () => void changeFns.delete(fn);
    },
    onRenumber(fn) {
      renumberFns.add(fn);
      return () => void renumberFns.delete(fn);
    },
    onRecord(fn) {
      recordFns.add(fn);
      return () => void recordFns.delete(fn);
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
      // Counted, not built: a scrape needs only how many leases() would return.
      let leases = 0;
      forEachWinner(memberMap(), clock.now(), () => leases++);
      return { leases, ...m };
    },
    counters: () => ({ ...m }),
    nodeId: () => identity?.nodeId,
    table: () => table,
    joined: () => joinedP,
    gossipMetrics: () =>
      gossip?.metrics() ?? { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, decryptFailures: 0, decodeFailures: 0, duplicatesSkipped: 0 },
    memberEvent: (kind, mb) => {
      if (stopped) return;
      const prev = downStates.get(mb.name) ?? "alive";
      if (mb.state === "alive") downStates.delete(mb.name);
      else downStates.set(mb.name, mb.state);
      if (kind !== "leave" && mb.state === "alive" && (prev === "suspect" || prev === "dead" || prev === "left")) recoveryPushPull(mb.name);
      if (kind !== "update" || prev !== mb.state) emitChange();
    },
  };
  return facade;
}
