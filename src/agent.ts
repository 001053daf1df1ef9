/**
 * The one place that wires weft together. Start-up, in order:
 *   underlay (iface, public IPv4/IPv6 address, MTU) → status API (503 until ready) →
 *   gossip transport (on the IPv4 address, or the IPv6 one without IPv4) → lease layer
 *   (join, claim, settle, commit) → IPv4/IPv6 forwarding → backend device →
 *   reconciler: kernel event watch, then the first full apply (peers' entries, bridge
 *   cni0 with the subnet's gateway address, ip-masq; it also drops stale weft entries, so
 *   after a restart it waits for the gossip join) → subnet.env → ready (READY=1).
 * Every effect on the node goes through the injected AgentHost (agent-host.ts); readiness
 * is LeaseReadiness (readiness.ts). Stop (SIGTERM/SIGINT) halts loops and leaves the
 * dataplane as it is, so pods keep working while the agent restarts; the next start
 * adopts what is in the kernel.
 *
 * Longer than most files on purpose: it owns the order of start-up, stop and every
 * dataplane rebuild (renumber, underlay move, MTU change), which reads best in one
 * place; each step it orders lives in its own module.
 */
import type { Clock, TimerHandle } from "./clock.ts";
import { realClock } from "./clock.ts";
import type { Config } from "./config.ts";
import type { Logger } from "./log.ts";
import { realHost, type AgentHost } from "./agent-host.ts";
import { createStatusSource, type ApiServer, type ForgetResult, type StatusSource } from "./api/index.ts";
import type { AnyBackend, PeerLease } from "./backend/create-backend.ts";
import { stableMac } from "./backend/mac.ts";
import { podMtu } from "./backend/mtu.ts";
import { createReconciler, type Reconciler } from "./backend/reconciler.ts";
import type { WireguardKeys } from "./backend/wireguard-key.ts";
import type { ApplyResult, BackendDeps } from "./backend/backend.ts";
import { lanConfig, type GossipConfig, type Keyring } from "./gossip/index.ts";
import { createCluster } from "./lease/cluster.ts";
import { describeSubnets } from "./lease/families.ts";
import type { ClusterCore } from "./lease/cluster-options.ts";
import type { BackendData, Cluster, Lease } from "./lease/types.ts";
import { LeaseReadiness } from "./readiness.ts";
import type { Underlay } from "./sys/iface.ts";
import type { Netlink } from "./sys/netlink.ts";
import type { NetlinkEvent, Watcher } from "./sys/netlink-events.ts";
import { type AddressSlot, UnderlayWatch } from "./underlay-watch.ts";
import { keyringInfo } from "./reload.ts";
import type { Notifier } from "./sys/sdnotify.ts";
import type { WireguardSys } from "./sys/wireguard.ts";
import type { SubnetEnv } from "./subnet-env.ts";
import { version } from "./version.ts";

/** What the agent uses of the lease layer: the Cluster surface, its node id, the join, the gossip counters, and the day-2 changes (a moved address, a new key, forgetting a node). */
export type AgentCluster = Cluster & Pick<ClusterCore, "nodeId" | "joined" | "gossipMetrics" | "readdress" | "setKeyring" | "forget">;

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
  /** The node's effects (netlink, transport, files, sysctl, nftables, WireGuard); the real node by default. */
  host?: AgentHost;
  /** PRNG of the lease layer (claims, settle sampling); Math.random by default. */
  random?: () => number;
}


export class Agent {
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly host: AgentHost;
  private readonly startedAt: number;
  private nl: Netlink | undefined;
  private underlay: Underlay | undefined;
  private api: ApiServer | undefined;
  private cluster: AgentCluster | undefined;
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
  /** The pod MTU now (follows the underlay's MTU unless Backend.MTU pins it). */
  private mtu = 0;
  /** The kernel's link/address/route/neighbour notifications, one socket for every listener below. */
  private events: Watcher | undefined;
  private readonly eventListeners = new Set<(e: NetlinkEvent) => void>();
  private underlayWatch: UnderlayWatch | undefined;
  /** The underlay address moved since the backend was made: the next one re-sends peer state bound to the old source. */
  private underlayMoved = false;
  /** Dataplane rebuilds (renumber, underlay move, MTU change) run one after another. */
  private rebuilding: Promise<void> = Promise.resolve();
  /** Traffic counted by backends a rebuild replaced (renumber, underlay change). */
  private readonly carried = { packetsForwarded: 0, packetsDropped: 0, droppedSpoofedSource: 0, droppedBadOffloadHeader: 0, rxBytes: 0, txBytes: 0 };
  /** The cluster keys in use (null: --insecure); a reload replaces them. */
  private keyring: Keyring | null;

  constructor(private readonly opts: AgentOptions) {
    this.log = opts.logger;
    this.clock = opts.clock ?? realClock;
    this.host = opts.host ?? realHost;
    this.keyring = opts.keyring;
    this.startedAt = this.clock.now();
    this.ready = new LeaseReadiness({ notifier: opts.notifier ?? null, backend: opts.config.net.backend.type });
  }

  /**
   * Seals and opens gossip with `keyring` from now on (the key file was re-read). Throws,
   * changing nothing, when it would switch encryption on or off (that needs a restart).
   */
  setKeyring(keyring: Keyring): void {
    if (!this.keyring) throw new Error("set cluster key: the agent runs without encryption (--insecure); restart it with --key-file");
    this.cluster?.setKeyring(keyring);
    this.keyring = keyring;
  }

  /** Tombstones dead node `name`'s lease for the whole cluster (weft forget, through the API). */
  forget(name: string): ForgetResult {
    if (!this.cluster || !this.joined) return { ok: false, status: 503, error: "the agent has not joined the cluster yet; try again once it is ready" };
    const r = this.cluster.forget(name);
    return r.ok ? { ok: true, node: name, subnet: describeSubnets(r.tombstone) } : { ok: false, status: r.status, error: r.reason };
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
    const host = this.host;
    this.nl = host.openNetlink();
    // An IPv6 underlay address is looked for (and used) only with IPv6 pod networks.
    const underlay = host.resolveUnderlay(this.nl, {
      ...(flags.iface ? { iface: flags.iface } : {}),
      ...(flags.publicIp ? { publicIp: flags.publicIp } : {}),
      ...(net.enableIPv6 && flags.publicIpv6 ? { publicIpv6: flags.publicIpv6 } : {}),
      ipv6: net.enableIPv6,
    });
    this.underlay = underlay;
    this.mtu = this.podMtuFor(underlay.mtu);
    log.info("Underlay", { iface: underlay.iface, publicIp: underlay.ip, publicIpv6: underlay.ipv6, mtu: underlay.mtu, backend: net.backend.type, podMtu: this.mtu });
    if (net.enableIPv6 && underlay.ipv6 === undefined) log.warn("No global IPv6 address on the underlay: IPv6 pods are carried over IPv4 where the backend can (vxlan, udp), set --public-ipv6 otherwise", { iface: underlay.iface });
    for (const k of net.ignoredKeys) log.warn("net-conf key is not used by weft; ignored", { key: k });

    this.watchdog = notifier?.startWatchdog(this.clock, () => this.healthy()) ?? null;
    notifier?.status("joining the cluster");
    if (flags.apiListen) {
      this.api = host.serveApi({ host: flags.apiListen.host, port: flags.apiListen.port, source: this.statusSource(), actions: { forget: (name) => this.forget(name) }, logger: log.child("api") });
    }

    // The key must exist before the lease is published: the lease carries its public half.
    if (net.backend.type === "wireguard") this.wgKeys = host.wireguardKeys(flags.stateDir, log);
    const wgPublicKey = this.wgKeys?.publicKey;

    // Gossip runs over one address: the IPv4 one, or the IPv6 one on a node without IPv4
    // (resolveUnderlay found at least one).
    const gossipIp = (underlay.ip ?? underlay.ipv6)!;
    const transport = await host.createTransport({ bindAddr: gossipIp, port: flags.gossipPort, logger: log.child("gossip") });
    const backendType = net.backend.type;
    const ownIps = [underlay.ip, underlay.ipv6].filter((ip): ip is string => ip !== undefined);
    const cluster = createCluster({
      net,
      nodeName: flags.nodeName,
      ...(underlay.ip !== undefined ? { publicIp: underlay.ip } : {}),
      ...(underlay.ipv6 !== undefined ? { publicIpv6: underlay.ipv6 } : {}),
      advertiseAddr: transport.localAddr(),
      seeds: flags.join.map((s) => (s.host.includes(":") ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`)),
      ownAddrs: ownIps,
      backend: (nodeId): BackendData =>
        backendType === "vxlan" ? { type: "vxlan", vtepMac: stableMac(nodeId) } : wgPublicKey ? { type: "wireguard", publicKey: wgPublicKey } : { type: backendType },
      stateDir: flags.stateDir,
      store: host.stateStore(flags.stateDir, log.child("state")),
      transport,
      gossipConfig: { ...(this.opts.gossipConfig ?? lanConfig()), legacyWire: flags.gossipLegacyWire },
      keyring: this.keyring,
      clock: this.clock,
      logger: log,
      ...(this.opts.random ? { random: this.opts.random } : {}),
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
      const starting = cluster.start(this.stopController.signal);
      this.watchUnderlay(); // the gossip layer exists now: a moved address can be followed
      lease = await starting;
    } catch (e) {
      if (this.stopped) return;
      this.ready.notReady((e as Error).message);
      log.error("Cannot get a subnet lease", { error: e as Error });
      throw e;
    }
    log.info("Lease committed", { subnet: describeSubnets(lease) });
    this.committed = true;

    this.ready.notReady("programming the dataplane");
    if (net.enableIPv4) host.writeSysctl("net.ipv4.ip_forward", 1);
    // A host that takes its IPv6 default route from router advertisements keeps doing so
    // only with accept_ra=2 on that interface once forwarding is on (README says so).
    if (net.enableIPv6) host.writeSysctl("net.ipv6.conf.all.forwarding", 1);
    await this.programDataplane(lease, this.mtu);
    if (this.displaced) this.reconciler?.stop(); // taken over while programming

    host.writeSubnetEnv(flags.subnetFile, this.subnetEnvFor(lease, this.mtu));
    // Start-up is over (READY=1 for systemd); /readyz and STATUS= still say "not ready"
    // if the lease layer began renumbering meanwhile.
    this.ready.serving(lease);
    notifier?.ready();
    this.ready.update(cluster);
    log.info("Ready", { subnet: describeSubnets(lease), subnetFile: flags.subnetFile });
  }

  /** The pod MTU for an underlay MTU: the backend's overhead, more with an IPv6 underlay. */
  private podMtuFor(underlayMtu: number): number {
    return podMtu(this.opts.config.net.backend, underlayMtu, { ipv6Underlay: this.underlay?.ipv6 !== undefined });
  }

  /** subnet.env for `lease`: the lines of each family net-conf enables. */
  private subnetEnvFor(lease: Lease, mtu: number): SubnetEnv {
    const { agent: flags, net } = this.opts.config;
    return {
      ...(net.enableIPv4 && lease.subnet !== undefined ? { network: net.network!, subnet: lease.subnet } : {}),
      ...(net.enableIPv6 && lease.ipv6Subnet !== undefined ? { ipv6Network: net.ipv6Network!, ipv6Subnet: lease.ipv6Subnet } : {}),
      mtu,
      ipMasq: flags.ipMasq,
    };
  }

  /** The pod subnets and networks of `lease` for the families net-conf enables, as the backend and the bridge take them. */
  private podFields(lease: Lease): Pick<BackendDeps, "network" | "ownSubnet" | "ipv6Network" | "ownIpv6Subnet"> {
    const { net } = this.opts.config;
    return {
      ...(net.enableIPv4 && lease.subnet !== undefined ? { network: net.network!, ownSubnet: lease.subnet } : {}),
      ...(net.enableIPv6 && lease.ipv6Subnet !== undefined ? { ipv6Network: net.ipv6Network!, ownIpv6Subnet: lease.ipv6Subnet } : {}),
    };
  }

  /** Creates the bridge, the backend and the reconciler for the own lease. */
  private async programDataplane(lease: Lease, mtu: number): Promise<void> {
    const { agent: flags, net } = this.opts.config;
    const nl = this.nl!;
    const underlay = this.underlay!;
    const cluster = this.cluster!;
    const log = this.log;
    const host = this.host;
    const nodeId = cluster.nodeId();
    const backend = host.createBackend(net.backend, {
      nl,
      ...(underlay.ip !== undefined ? { publicIp: underlay.ip } : {}),
      ...(underlay.ipv6 !== undefined ? { publicIpv6: underlay.ipv6 } : {}),
      underlayIface: underlay.iface,
      underlayMtu: underlay.mtu,
      ...this.podFields(lease),
      ...(nodeId && net.backend.type === "vxlan" ? { vtepMac: stableMac(nodeId) } : {}),
      sysctl: (name, value) => host.writeSysctl(name, value),
      ...(this.wgKeys ? { wireguard: { keys: this.wgKeys, sys: (this.wgSys ??= host.wireguardSys(log)), resendEndpoints: this.underlayMoved } } : {}),
      logger: log,
    });
    this.backend = backend;
    await backend.up();
    this.underlayMoved = false;

    // The node-level pieces ride along with every backend apply, so the reconciler also
    // keeps the bridge address and the masquerade rules in place.
    const applyNode = (peers: PeerLease[]): ApplyResult => {
      const r = backend.apply(peers);
      const pods = this.podFields(this.cluster?.ownLease() ?? lease);
      if (flags.bridge) {
        try {
          const { network, ownSubnet: subnet, ipv6Network, ownIpv6Subnet: ipv6Subnet } = pods;
          r.changes += host.ensureBridge(nl, { name: flags.bridge, ...(subnet ? { subnet, network } : {}), ...(ipv6Subnet ? { ipv6Subnet, ipv6Network } : {}), mtu });
        } catch (e) {
          r.errors.push((e as Error).message);
        }
      }
      // One nftables table per family: ip weft, ip6 weft (a family not run has none).
      for (const [family, network, subnet] of [[4, pods.network, pods.ownSubnet], [6, pods.ipv6Network, pods.ownIpv6Subnet]] as const) {
        try {
          const m = flags.ipMasq && network && subnet ? host.ensureIpMasq({ network, subnet }) : host.removeIpMasq(family);
          if (m.changed) r.changes++;
        } catch (e) {
          r.errors.push(`ip-masq: ${(e as Error).message}`);
        }
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
      watchEvents: (fn) => this.onEvents(fn),
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
        ...(l.subnet !== undefined ? { subnet: l.subnet } : {}),
        ...(l.ipv6Subnet !== undefined ? { ipv6Subnet: l.ipv6Subnet } : {}),
        ...(l.publicIp !== undefined ? { publicIp: l.publicIp } : {}),
        ...(l.publicIpv6 !== undefined ? { publicIpv6: l.publicIpv6 } : {}),
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
  private renumbered(old: Lease, now: Lease): Promise<void> {
    this.log.warn("Lease renumbered after a conflict; pods on the old subnet must be recreated", { old: describeSubnets(old), now: describeSubnets(now) });
    return this.serially(() => this.rebuild(now));
  }

  /**
   * Replaces the backend and the reconciler for `lease` with the underlay as it is now
   * (address, MTU), then rewrites subnet.env: the same steps as at start, so a device
   * whose local address or MTU no longer fits is recreated or adjusted by the backend.
   */
  private async rebuild(lease: Lease): Promise<void> {
    const { agent: flags, net } = this.opts.config;
    this.reconciler?.stop();
    this.carryCounters();
    this.backend?.close();
    await this.programDataplane(lease, this.mtu);
    this.host.writeSubnetEnv(flags.subnetFile, this.subnetEnvFor(lease, this.mtu));
  }

  /** Adds the outgoing backend's traffic counters to what earlier backends counted: counters never go back. */
  private carryCounters(): void {
    const c = this.backend?.counters?.();
    const w = this.backend?.stats?.();
    const k = this.carried;
    if (c) for (const f of ["packetsForwarded", "packetsDropped", "droppedSpoofedSource", "droppedBadOffloadHeader"] as const) k[f] += c[f];
    if (w) (k.rxBytes += w.rxBytesTotal), (k.txBytes += w.txBytesTotal);
  }

  /** Runs `fn` after every dataplane change already under way (renumbers, underlay changes). */
  private serially(fn: () => Promise<void>): Promise<void> {
    const next = this.rebuilding.then(fn, fn);
    this.rebuilding = next.catch(() => {});
    return next;
  }

  /** Subscribes `fn` to the kernel's notifications (one netlink socket for all listeners); returns unsubscribe. */
  private onEvents(fn: (e: NetlinkEvent) => void): () => void {
    this.events ??= this.host.watchNetlinkEvents((e) => this.eventListeners.forEach((l) => l(e)), {
      onError: (e) => this.log.warn("netlink event socket error", { error: e }),
    });
    this.eventListeners.add(fn);
    return () => void this.eventListeners.delete(fn);
  }

  /**
   * Follows the underlay (underlay-watch.ts): a new address (unless --public-ip pinned
   * it) re-binds gossip, re-announces the lease and rebuilds the dataplane; a new MTU
   * rebuilds the dataplane and subnet.env; an interface down or gone, or a pinned
   * address gone, holds the node not ready with the reason until it is back.
   */
  private watchUnderlay(): void {
    const { agent: flags } = this.opts.config;
    const underlay = this.underlay!;
    const slots: AddressSlot[] = [];
    if (underlay.ip !== undefined) slots.push({ family: 4, ip: underlay.ip, pinned: flags.publicIp !== undefined });
    if (underlay.ipv6 !== undefined) slots.push({ family: 6, ip: underlay.ipv6, pinned: flags.publicIpv6 !== undefined });
    const watch = new UnderlayWatch({
      nl: this.nl!,
      iface: underlay.iface,
      mtu: underlay.mtu,
      slots,
      clock: this.clock,
      logger: this.log.child("underlay"),
      handlers: {
        move: (slot, from, to) => this.moveUnderlay(slot.family, from, to),
        mtu: (_from, to) => this.underlayMtu(to),
        // The reconciler hears the same link events: routes the kernel dropped with the link come back.
        problem: (reason) => this.ready.hold(reason),
      },
    });
    this.underlayWatch = watch;
    this.onEvents((e) => watch.event(e));
  }

  private async moveUnderlay(family: 4 | 6, from: string, to: string): Promise<void> {
    const { agent: flags } = this.opts.config;
    const cluster = this.cluster!;
    const field = family === 4 ? "ip" : "ipv6";
    // A retry after a failed rebuild finds the lease (and gossip) already moved.
    if (this.underlay![field] !== to) {
      // Gossip runs over the IPv4 address, or the IPv6 one on a node without IPv4: only
      // a move of that address re-binds it.
      const gossipMoves = family === 4 || this.underlay!.ip === undefined;
      const transport = gossipMoves ? await this.host.createTransport({ bindAddr: to, port: flags.gossipPort, logger: this.log.child("gossip") }) : undefined;
      try {
        await cluster.readdress(to, transport);
      } catch (e) {
        await transport?.close();
        throw e;
      }
      this.underlay = { ...this.underlay!, [field]: to };
    }
    this.underlayMoved = true;
    await this.reprogram(`underlay address moved from ${from} to ${to}`);
  }

  private async underlayMtu(mtu: number): Promise<void> {
    this.underlay = { ...this.underlay!, mtu };
    const pod = this.podMtuFor(mtu);
    if (pod === this.mtu) return; // Backend.MTU fixes the pod MTU
    this.log.warn("Pod MTU changes with the underlay's; pods made before keep the old one until recreated", { from: this.mtu, to: pod });
    this.mtu = pod;
    await this.reprogram(`underlay MTU changed to ${mtu}`);
  }

  /** Rebuilds a programmed dataplane for the underlay as it is now; before that, start-up uses it anyway. */
  private reprogram(reason: string): Promise<void> {
    return this.serially(async () => {
      const lease = this.cluster?.ownLease();
      if (!this.backend || !lease || this.displaced || this.stopped) return;
      this.ready.serving(undefined, reason);
      await this.rebuild(lease);
      this.ready.serving(lease);
      this.ready.update(this.cluster!);
    });
  }

  private statusSource(): StatusSource {
    const { agent: flags, net } = this.opts.config;
    return createStatusSource({
      node: flags.nodeName,
      publicIp: () => this.underlay!.ip ?? null,
      network: net.network ?? null,
      ...(net.enableIPv6 ? { ipv6: { network: net.ipv6Network!, publicIp: () => this.underlay!.ipv6 ?? null, subnet: () => this.cluster?.ownLease()?.ipv6Subnet ?? null } } : {}),
      backend: net.backend.type,
      mtu: () => this.mtu,
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
        const k = this.carried;
        return { packetsForwarded: k.packetsForwarded + (c?.packetsForwarded ?? 0), packetsDropped: k.packetsDropped + (c?.packetsDropped ?? 0), droppedSpoofedSource: k.droppedSpoofedSource + (c?.droppedSpoofedSource ?? 0), droppedBadOffloadHeader: k.droppedBadOffloadHeader + (c?.droppedBadOffloadHeader ?? 0) };
      },
      wireguard: () => {
        const w = this.backend?.stats?.();
        return w && { ...w, rxBytesTotal: this.carried.rxBytes + w.rxBytesTotal, txBytesTotal: this.carried.txBytes + w.txBytesTotal };
      },
      clusterKeys: () => (this.keyring ? keyringInfo(this.keyring) : null),
    });
  }

  /** Stops loops and tells peers we leave (giving the lease back with --release-on-stop); the dataplane stays so pods keep working. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.opts.notifier?.stopping();
    this.stopController.abort();
    this.watchdog?.cancel();
    this.underlayWatch?.stop();
    this.reconciler?.stop();
    this.events?.close();
    this.backend?.close();
    const { agent: flags } = this.opts.config;
    // --release-on-stop (decommissioning): a tombstone frees the subnet for other nodes at
    // once; subnet.env goes too, so the CNI plugin hands out no more addresses from it.
    const released = flags.releaseOnStop ? this.cluster?.ownLease()?.subnet : undefined;
    const release = released !== undefined;
    try {
      await this.cluster?.stop({ leave: true, release });
      if (release) {
        this.host.removeSubnetEnv(flags.subnetFile);
        this.log.warn("Released the lease: its subnet is free for other nodes; subnet.env removed", { subnet: released, subnetFile: flags.subnetFile });
      }
    } catch (e) {
      this.log.warn(release ? "Releasing the lease failed" : "Leaving the cluster failed", { error: e as Error });
    }
    await this.api?.stop();
    this.wgSys?.close?.();
    this.nl?.close();
    this.log.info("Stopped; dataplane left in place");
  }
}
