/**
 * The one place that wires weft together. Start-up, in order:
 *   underlay (iface, public IP, MTU) → status API (503 until ready) → gossip transport →
 *   lease layer (join, claim, settle, commit) → ip_forward → bridge cni0 with the
 *   subnet's gateway address → backend device → reconciler (first full apply, which also
 *   drops stale weft entries) → ip-masq → subnet.env → ready (sd_notify READY=1).
 * Stop (SIGTERM/SIGINT) halts loops and leaves the dataplane as it is, so pods keep
 * working while the agent restarts; the next start adopts what is in the kernel.
 */
import type { Clock, TimerHandle } from "./clock.ts";
import { realClock } from "./clock.ts";
import type { Config } from "./config.ts";
import type { Logger } from "./log.ts";
import { createStatusSource, serveApi, type ApiServer, type Readiness, type StatusSource } from "./api/index.ts";
import { createBackend, type AnyBackend, type PeerLease } from "./backend/create-backend.ts";
import { stableMac } from "./backend/mac.ts";
import { podMtu } from "./backend/mtu.ts";
import { createReconciler, type Reconciler } from "./backend/reconciler.ts";
import { loadOrCreateWireguardKeys, type WireguardKeys } from "./backend/wireguard-key.ts";
import type { ApplyResult } from "./backend/backend.ts";
import { createUdpTransport, lanConfig, type GossipConfig, type Keyring } from "./gossip/index.ts";
import { createCluster } from "./lease/cluster.ts";
import type { ClusterCore } from "./lease/cluster-options.ts";
import type { BackendData, Cluster, Lease } from "./lease/types.ts";
import { ensureBridge } from "./bridge.ts";
import { writeSubnetEnv } from "./subnet-env.ts";
import { resolveUnderlay, type Underlay } from "./sys/iface.ts";
import { ensureIpMasq, removeIpMasq } from "./sys/ipmasq.ts";
import { openNetlink } from "./sys/libnl.ts";
import type { Netlink } from "./sys/netlink.ts";
import { watchNetlinkEvents } from "./sys/netlink-events.ts";
import type { Notifier } from "./sys/sdnotify.ts";
import { writeSysctl } from "./sys/sysctl.ts";
import type { WireguardSys } from "./sys/wireguard.ts";
import { createWireguardSys } from "./sys/wireguard-sys.ts";
import { version } from "./version.ts";

export interface AgentOptions {
  config: Config;
  /** null only with --insecure. */
  keyring: Keyring | null;
  logger: Logger;
  clock?: Clock;
  /** systemd notifier, or null when not under systemd. */
  notifier?: Notifier | null;
  /** Gossip timings; LAN defaults. */
  gossipConfig?: GossipConfig;
  /** Netlink port (tests may inject); the libnl implementation by default. */
  netlink?: Netlink;
  /** WireGuard control (tests may inject); kernel module or wireguard-go by default. */
  wireguardSys?: WireguardSys;
}


/**
 * What /readyz and systemd STATUS= say about the node, kept in one place so the two never
 * disagree: every change is also sent as STATUS= ("ready: <subnet> via <backend>" or
 * "not ready: <reason>"). Ready means the dataplane serves the committed own lease and
 * the lease layer is not renumbering it; a renumber (or its back-off after a failure)
 * makes the node not ready with the lease layer's reason until the new subnet is
 * programmed, or the old one turns out to stand.
 */
export class LeaseReadiness {
  private current: Readiness = { ready: false, reason: "waiting for a subnet lease to be committed" };
  /** The own subnet the bridge, backend and subnet.env are programmed for. */
  private served: string | undefined;
  /** A condition only a restart clears (name taken over, failed reprogram). */
  private stuck = false;

  constructor(private readonly o: { notifier?: Notifier | null; backend: string }) {}

  readiness(): Readiness {
    return this.current;
  }

  /** Not ready while a start-up step or a blocked claim holds the node. */
  notReady(reason: string): void {
    if (!this.stuck) this.set({ ready: false, reason });
  }

  /** The dataplane now serves `subnet` (undefined: it is being reprogrammed, for `reason`). */
  serving(subnet: string | undefined, reason = "programming the dataplane"): void {
    this.served = subnet;
    if (subnet === undefined) this.notReady(reason);
  }

  /** Not ready until a restart. */
  fail(reason: string): void {
    this.set({ ready: false, reason });
    this.stuck = true;
  }

  /**
   * Follows `cluster`: readiness on every lease change, and after a renumber not ready
   * until `reprogram(old, now)` has moved the dataplane to the new subnet. A failed
   * reprogram is final (`onFail` hears it).
   */
  follow(cluster: Pick<Cluster, "renumbering" | "ownLease" | "onChange" | "onRenumber">, reprogram: (old: Lease, now: Lease) => Promise<void>, onFail: (e: Error) => void): void {
    cluster.onChange(() => this.update(cluster));
    cluster.onRenumber((old, now) => {
      this.serving(undefined, `renumbering from ${old.subnet} to ${now.subnet}`);
      reprogram(old, now).then(
        () => {
          this.serving(now.subnet);
          this.update(cluster);
        },
        (e: Error) => {
          this.fail(`renumber failed: ${e.message}`);
          onFail(e);
        },
      );
    });
  }

  /** Re-derives readiness from the lease layer (follow() calls it on every lease change). */
  update(cluster: Pick<Cluster, "renumbering" | "ownLease">): void {
    if (this.stuck) return;
    const why = cluster.renumbering();
    if (why) return this.set({ ready: false, reason: why });
    const own = cluster.ownLease();
    if (own && own.subnet === this.served) this.set({ ready: true });
  }

  private set(r: Readiness): void {
    if (r.ready === this.current.ready && r.reason === this.current.reason) return;
    this.current = r;
    this.o.notifier?.status(r.ready ? `ready: ${this.served} via ${this.o.backend}` : `not ready: ${r.reason}`);
  }
}

export class Agent {
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly startedAt: number;
  private nl: Netlink | undefined;
  private underlay: Underlay | undefined;
  private api: ApiServer | undefined;
  private cluster: ClusterCore | undefined;
  private backend: AnyBackend | undefined;
  private reconciler: Reconciler | undefined;
  /** wireguard backend: the node's key pair (read or made at start) and the device control. */
  private wgKeys: WireguardKeys | undefined;
  private wgSys: (WireguardSys & { close?(): void }) | undefined;
  private watchdog: TimerHandle | null = null;
  private readonly ready: LeaseReadiness;
  private fatal: Error | undefined;
  private stopped = false;
  /** Gossip has synced with a seed (or there was none): the lease table is worth acting on. */
  private joined = false;
  /** cluster.start() resolved: from now on a missing own lease means the name was taken over. */
  private committed = false;
  private displaced = false;
  private lastProblems: string[] = [];
  private readonly stopController = new AbortController();

  constructor(private readonly opts: AgentOptions) {
    this.log = opts.logger;
    this.clock = opts.clock ?? realClock;
    this.startedAt = this.clock.now();
    this.ready = new LeaseReadiness({ notifier: opts.notifier ?? null, backend: opts.config.net.backend.type });
  }

  /** True while the agent's loops are alive (drives /healthz and the systemd watchdog). */
  healthy(): boolean {
    return !this.fatal && !this.stopped;
  }

  /** Runs the start-up sequence; resolves once ready. Throws (exit 1) on a failure that needs an operator. */
  async start(): Promise<void> {
    const { config, notifier } = this.opts;
    const { agent: flags, net } = config;
    const log = this.log;
    this.nl = this.opts.netlink ?? openNetlink();
    const underlay = resolveUnderlay(this.nl, { ...(flags.iface ? { iface: flags.iface } : {}), ...(flags.publicIp ? { publicIp: flags.publicIp } : {}) });
    this.underlay = underlay;
    const mtu = podMtu(net.backend, underlay.mtu);
    log.info("Underlay", { iface: underlay.iface, publicIp: underlay.ip, mtu: underlay.mtu, backend: net.backend.type, podMtu: mtu });
    for (const k of net.ignoredKeys) log.warn("net-conf key is not used by weft; ignored", { key: k });

    this.watchdog = notifier?.startWatchdog(this.clock, () => this.healthy()) ?? null;
    notifier?.status("joining the cluster");
    if (flags.apiListen) {
      this.api = serveApi({ host: flags.apiListen.host, port: flags.apiListen.port, source: this.statusSource(mtu), logger: log.child("api") });
    }

    // The key must exist before the lease is published: the lease carries its public half.
    if (net.backend.type === "wireguard") this.wgKeys = loadOrCreateWireguardKeys(flags.stateDir, log);
    const wgPublicKey = this.wgKeys?.publicKey;

    const transport = await createUdpTransport({ bindAddr: underlay.ip, port: flags.gossipPort, logger: log.child("gossip") });
    const backendType = net.backend.type;
    const cluster = createCluster({
      net,
      nodeName: flags.nodeName,
      publicIp: underlay.ip,
      advertiseAddr: transport.localAddr(),
      seeds: flags.join.map((s) => `${s.host}:${s.port}`),
      ownAddrs: [underlay.ip],
      backend: (nodeId): BackendData =>
        backendType === "vxlan" ? { type: "vxlan", vtepMac: stableMac(nodeId) } : wgPublicKey ? { type: "wireguard", publicKey: wgPublicKey } : { type: backendType },
      stateDir: flags.stateDir,
      transport,
      gossipConfig: { ...(this.opts.gossipConfig ?? lanConfig()), legacyWire: flags.gossipLegacyWire },
      keyring: this.opts.keyring,
      clock: this.clock,
      logger: log,
      // A full range (or clocks that disagree) is a cluster condition, not a crash: stay
      // up, say why on /readyz, and keep trying (a lease expiring after its TTL frees a
      // subnet without a restart).
      onExhausted: (e) => this.ready.notReady(e.message),
    });
    this.cluster = cluster;
    cluster.onChange(() => this.checkDisplaced()); // first: a takeover outranks what follow() sees
    this.ready.follow(
      cluster,
      (old, now) => this.renumbered(old, now),
      (e) => {
        this.fatal = e;
        log.error("Renumbering the dataplane failed", { error: e });
      },
    );

    let lease: Lease;
    try {
      lease = await cluster.start(this.stopController.signal);
    } catch (e) {
      if (this.stopped) return;
      this.ready.notReady((e as Error).message);
      log.error("Cannot get a subnet lease", { error: e as Error });
      throw e;
    }
    log.info("Lease committed", { subnet: lease.subnet });
    this.committed = true;

    this.ready.notReady("programming the dataplane");
    writeSysctl("net.ipv4.ip_forward", 1);
    await this.programDataplane(lease, mtu);
    if (this.displaced) this.reconciler?.stop(); // taken over while programming

    writeSubnetEnv(flags.subnetFile, { network: net.network, subnet: lease.subnet, mtu, ipMasq: flags.ipMasq });
    // Start-up is over (READY=1 for systemd); /readyz and STATUS= still say "not ready"
    // if the lease layer began renumbering meanwhile.
    this.ready.serving(lease.subnet);
    notifier?.ready();
    this.ready.update(cluster);
    log.info("Ready", { subnet: lease.subnet, subnetFile: flags.subnetFile });
  }

  /** Creates the bridge, the backend and the reconciler for the own lease. */
  private async programDataplane(lease: Lease, mtu: number): Promise<void> {
    const { agent: flags, net } = this.opts.config;
    const nl = this.nl!;
    const underlay = this.underlay!;
    const cluster = this.cluster!;
    const log = this.log;
    const nodeId = cluster.nodeId();
    const backend = createBackend(net.backend, {
      nl,
      publicIp: underlay.ip,
      underlayIface: underlay.iface,
      underlayMtu: underlay.mtu,
      ownSubnet: lease.subnet,
      network: net.network,
      ...(nodeId && net.backend.type === "vxlan" ? { vtepMac: stableMac(nodeId) } : {}),
      ...(this.wgKeys ? { wireguard: { keys: this.wgKeys, sys: (this.wgSys ??= this.opts.wireguardSys ?? createWireguardSys({ logger: log })) } } : {}),
      logger: log,
    });
    this.backend = backend;
    await backend.up();

    // The node-level pieces ride along with every backend apply, so the reconciler also
    // keeps the bridge address and the masquerade rules in place.
    const applyNode = (peers: PeerLease[]): ApplyResult => {
      const r = backend.apply(peers);
      if (flags.bridge) {
        try {
          r.changes += ensureBridge(nl, { name: flags.bridge, subnet: this.cluster?.ownLease()?.subnet ?? lease.subnet, network: net.network, mtu });
        } catch (e) {
          r.errors.push((e as Error).message);
        }
      }
      try {
        const own = this.cluster?.ownLease()?.subnet ?? lease.subnet;
        const m = flags.ipMasq ? ensureIpMasq({ network: net.network, subnet: own }) : removeIpMasq();
        if (m.changed) r.changes++;
      } catch (e) {
        r.errors.push(`ip-masq: ${(e as Error).message}`);
      }
      // The backends log each problem when it appears and clears; status shows the current set.
      this.lastProblems = r.problems;
      return r;
    };
    const reconciler = createReconciler({
      backend: { apply: applyNode },
      peers: () => this.peers(),
      clock: this.clock,
      logger: log,
      onLeasesChange: (fn) => cluster.onChange(fn),
      watchEvents: (fn) => watchNetlinkEvents(fn, { onError: (e) => log.warn("netlink event socket error", { error: e }) }),
    });
    this.reconciler = reconciler;
    // The first run also deletes weft entries no lease justifies. After a restart with a
    // persisted lease we only know our own lease until gossip has synced, so wait for the
    // join: what the kernel holds from the previous run keeps pods reachable meanwhile.
    const first = () => {
      if (this.stopped || this.reconciler !== reconciler) return;
      const r = reconciler.start();
      if (r.errors.length) log.warn("First reconcile had errors; retrying", { errors: r.errors });
    };
    if (this.joined) first();
    else {
      log.info("Waiting for the cluster join before the first full reconcile");
      cluster.joined().then(() => {
        this.joined = true;
        first();
      });
    }
  }

  /** Valid leases of other nodes, as the backend needs them. Liveness does not matter here. */
  private peers(): PeerLease[] {
    const me = this.opts.config.agent.nodeName;
    return (this.cluster?.leases() ?? [])
      .filter((l) => l.nodeName !== me && !l.deleted)
      .map((l) => ({
        nodeName: l.nodeName,
        subnet: l.subnet,
        publicIp: l.publicIp,
        ...(l.backend.vtepMac ? { vtepMac: l.backend.vtepMac } : {}),
        ...(l.backend.publicKey ? { publicKey: l.backend.publicKey } : {}),
      }));
  }

  /**
   * Another machine started with our node name and took it over (newest start owns a
   * name): we no longer own the subnet, so we must not go on claiming to serve it.
   * Stop reconciling (the newcomer's routes now win everywhere) and say why in /readyz;
   * the operator has to fix the duplicate name.
   */
  private checkDisplaced(): void {
    if (!this.committed || this.displaced || this.cluster?.ownLease()) return;
    this.displaced = true;
    const name = this.opts.config.agent.nodeName;
    this.ready.fail(`node name ${name} was taken over by another machine; this agent no longer owns its subnet (fix the duplicate node name, then restart)`);
    this.reconciler?.stop();
    this.log.error("Displaced: node name taken over; stopped programming the dataplane", { node: name });
  }

  /** Our lease lost a conflict after commit (e.g. a healed partition): move the dataplane to the new subnet. */
  private async renumbered(old: Lease, now: Lease): Promise<void> {
    const { agent: flags, net } = this.opts.config;
    this.log.warn("Lease renumbered after a conflict; pods on the old subnet must be recreated", { old: old.subnet, now: now.subnet });
    const mtu = podMtu(net.backend, this.underlay!.mtu);
    this.reconciler?.stop();
    this.backend?.close();
    await this.programDataplane(now, mtu);
    writeSubnetEnv(flags.subnetFile, { network: net.network, subnet: now.subnet, mtu, ipMasq: flags.ipMasq });
  }

  private statusSource(mtu: number): StatusSource {
    const { agent: flags, net } = this.opts.config;
    return createStatusSource({
      node: flags.nodeName,
      publicIp: this.underlay!.ip,
      network: net.network,
      backend: net.backend.type,
      mtu,
      version,
      startedAt: this.startedAt,
      now: () => this.clock.now(),
      subnet: () => this.cluster?.ownLease()?.subnet ?? null,
      members: () => this.cluster?.members() ?? [],
      leases: () => this.cluster?.leases() ?? [],
      readiness: () => this.ready.readiness(),
      healthy: () => this.healthy(),
      problems: () => [...(this.cluster?.problems() ?? []), ...this.lastProblems],
      gossip: () => this.cluster?.gossipMetrics(),
      cluster: () => {
        const m = this.cluster?.metrics();
        return { leases: m?.leases ?? 0, conflictsResolved: m?.conflictsResolved ?? 0 };
      },
      reconcile: () => {
        const r = this.reconciler?.metrics();
        return { runs: r?.runs ?? 0, errors: r?.errors ?? 0, lastDurationSeconds: r?.lastDurationSeconds ?? 0, durationSecondsSum: r?.durationSecondsSum ?? 0 };
      },
      udp: () => {
        const c = this.backend?.counters?.();
        return { packetsForwarded: c?.packetsForwarded ?? 0, packetsDropped: c?.packetsDropped ?? 0, droppedSpoofedSource: c?.droppedSpoofedSource ?? 0, droppedBadOffloadHeader: c?.droppedBadOffloadHeader ?? 0 };
      },
      wireguard: () => this.backend?.stats?.(),
    });
  }

  /** Stops loops and tells peers we leave; the dataplane stays so pods keep working. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.opts.notifier?.stopping();
    this.stopController.abort();
    this.watchdog?.cancel();
    this.reconciler?.stop();
    this.backend?.close();
    try {
      await this.cluster?.stop({ leave: true });
    } catch (e) {
      this.log.warn("Leaving the cluster failed", { error: e as Error });
    }
    await this.api?.stop();
    this.wgSys?.close?.();
    this.nl?.close();
    this.log.info("Stopped; dataplane left in place");
  }
}
