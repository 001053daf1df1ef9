/**
 * wireguard, as flannel programs it: one device `weft-wg` (flannel names its own
 * flannel-wg) with the node's private key and ListenPort, the own subnet's network
 * address as a /32, and the route `<Network> dev weft-wg proto 87`; per peer a
 * WireGuard peer with the public key from its lease, endpoint = its public IP and
 * ListenPort, allowed IPs = its subnet, the keepalive and the PSK. WireGuard's own
 * cryptokey routing then picks the peer by destination, so routes are not per peer.
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
import { checkPeers } from "./peers.ts";
import { ProblemLog } from "./problem-log.ts";
import { attempt, programPeers } from "./program.ts";
import { podMtu } from "./mtu.ts";
import { diffDevice, shortKey, type WantPeer } from "./wireguard-diff.ts";
import { isBase64Key } from "../net-conf.ts";

export const WIREGUARD_DEVICE = "weft-wg";

export interface WireguardDeps extends BackendDeps {
  /** The node's keys (wireguard-key.ts); the private key goes to the device only. */
  keys: { privateKey: string; publicKey: string };
  sys: WireguardSys;
  /** Wall-clock ms, for handshake ages. */
  now?: () => number;
}

/** One peer as the status API shows it. */
export interface WireguardPeerStatus {
  publicKey: string;
  endpoint?: string;
  /** Wall-clock ms of the latest handshake; 0 = never. */
  lastHandshakeMs: number;
  rxBytes: number;
  txBytes: number;
}

export interface WireguardStats {
  /** Which WireGuard drives weft-wg; undefined before up(). */
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

  update(peers: WgPeerInfo[]): void {
    const next = new Map<string, { rx: number; tx: number }>();
    for (const p of peers) {
      const prev = this.last.get(p.publicKey);
      if (prev && (p.rxBytes < prev.rx || p.txBytes < prev.tx)) this.carry(prev);
      next.set(p.publicKey, { rx: p.rxBytes, tx: p.txBytes });
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

export function createWireguardBackend(conf: WireguardConf, deps: WireguardDeps): WireguardBackend {
  const { nl, network, ownSubnet, publicIp, sys, keys } = deps;
  if (network === undefined || ownSubnet === undefined || publicIp === undefined || deps.ipv6Network !== undefined) {
    throw new Error("create wireguard backend: it carries IPv4 pods over an IPv4 underlay only");
  }
  const name = WIREGUARD_DEVICE;
  const mtu = podMtu(conf, deps.underlayMtu);
  const now = deps.now ?? Date.now;
  const log = deps.logger.child("backend.wireguard");
  const problemLog = new ProblemLog(log);
  const ownAddr = `${ownSubnet.slice(0, ownSubnet.indexOf("/"))}/32`;
  const totals = new TrafficTotals();
  let impl: WireguardImpl | undefined;
  let lastRead: { at: number; info: WgDeviceInfo } | undefined;

  function observe(info: WgDeviceInfo): void {
    lastRead = { at: now(), info };
    totals.update(info.peers);
  }

  /** Creates or adopts weft-wg and puts its link-level state right; returns who drives it. */
  function ensureDevice(result: ApplyResult): WireguardImpl {
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
      log.info(`created ${name}`, { wireguard: drives, mtu, listenPort: conf.listenPort });
      link = nl.getLink(name);
      if (!link) throw new Error(`start wireguard backend: ${name} not visible after creating it`);
    }
    if (drives !== impl) {
      if (impl !== undefined) log.info(`${name} is now driven by the ${drives === "kernel" ? "kernel module" : "userspace wireguard-go"}`);
      impl = drives;
    }
    const l = link;
    if (l.mtu !== mtu) attempt(result, () => nl.setMtu(name, mtu));
    const addrs = nl.listAddresses(name);
    if (!addrs.some((a) => a.cidr === ownAddr)) attempt(result, () => nl.addAddress({ dev: name, cidr: ownAddr }));
    for (const a of addrs) if (a.cidr !== ownAddr) attempt(result, () => nl.deleteAddress(a), { missingIsFine: true });
    return drives;
  }

  /** The peers the leases ask for; records without a usable key become problems. */
  function wantedPeers(peers: PeerLease[], problems: string[]): WantPeer[] {
    const checked = checkPeers(peers, { network, ownSubnet, needMac: false });
    problems.push(...checked.problems);
    const byKey = new Map<string, string>();
    const out: WantPeer[] = [];
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
      out.push({
        nodeName: p.nodeName,
        publicKey: p.publicKey,
        endpoint: `${p.publicIp}:${conf.listenPort}`,
        allowedIps: [p.subnet!],
        persistentKeepaliveInterval: conf.persistentKeepaliveInterval,
        ...(conf.psk ? { presharedKey: conf.psk } : {}),
      });
    }
    return out;
  }

  /** Reads the device, sends the difference to `peers` (all current peers when undefined). */
  function configure(drives: WireguardImpl, peers: WantPeer[] | undefined, result: ApplyResult): void {
    const cur = sys.getDevice(drives, name);
    observe(cur);
    const diff = diffDevice(cur, { privateKey: keys.privateKey, listenPort: conf.listenPort, ...(peers ? { peers } : {}) });
    if (!diff.config) return;
    const cfg = diff.config;
    if (attempt(result, () => sys.setDevice(drives, name, cfg))) {
      lastRead = undefined; // what stats() shows must come from after the change
      // One kernel call, but each peer or device field it changed is a change.
      result.changes += diff.changes.length - 1;
      for (const c of diff.changes) log.info(`${name}: ${c}`);
    }
  }

  return {
    type: "wireguard",
    device: name,
    mtu: () => mtu,
    async up(): Promise<BackendData> {
      const result = emptyResult();
      const drives = ensureDevice(result);
      // Key and port now, so the device can answer handshakes; peers come with apply.
      configure(drives, undefined, result);
      if (!nl.getLink(name)?.up) attempt(result, () => nl.setLinkUp(name));
      if (result.errors.length) throw new Error(`start wireguard backend: ${result.errors.join("; ")}`);
      log.info(`${name} ready`, { wireguard: drives, publicKey: keys.publicKey, listen: `${publicIp}:${conf.listenPort}`, mtu });
      return { type: "wireguard", publicKey: keys.publicKey };
    },
    apply(peers: PeerLease[]): ApplyResult {
      const result = emptyResult();
      const drives = ensureDevice(result);
      const want = wantedPeers(peers, result.problems);
      configure(drives, want, result);
      if (!nl.getLink(name)?.up) attempt(result, () => nl.setLinkUp(name));
      // The whole pod network goes into weft-wg; the own subnet stays on cni0 (longer prefix).
      programPeers(nl, [network], { routes: [{ dst: network, dev: name }], devices: [{ dev: name }] }, result);
      problemLog.update(result.problems);
      return result;
    },
    stats(): WireguardStats {
      if (impl && (!lastRead || now() - lastRead.at >= 1000)) {
        try {
          observe(sys.getDevice(impl, name));
        } catch (e) {
          log.debug(`read ${name} for status`, { error: (e as Error).message });
        }
      }
      const t = totals.totals();
      const peers = (lastRead?.info.peers ?? []).map((p) => ({ publicKey: p.publicKey, ...(p.endpoint ? { endpoint: p.endpoint } : {}), lastHandshakeMs: p.lastHandshakeMs, rxBytes: p.rxBytes, txBytes: p.txBytes }));
      return { impl, peers, rxBytesTotal: t.rx, txBytesTotal: t.tx };
    },
    close() {},
  };
}
