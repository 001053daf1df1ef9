/**
 * The lease layer over a Gossip: allocation without a central store. This file wires the
 * parts; each concern lives in its own file:
 *   claim.ts        announce → settle → push-pull → verify, until a claim survives
 *   settle.ts       the settle window (longer while a join storm is still arriving)
 *   renumber.ts     a committed lease that lost its subnet claims again, with back-off
 *   own-lease.ts    this node's record: identity, publish/commit, the name takeover rule
 *   ingest.ts       received payloads into the table (validated, old records skipped)
 *   expiry.ts       liveness of owners and expiry of silent records
 *   winners.ts      which live claim holds each subnet
 *   routing.ts      which winners this node routes to, and the problems it reports
 *   clock-bounds.ts record dates against this node's clock; dating our own claims
 *   heal-limiter.ts recovery push-pulls after a partition heals, rate-limited
 *   seeds.ts        the seed list, with an injected resolver
 * Details and windows: docs/leases.md. A little over 400 lines: the wiring of these
 * parts and the ClusterCore methods that put them in order.
 */
import { CLOCK_SKEW_MS } from "../clock.ts";
import { type Gossip, type GossipDelegate, type Member, emptyGossipMetrics } from "../gossip/types.ts";
import type { Transport } from "../gossip/transport.ts";
import { ClaimBlockedError, SubnetExhaustedError } from "./allocator.ts";
import { Claimer } from "./claim.ts";
import type { ClusterCore, ClusterCoreOptions } from "./cluster-options.ts";
import { ClockBounds } from "./clock-bounds.ts";
import { Expiry, Liveness } from "./expiry.ts";
import { HealLimiter } from "./heal-limiter.ts";
import { createIngest } from "./ingest.ts";
import { OwnLease } from "./own-lease.ts";
import { forgetTombstone } from "./forget.ts";
import { encodeRecord, encodeState } from "./record-codec.ts";
import { describeSubnets, familiesOf, publicIpFields, subnetFields } from "./families.ts";
import { rangesOf, RecordValidator } from "./record-validate.ts";
import { Renumberer } from "./renumber.ts";
import { Routing } from "./routing.ts";
import { Aborted, Scheduler } from "./scheduler.ts";
import { resolveSeeds, systemResolveHost } from "./seeds.ts";
import { SettleWindow } from "./settle.ts";
import { nextIdentity } from "./state-store.ts";
import { LeaseTable } from "./table.ts";
import type { ClusterMetrics, Lease, LeaseCounters, LeaseView } from "./types.ts";
import { Winners } from "./winners.ts";

export const HOUR = 3_600_000;

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
    maxClockSkewMs = 2 * CLOCK_SKEW_MS,
    refreshMs = HOUR,
    settlePeers = 3,
    sweepMs = 60_000,
    random = Math.random,
    resolveHost = systemResolveHost,
  } = opts;
  const log = opts.logger.child("lease");
  const ranges = rangesOf(net);
  const validator = new RecordValidator(ranges);
  const table = opts.table ?? new LeaseTable();
  const changeFns = new Set<() => void>();
  const renumberFns = new Set<(old: Lease, now: Lease) => void>();
  const m: LeaseCounters = { conflictsResolved: 0, renumbers: 0, rejectedRecords: 0, nameConflicts: 0, expired: 0 };

  let gossip: Gossip | undefined;
  const sched = new Scheduler(clock);
  const bg = new AbortController();
  let joinedResolve!: () => void;
  const joinedP = new Promise<void>((r) => (joinedResolve = r));
  let stateCache: { rev: number; bytes: Uint8Array } | undefined;

  // Record timestamps go on the wire as integers; fake clocks may run fractional.
  const stamp = () => Math.floor(clock.now());
  const memberMap = (): Map<string, Member> => {
    const out = new Map<string, Member>();
    if (gossip) for (const mb of gossip.members()) out.set(mb.name, mb);
    return out;
  };

  const bounds = new ClockBounds(maxClockSkewMs);
  const own = new OwnLease({ nodeName, backend: opts.backend, store, table, bounds, gossip: () => gossip, stamp, counters: m, log });
  const liveness = new Liveness({ nodeName, leaseTtlMs, ownAlive: () => !!own.committed && !own.displaced });
  const expiry = new Expiry({ nodeName, leaseTtlMs, table, liveness });
  const winners = new Winners({ nodeName, table, liveness });
  /** Our public addresses: the options at start, then whatever readdress() moved us to. */
  let publicIp = opts.publicIp;
  let publicIpv6 = opts.publicIpv6;
  const ownIps = () => [publicIp, publicIpv6].filter((ip): ip is string => ip !== undefined);
  const routing = new Routing({ nodeName, publicIps: ownIps, table, winners, ownMac: () => own.ownMac(), displaced: () => own.displaced, log });
  const settle = new SettleWindow({ settleMs, settleQuietMs, settleQuietRecords, settleMaxMs, clock, scheduler: sched });
  const claimer = new Claimer({
    nodeName,
    publicIp: () => publicIp,
    publicIpv6: () => publicIpv6,
    ranges,
    own,
    table,
    liveness,
    winners,
    bounds,
    settle,
    gossip: () => gossip,
    members: memberMap,
    clock,
    stamp,
    random,
    settlePeers,
    counters: m,
    log,
  });
  const heal = new HealLimiter();
  const renumberer: Renumberer = new Renumberer({
    own,
    claimer,
    winners,
    table,
    members: memberMap,
    clock,
    scheduler: sched,
    random,
    exhaustedRetryMs,
    signal: bg.signal,
    renumbered: (old, now) => {
      for (const fn of renumberFns) {
        try {
          fn(old, now);
        } catch (e) {
          log.error("onRenumber listener threw", { error: e as Error });
        }
      }
    },
    emitChange,
    checkOwn,
    counters: m,
    log,
  });

  function emitChange(): void {
    for (const fn of changeFns) {
      try {
        fn();
      } catch (e) {
        log.error("onChange listener threw", { error: e as Error });
      }
    }
  }

  /** Reacts to records about our name or our subnet (committed nodes only; claims check at settle). */
  function checkOwn(): void {
    if (!own.own || own.displaced) return;
    if (!own.defendName()) return;
    renumberer.check();
  }

  const ingest = createIngest({
    table,
    validator,
    bounds,
    settle,
    clock,
    counters: m,
    log,
    changed: () => {
      if (!sched.stopped) checkOwn();
      emitChange();
    },
  });

  /** routed() now, logging each new problem once. */
  function routedNow() {
    const now = clock.now();
    const members = memberMap();
    return { ...routing.routedLogged(members, now), members, now };
  }

  function refresh(): void {
    if (!own.committed || own.displaced || own.claiming) return;
    own.republishCommitted();
  }

  function sweep(): void {
    const now = clock.now();
    const { gone, liveChanged } = expiry.sweep(memberMap(), now);
    for (const n of gone) routing.forget(n);
    bounds.sweep(now, refreshMs);
    m.expired += gone.length;
    if (liveChanged) emitChange();
  }

  function recoveryPushPull(name: string): void {
    if (!heal.take(clock.now(), gossip !== undefined)) return;
    sched.later(random() * 500, () => {
      if (sched.stopped || !gossip) return;
      gossip.pushPull(name).catch((e) => log.debug("Recovery push-pull failed", { member: name, error: e as Error }));
    });
  }

  const delegate: GossipDelegate = {
    notifyMessage: (payload, from) => ingest(payload, from, "broadcast"),
    localState: () => {
      if (!stateCache || stateCache.rev !== table.revision) stateCache = { rev: table.revision, bytes: encodeState(table.all()) };
      return stateCache.bytes;
    },
    mergeRemoteState: (payload, _join, from) => ingest(payload, from, "push-pull"),
    stateDigest: () => table.digest(),
  };

  /**
   * Why the persisted own lease cannot be reused as it is, or undefined. A family that is
   * no longer enabled is simply left out of the reused lease (dropping a subnet cannot
   * conflict with anybody); a family enabled since, or a subnet outside its range now,
   * needs a new claim.
   */
  function persistedProblem(p: Lease): string | undefined {
    const now = clock.now();
    if (p.nodeName !== nodeName) return `it belongs to node ${p.nodeName}`;
    if (p.deleted) return "it was released";
    const dated = bounds.persistedProblem(p, now);
    if (dated) return dated;
    if ((p.renewedAt ?? p.claimedAt) + leaseTtlMs <= now) return "it expired while this node was down (peers may have handed it out)";
    if (!claimer.complete(p)) return `it has no valid subnet for every family net-conf enables (IPv${familiesOf(ranges).join(" and IPv")}); it has ${describeSubnets(p)}`;
    return undefined;
  }

  async function start(signal: AbortSignal = new AbortController().signal): Promise<Lease> {
    if (gossip) throw new Error("Cannot start cluster: already started");
    if (ownIps().length === 0) throw new Error("Cannot start cluster: no public address (IPv4 or IPv6) for the lease");
    for (const ip of ownIps()) {
      const ipProblem = validator.publicIpProblem(ip);
      if (ipProblem) throw new Error(`Cannot start cluster: ${ipProblem}; peers would reject this node's lease`);
    }
    const loaded = store.load();
    own.identity = nextIdentity(loaded, nodeName);
    own.persistIdentity(); // before anything is announced: the generation must never repeat
    log.info("Node identity", { nodeId: own.identity.nodeId, generation: own.identity.generation });
    gossip = makeGossip(delegate);
    await gossip.start();
    const seeds = await resolveSeeds({ seeds: opts.seeds, advertiseAddr: opts.advertiseAddr, publicIps: ownIps(), ...(opts.ownAddrs ? { ownAddrs: opts.ownAddrs } : {}), resolveHost, log });
    const onTaskError = (e: Error) => log.error("Periodic lease task failed", { error: e });
    sched.every(refreshMs, refresh, onTaskError);
    sched.every(sweepMs, sweep, onTaskError);

    const persisted = loaded.lease;
    const problem = persisted ? persistedProblem(persisted) : "none persisted";
    if (persisted && !problem) {
      const now = stamp();
      const l: Lease = {
        nodeName,
        nodeId: own.identity.nodeId,
        generation: own.identity.generation,
        version: 0,
        ...subnetFields(claimer.reusable(persisted)),
        ...publicIpFields(publicIp, publicIpv6),
        backend: own.backendFor(own.identity.nodeId),
        claimedAt: persisted.claimedAt,
        renewedAt: now,
      };
      own.publish(l);
      own.commit(l);
      log.info("Reusing persisted lease; joining in the background", { subnet: describeSubnets(l), seeds: seeds.length });
      if (seeds.length === 0) joinedResolve();
      else
        gossip.join(seeds, bg.signal).then(
          () => {
            joinedResolve();
            if (!sched.stopped) checkOwn();
          },
          (e) => {
            if (!sched.stopped) log.error("Background join failed", { error: e as Error });
          },
        );
      emitChange();
      return l;
    }
    if (persisted) log.warn("Not reusing persisted lease", { subnet: describeSubnets(persisted), reason: problem });

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
    if (previous && previous !== own.own && !own.bumpGenerationAbove(previous.generation)) {
      log.error("A record for our name sits at the generation limit and cannot be out-ranked (forged or corrupted)", { generation: previous.generation });
    }
    own.claiming = true;
    try {
      // An expired own lease is preferred again, as a new claim, if nobody took it.
      const prefer = persisted && persisted.nodeName === nodeName && !persisted.deleted ? claimer.reusable(persisted) : previous ? claimer.reusable(previous) : {};
      let l: Lease;
      for (;;) {
        try {
          l = await claimer.claimLoop(combined, previous, prefer);
          break;
        } catch (e) {
          if (!(e instanceof ClaimBlockedError) || !opts.onExhausted) throw e;
          log.error(e instanceof SubnetExhaustedError ? "No free subnet; trying again later" : "Cannot claim a subnet now; trying again later", { error: e, retryInMs: exhaustedRetryMs });
          opts.onExhausted(e);
          await sched.sleep(exhaustedRetryMs, combined);
        }
      }
      own.commit(l);
      log.info("Committed lease", { subnet: describeSubnets(l) });
      emitChange();
      return l;
    } finally {
      own.claiming = false;
    }
  }

  return {
    start,
    ownLease: () => (own.displaced ? undefined : own.committed),
    leases(): LeaseView[] {
      const { routes, members, now } = routedNow();
      return routes.map((w) => {
        const seen = liveness.lastSeenOf(w, members, now);
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
      const dated = bounds.problem();
      if (dated) out.push(dated);
      return out;
    },
    renumbering: () => (own.displaced ? undefined : renumberer.why),
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
      if (sched.stopped) return;
      const committed = own.committed;
      if (release && committed && gossip && !own.displaced) {
        // A tombstone frees the subnet at once instead of after the TTL.
        const tomb = { ...committed, version: committed.version + 1, renewedAt: stamp(), deleted: true };
        own.publish(tomb);
        try {
          store.saveLease(tomb);
        } catch (e) {
          log.error("Cannot persist released lease", { error: e as Error });
        }
      }
      sched.stopped = true;
      bg.abort();
      sched.cancelAll();
      if (!gossip) return;
      // A release must reach the peers: leaving gossips the queued tombstone out first,
      // a plain shutdown would drop it with the queue.
      if (leave || release) await gossip.leave(5000);
      else await gossip.shutdown();
    },
    metrics: (): ClusterMetrics => {
      const r = routing.routed(memberMap(), clock.now());
      return { leases: r.routes.length, ...m, unrouted: r.unrouted };
    },
    nodeId: () => own.identity?.nodeId,
    table: () => table,
    joined: () => joinedP,
    gossipMetrics: () => gossip?.metrics() ?? emptyGossipMetrics(),
    async readdress(ip: string, transport?: Transport) {
      const problem = validator.publicIpProblem(ip);
      if (problem) throw new Error(`Cannot move to public IP ${ip}: ${problem}; peers would reject this node's lease`);
      if (transport && !gossip?.rebind) throw new Error(`Cannot move to public IP ${ip}: ${gossip ? "this gossip layer cannot re-bind" : "the gossip layer is not running"}`);
      const v6 = ip.includes(":");
      const from = v6 ? publicIpv6 : publicIp;
      if (v6) publicIpv6 = ip;
      else publicIp = ip;
      // The new alive and the new lease record go out together (rebind switches the
      // address before it returns to the event loop), so peers see both at once.
      const rebound = transport ? gossip!.rebind!(transport) : undefined;
      own.readdress(ip);
      await rebound;
      log.info("Moved to a new public IP", { from, to: ip, gossip: transport !== undefined });
      emitChange();
    },
    setKeyring(keyring) {
      if (!gossip?.setKeyring) throw new Error(`Cannot change the cluster key: ${gossip ? "this gossip layer cannot change keys" : "the gossip layer is not running"}`);
      gossip.setKeyring(keyring);
    },
    forget(name) {
      const members = memberMap();
      const r = forgetTombstone({ self: nodeName, name, rec: table.get(name), member: members.get(name), now: clock.now() });
      if (!r.ok) return r;
      table.merge(r.tombstone);
      gossip?.broadcast(name, encodeRecord(r.tombstone));
      log.warn("Forgot a node: its lease is tombstoned cluster-wide and its subnet is free", { node: name, subnet: describeSubnets(r.tombstone), publicIp: r.tombstone.publicIp ?? r.tombstone.publicIpv6 });
      emitChange();
      return r;
    },
    memberEvent: (kind, mb) => {
      if (sched.stopped) return;
      const prev = heal.transition(mb);
      if (HealLimiter.cameBack(kind, prev, mb)) recoveryPushPull(mb.name);
      if (routing.addressChanged(mb) || kind !== "update" || prev !== mb.state) emitChange();
    },
  };
}
