/**
 * wireguard, as flannel programs it: a device `weft-wg` (flannel names its own
 * flannel-wg) with the node's private key and ListenPort, the own subnet's network
 * address as a /32, and the route `<Network> dev weft-wg proto 87`; per peer a
 * WireGuard peer with the public key from its lease, endpoint = its public IP and
 * ListenPort, allowed IPs = its subnet, the keepalive and the PSK. WireGuard's own
 * cryptokey routing then picks the peer by destination, so routes are not per peer.
 *
 * IPv6 pods follow flannel's Mode. `separate`: they get a device of their own,
 * `weft-wg-v6`, on ListenPortV6, whose peers are reached at their IPv6 public address
 * (the own IPv6 subnet's network address as a /128, the route `<IPv6Network> dev
 * weft-wg-v6`); weft-wg then carries IPv4 pods over IPv4 only. `ipv4`, `ipv6`, `auto`:
 * weft-wg carries both families, each peer's allowed IPs are both its subnets, and its
 * endpoint is the address the mode picks (wireguard-endpoint.ts). Both devices use the
 * node's one key pair, as flannel's do, so a lease publishes one public key.
 *
 * The device is the kernel's when the kernel has the module, otherwise wireguard-go's
 * (see src/sys/wireguard-sys.ts); the diff (wireguard-diff.ts) is the same for both.
 * Every apply reads the device back and sends only the difference; a device deleted
 * (or a dead wireguard-go) is recreated with everything on it.
 */
import type { WireguardConf } from "../net-conf.ts";
import type { BackendData } from "../lease/types.ts";
import type { LinkInfo } from "../sys/netlink.ts";
import type { WgDeviceInfo, WgPeerInfo, WireguardImpl, WireguardSys } from "../sys/wireguard.ts";
import { type ApplyResult, type Backend, type BackendDeps, type PeerLease, emptyResult } from "./backend.ts";
import { type CheckedPeer, checkPeers, peerSubnet, podFamilies, type PodFamily } from "./peers.ts";
import { ProblemLog } from "./problem-log.ts";
import { attempt, programPeers } from "./program.ts";
import { podMtu } from "./mtu.ts";
import { diffDevice, shortKey, type WantPeer } from "./wireguard-diff.ts";
import { isBase64Key } from "../net-conf.ts";
import { type EndpointMode, peerEndpoint } from "./wireguard-endpoint.ts";
import { isIpv6LinkLocal } from "../net/ipv6.ts";

export const WIREGUARD_DEVICE = "weft-wg";
/** The IPv6 device of Mode `separate`. */
export const WIREGUARD_V6_DEVICE = "weft-wg-v6";

export interface WireguardDeps extends BackendDeps {
  /** The node's keys (wireguard-key.ts); the private key goes to the device only. */
  keys: { privateKey: string; publicKey: string };
  sys: WireguardSys;
  /** Wall-clock ms, for handshake ages. */
  now?: () => number;
  /**
   * The node's own underlay address just changed: the first apply sends every peer's
   * endpoint again, even unchanged. Setting an endpoint makes WireGuard forget the source
   * address it cached for that peer; wireguard-go would otherwise keep sending from a
   * removed IPv4 address (the kernel refuses it with ENETUNREACH, which it does not take
   * as a stale source) until the peer happens to send it something.
   */
  resendEndpoints?: boolean;
}

/** One peer as the status API shows it. */
export interface WireguardPeerStatus {
  /** The device it is configured on (a node is a peer on both devices of Mode separate). */
  device: string;
  publicKey: string;
  endpoint?: string;
  /** Wall-clock ms of the latest handshake; 0 = never. */
  lastHandshakeMs: number;
  rxBytes: number;
  txBytes: number;
}

export interface WireguardStats {
  /** Which WireGuard drives weft's devices; undefined before up(). */
  impl: WireguardImpl | undefined;
  peers: WireguardPeerStatus[];
  /** Bytes received/sent over all peers since the agent started, never decreasing. */
  rxBytesTotal: number;
  txBytesTotal: number;
}

export interface WireguardBackend extends Backend {
  /** Peer handshakes and traffic, read from the device at most once a second; never throws. */
  stats(): WireguardStats;
}

/**
 * Byte totals that only grow: a peer's counters restart when it is removed, re-keyed or
 * the device is recreated, so what a peer had counted is carried over when that happens.
 */
export class TrafficTotals {
  private last = new Map<string, { rx: number; tx: number }>();
  private carriedRx = 0;
  private carriedTx = 0;

  /** All devices' peers at once; `device` tells apart one key's peers on two devices. */
  update(peers: (WgPeerInfo & { device?: string })[]): void {
    const next = new Map<string, { rx: number; tx: number }>();
    for (const p of peers) {
      const id = `${p.device ?? ""} ${p.publicKey}`;
      const prev = this.last.get(id);
      if (prev && (p.rxBytes < prev.rx || p.txBytes < prev.tx)) this.carry(prev);
      next.set(id, { rx: p.rxBytes, tx: p.txBytes });
    }
    for (const [k, prev] of this.last) if (!next.has(k)) this.carry(prev);
    this.last = next;
  }

  private carry(c: { rx: number; tx: number }): void {
    this.carriedRx += c.rx;
    this.carriedTx += c.tx;
  }

  totals(): { rx: number; tx: number } {
    let rx = this.carriedRx;
    let tx = this.carriedTx;
    for (const c of this.last.values()) {
      rx += c.rx;
      tx += c.tx;
    }
    return { rx, tx };
  }
}

/** One WireGuard device weft runs: its port, the pod families it carries, how peers are reached. */
export interface WgDevicePlan {
  name: string;
  listenPort: number;
  families: PodFamily[];
  reach: EndpointMode;
}

/**
 * The devices a node runs for `conf` and its pod families; throws (naming the Mode and the
 * missing address) when the node lacks the underlay family a device must use.
 */
export function wireguardDevices(conf: WireguardConf, deps: Pick<BackendDeps, "network" | "ownSubnet" | "ipv6Network" | "ownIpv6Subnet" | "publicIp" | "publicIpv6">): WgDevicePlan[] {
  const families = podFamilies(deps);
  const need = (f: 4 | 6, why: string) => {
    if ((f === 4 ? deps.publicIp : deps.publicIpv6) === undefined) {
      throw new Error(`create wireguard backend: Mode ${conf.mode} ${why}, and this node has no IPv${f} underlay address (${f === 4 ? "--public-ip" : "--public-ipv6"}); give one or choose another Mode`);
    }
  };
  if (conf.mode === "separate") {
    return families.map((fam) => {
      need(fam.family, fam.family === 4 ? `carries IPv4 pods over IPv4 (${WIREGUARD_DEVICE})` : `carries IPv6 pods over IPv6 (${WIREGUARD_V6_DEVICE})`);
      return fam.family === 4 ? { name: WIREGUARD_DEVICE, listenPort: conf.listenPort, families: [fam], reach: 4 } : { name: WIREGUARD_V6_DEVICE, listenPort: conf.listenPortV6, families: [fam], reach: 6 };
    });
  }
  const reach: EndpointMode = conf.mode === "ipv4" ? 4 : conf.mode === "ipv6" ? 6 : "auto";
  if (reach !== "auto") need(reach, `reaches peers over IPv${reach}`);
  return [{ name: WIREGUARD_DEVICE, listenPort: conf.listenPort, families, reach }];
}

/** The device's own addresses: each carried family's subnet network address as a host route. */
const ownAddrs = (d: WgDevicePlan): string[] => d.families.map((f) => `${f.ownSubnet.slice(0, f.ownSubnet.indexOf("/"))}/${f.family === 4 ? 32 : 128}`);

export function createWireguardBackend(conf: WireguardConf, deps: WireguardDeps): WireguardBackend {
  const { nl, sys, keys } = deps;
  const devices = wireguardDevices(conf, deps);
  const self = { ...(deps.publicIp !== undefined ? { publicIp: deps.publicIp } : {}), ...(deps.publicIpv6 !== undefined ? { publicIpv6: deps.publicIpv6 } : {}) };
  const networks = podFamilies(deps).map((f) => f.network);
  const mtu = podMtu(conf, deps.underlayMtu);
  const now = deps.now ?? Date.now;
  const log = deps.logger.child("backend.wireguard");
  const problemLog = new ProblemLog(log);
  const totals = new TrafficTotals();
  let impl: WireguardImpl | undefined;
  let resendEndpoints = deps.resendEndpoints === true;
  let lastRead: { at: number; peers: WireguardPeerStatus[] } | undefined;

  function observe(infos: { name: string; info: WgDeviceInfo }[]): void {
    const peers = infos.flatMap(({ name, info }) => info.peers.map((p) => ({ ...p, device: name })));
    lastRead = { at: now(), peers: peers.map((p) => ({ device: p.device, publicKey: p.publicKey, ...(p.endpoint ? { endpoint: p.endpoint } : {}), lastHandshakeMs: p.lastHandshakeMs, rxBytes: p.rxBytes, txBytes: p.txBytes })) };
    totals.update(peers);
  }

  /** Creates or adopts a device and puts its link-level state right; returns who drives it. */
  function ensureDevice(d: WgDevicePlan, result: ApplyResult): WireguardImpl {
    const name = d.name;
    let link: LinkInfo | undefined = nl.getLink(name);
    let drives = link ? sys.implOf(link) : undefined;
    if (link && !drives) {
      log.warn(`recreating ${name}: it is a ${link.kind ?? "plain"} device with no WireGuard behind it`);
      nl.deleteLink(name);
      result.changes++;
      link = undefined;
    }
    if (!link || !drives) {
      drives = sys.createDevice(name);
      result.changes++;
      log.info(`created ${name}`, { wireguard: drives, mtu, listenPort: d.listenPort });
      link = nl.getLink(name);
      if (!link) throw new Error(`start wireguard backend: ${name} not visible after creating it`);
    }
    if (drives !== impl) {
      if (impl !== undefined) log.info(`${name} is now driven by the ${drives === "kernel" ? "kernel module" : "userspace wireguard-go"}`);
      impl = drives;
    }
    const l = link;
    if (l.mtu !== mtu) attempt(result, () => nl.setMtu(name, mtu));
    const want = ownAddrs(d);
    const addrs = nl.listAddresses(name);
    for (const cidr of want) if (!addrs.some((a) => a.cidr === cidr)) attempt(result, () => nl.addAddress({ dev: name, cidr }));
    // The kernel's IPv6 link-local address (a wireguard-go TUN gets one) is left alone.
    for (const a of addrs) if (!want.includes(a.cidr) && !isIpv6LinkLocal(a.cidr)) attempt(result, () => nl.deleteAddress(a), { missingIsFine: true });
    return drives;
  }

  /** The leases' peers with a usable key; records without one become problems. */
  function keyedPeers(peers: PeerLease[], problems: string[]): CheckedPeer[] {
    const checked = checkPeers(peers, { ...deps, needMac: false });
    problems.push(...checked.problems);
    const byKey = new Map<string, string>();
    const out: CheckedPeer[] = [];
    for (const p of checked.peers) {
      const who = `peer ${p.nodeName}`;
      if (p.publicKey === undefined || !isBase64Key(p.publicKey)) {
        problems.push(`${who}: skipped, its lease has no WireGuard public key (is it running the wireguard backend?)`);
        continue;
      }
      if (p.publicKey === keys.publicKey) {
        problems.push(`${who}: skipped, it has this node's public key ${shortKey(p.publicKey)} (a copied state directory?)`);
        continue;
      }
      const prior = byKey.get(p.publicKey);
      if (prior) {
        problems.push(`${who}: skipped, public key ${shortKey(p.publicKey)} is also used by ${prior} (a copied state directory?)`);
        continue;
      }
      byKey.set(p.publicKey, p.nodeName);
      out.push(p);
    }
    return out;
  }

  /** The WireGuard peers of one device: each peer with a subnet of a family it carries. */
  function wantedPeers(d: WgDevicePlan, peers: CheckedPeer[], problems: string[]): WantPeer[] {
    const out: WantPeer[] = [];
    for (const p of peers) {
      const allowedIps = d.families.flatMap((f) => peerSubnet(p, f.family) ?? []);
      if (allowedIps.length === 0) continue;
      const at = peerEndpoint(d.reach, self, p, d.listenPort);
      if ("problem" in at) {
        problems.push(`peer ${p.nodeName}: skipped on ${d.name} (Mode ${conf.mode}), ${at.problem}`);
        continue;
      }
      out.push({
        nodeName: p.nodeName,
        publicKey: p.publicKey!,
        endpoint: at.endpoint,
        allowedIps,
        persistentKeepaliveInterval: conf.persistentKeepaliveInterval,
        ...(conf.psk ? { presharedKey: conf.psk } : {}),
      });
    }
    return out;
  }

  /**
   * Reads each device and sends it the difference to its peers (all current peers when
   * `peers` is undefined, i.e. only key and port are checked).
   */
  function configure(result: ApplyResult, peers?: CheckedPeer[]): void {
    const read: { name: string; info: WgDeviceInfo }[] = [];
    let changed = false;
    for (const d of devices) {
      const drives = ensureDevice(d, result);
      const cur = sys.getDevice(drives, d.name);
      read.push({ name: d.name, info: cur });
      const diff = diffDevice(cur, { privateKey: keys.privateKey, listenPort: d.listenPort, ...(peers ? { peers: wantedPeers(d, peers, result.problems), resendEndpoints } : {}) });
      const cfg = diff.config;
      if (cfg && attempt(result, () => sys.setDevice(drives, d.name, cfg))) {
        changed = true;
        // One kernel call, but each peer or device field it changed is a change.
        result.changes += diff.changes.length - 1;
        for (const c of diff.changes) log.info(`${d.name}: ${c}`);
      }
      if (!nl.getLink(d.name)?.up) attempt(result, () => nl.setLinkUp(d.name));
    }
    observe(read);
    if (changed) lastRead = undefined; // what stats() shows must come from after the change
    if (peers && result.errors.length === 0) resendEndpoints = false;
  }

  /** A weft WireGuard device this configuration does not run (Mode or families changed) goes. */
  function removeUnplanned(result: ApplyResult): void {
    for (const name of [WIREGUARD_DEVICE, WIREGUARD_V6_DEVICE]) {
      if (devices.some((d) => d.name === name)) continue;
      const link = nl.getLink(name);
      if (!link || !sys.implOf(link)) continue;
      if (attempt(result, () => nl.deleteLink(name), { missingIsFine: true })) log.info(`deleted ${name}: Mode ${conf.mode} with these pod families does not use it`);
    }
  }

  return {
    type: "wireguard",
    device: devices[0]!.name,
    mtu: () => mtu,
    async up(): Promise<BackendData> {
      const result = emptyResult();
      removeUnplanned(result);
      // Key and port now, so the devices can answer handshakes; peers come with apply.
      configure(result);
      if (result.errors.length) throw new Error(`start wireguard backend: ${result.errors.join("; ")}`);
      for (const d of devices) log.info(`${d.name} ready`, { wireguard: impl, publicKey: keys.publicKey, listenPort: d.listenPort, mode: conf.mode, mtu });
      return { type: "wireguard", publicKey: keys.publicKey };
    },
    apply(peers: PeerLease[]): ApplyResult {
      const result = emptyResult();
      configure(result, keyedPeers(peers, result.problems));
      // Each pod network goes into the device carrying its family; the own subnets stay on cni0 (longer prefix).
      const routes = devices.flatMap((d) => d.families.map((f) => ({ dst: f.network, dev: d.name })));
      programPeers(nl, networks, { routes, devices: devices.map((d) => ({ dev: d.name })) }, result);
      problemLog.update(result.problems);
      return result;
    },
    stats(): WireguardStats {
      if (impl && (!lastRead || now() - lastRead.at >= 1000)) {
        try {
          observe(devices.map((d) => ({ name: d.name, info: sys.getDevice(impl!, d.name) })));
        } catch (e) {
          log.debug(`read ${devices.map((d) => d.name).join(", ")} for status`, { error: (e as Error).message });
        }
      }
      const t = totals.totals();
      return { impl, peers: lastRead?.peers ?? [], rxBytesTotal: t.rx, txBytesTotal: t.tx };
    },
    close() {},
  };
}
