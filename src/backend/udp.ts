/**
 * udp: flannel's userspace fallback. The TUN device weft0 carries the own subnet's
 * network address with the Network's prefix (10.244.1.0/16), so the kernel routes the
 * whole pod network into it (the own subnet stays on cni0, a longer prefix); with IPv6
 * pods also the own IPv6 subnet's network address with IPv6Network's prefix, and the
 * route of IPv6Network into weft0. A Worker (udp-pump.worker.ts) reads each IP packet
 * (IPv4 or IPv6) from the TUN, finds the peer whose subnet holds the destination and
 * sends the packet as one UDP datagram to peer:8285; packets arriving on UDP 8285 for
 * our own subnets are written back into the TUN.
 *
 * The datagrams go over the underlay family both nodes have, IPv4 first: a UDP socket
 * on each of this node's public addresses (IPv4 and, with IPv6 pods, IPv6), and per peer
 * the socket and address of the family they share. A peer's datagrams are accepted from
 * either of its addresses.
 *
 * The TUN is persistent: close() stops the loop but leaves weft0, its address and route,
 * and the next start re-attaches. The Network route into weft0 (created by the kernel
 * with the address) is replaced by an identical one marked as weft's (proto 87), so it is
 * repaired when deleted; the IPv6 address is added without a prefix route and weft
 * installs the IPv6Network route itself. Any other weft route in the pod networks (left by
 * another backend) goes.
 */
import type { BackendConf } from "../net-conf.ts";
import type { BackendData } from "../lease/types.ts";
import { parseCidr } from "../net/cidr.ts";
import { isIpv6LinkLocal } from "../net/ipv6.ts";
import { writeSysctl } from "../sys/sysctl.ts";
import { closeFd as sysCloseFd, openTun as sysOpenTun, openUdpSocket as sysOpenUdpSocket } from "../sys/tun.ts";
import { type ApplyResult, type Backend, type BackendDeps, type PeerLease, emptyResult } from "./backend.ts";
import { checkPeers, peerPublicIp, podFamilies, podNetworks, underlayFor } from "./peers.ts";
import { ProblemLog } from "./problem-log.ts";
import { attempt, programPeers } from "./program.ts";
import type { PumpPeer } from "./udp-pump-protocol.ts";
import { podMtu } from "./mtu.ts";
import { startPump as realStartPump, type Pump, type PumpOptions, type UdpCounters } from "./udp-pump.ts";

export { UDP_OVERHEAD } from "./mtu.ts";
export const TUN_NAME = "weft0";

export interface UdpBackend extends Backend {
  /** Packet counters of the loop (zeros before up()). */
  counters(): UdpCounters;
}

/** OS seams, replaced in tests that run without root. */
export interface UdpSys {
  /** Opens/attaches the TUN; `offload` = virtio_net_hdr + TSO/checksum offload. */
  openTun(name: string, offload: boolean): number;
  openUdpSocket(ip: string, port: number): number;
  closeFd(fd: number, what: string): void;
  startPump(o: PumpOptions): Pump;
  /**
   * IPv6 on the TUN: off without IPv6 pods (the kernel's link-local chatter would only be
   * dropped); on with them, but without a link-local address of its own (addr_gen_mode
   * none), so the kernel does not talk on weft0 by itself.
   */
  setIpv6(dev: string, on: boolean): void;
}

const realSys: UdpSys = {
  openTun: (name, offload) => sysOpenTun(name, { persist: true, offload }),
  openUdpSocket: (ip, port) => sysOpenUdpSocket(ip, port),
  closeFd: sysCloseFd,
  startPump: realStartPump,
  setIpv6: (dev, on) => {
    if (on) writeSysctl(["net", "ipv6", "conf", dev, "addr_gen_mode"], 1);
    writeSysctl(["net", "ipv6", "conf", dev, "disable_ipv6"], on ? 0 : 1);
  },
};

const zeroCounters = (): UdpCounters => ({ txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0, droppedNoRoute: 0, droppedInvalid: 0, droppedIo: 0, droppedUnknownSender: 0, droppedSpoofedSource: 0, droppedBadOffloadHeader: 0, packetsForwarded: 0, packetsDropped: 0, loops: 0, txSuperPackets: 0, rxSuperPackets: 0 });

export interface UdpDeps extends BackendDeps {
  sys?: Partial<UdpSys>;
  /**
   * TUN segmentation offload: true/false forces it; undefined (default) tries it and
   * falls back. With it, TCP crosses as 64 KiB super-packets in weft's marked framing
   * (peers must be weft); without it, each datagram is one plain IP packet (flannel's).
   */
  offload?: boolean;
}

function addCounters(a: UdpCounters, b: UdpCounters): UdpCounters {
  const out = { ...a };
  for (const k of Object.keys(out) as (keyof UdpCounters)[]) out[k] = a[k] + b[k];
  return out;
}

export function createUdpBackend(conf: Extract<BackendConf, { type: "udp" }>, deps: UdpDeps): UdpBackend {
  const { nl, publicIp, publicIpv6 } = deps;
  const sys: UdpSys = { ...realSys, ...deps.sys };
  const mtu = podMtu(conf, deps.underlayMtu, { ipv6Underlay: publicIpv6 !== undefined });
  const log = deps.logger.child("backend.udp");
  const problemLog = new ProblemLog(log);
  const families = podFamilies(deps);
  const ipv6Pods = families.some((f) => f.family === 6);
  // The own subnets' network addresses with their pod networks' prefix lengths: the kernel
  // routes each whole pod network into weft0 (IPv6: weft's route, the address has none).
  const ownAddrs = families.map((f) => ({ dev: TUN_NAME, cidr: `${f.ownSubnet.slice(0, f.ownSubnet.indexOf("/"))}/${parseCidr(f.network).prefix}`, ...(f.family === 6 ? { noPrefixRoute: true } : {}) }));
  let tunFd = -1;
  let udpFd = -1;
  let udpFd6 = -1;
  /** TUN fds of deleted devices: the worker may still hold the number until it switches, so they close at close(). */
  const retired: number[] = [];
  let pump: Pump | undefined;
  let sentTable = "";
  let carried = zeroCounters();
  /** Decided at the first open: offload unless the kernel refuses it; kept for reopens (the worker's framing is fixed). */
  let offload: boolean | undefined = deps.offload;

  function openTunFd(): number {
    if (offload === undefined) {
      try {
        const fd = sys.openTun(TUN_NAME, true);
        offload = true;
        return fd;
      } catch (e) {
        log.warn(`TUN offload unavailable, forwarding packet by packet: ${(e as Error).message}`);
        offload = false;
      }
    }
    return sys.openTun(TUN_NAME, offload);
  }

  function ensureDevice(result: ApplyResult): void {
    let link = nl.getLink(TUN_NAME);
    if (link && link.kind !== undefined && link.kind !== "tun") {
      throw new Error(`start udp backend: ${TUN_NAME} exists but is a ${link.kind} device, not a TUN; delete it`);
    }
    // Open when the device is missing, when we hold no fd yet (adopting the persistent
    // weft0 of a previous run: without an attached fd it has no carrier), or when the
    // worker saw our fd die.
    if (!link || tunFd < 0 || (pump && pump.tunDead())) {
      const fd = openTunFd();
      if (tunFd >= 0) retired.push(tunFd);
      tunFd = fd;
      pump?.setTun(fd);
      if (!link) {
        result.changes++;
        log.info(`${pump ? "recreated" : "created"} ${TUN_NAME}`, { mtu });
      }
      link = nl.getLink(TUN_NAME);
      if (!link) throw new Error(`start udp backend: ${TUN_NAME} not visible after opening it`);
      try {
        sys.setIpv6(TUN_NAME, ipv6Pods);
      } catch (e) {
        // e.g. a kernel without IPv6; with IPv6 pods the address below then fails and says so
        log.debug(`IPv6 on ${TUN_NAME} left as it is: ${(e as Error).message}`);
      }
    }
    if (link.mtu !== mtu) attempt(result, () => nl.setMtu(TUN_NAME, mtu));
    if (!link.up) attempt(result, () => nl.setLinkUp(TUN_NAME));
    const addrs = nl.listAddresses(TUN_NAME);
    for (const want of ownAddrs) if (!addrs.some((a) => a.cidr === want.cidr)) attempt(result, () => nl.addAddress(want));
    for (const a of addrs) if (!ownAddrs.some((w) => w.cidr === a.cidr) && !isIpv6LinkLocal(a.cidr)) attempt(result, () => nl.deleteAddress(a), { missingIsFine: true });
  }

  const startLoop = (): Pump => sys.startPump({ tunFd, udpFd, udpFd6, port: conf.port, ownSubnets: families.map((f) => f.ownSubnet), offload: offload ?? false, logger: log });

  return {
    type: "udp",
    device: TUN_NAME,
    mtu: () => mtu,
    async up(): Promise<BackendData> {
      if (pump) return { type: "udp" };
      const result = emptyResult();
      ensureDevice(result);
      if (result.errors.length) throw new Error(`start udp backend: ${result.errors.join("; ")}`);
      if (publicIp !== undefined) udpFd = sys.openUdpSocket(publicIp, conf.port);
      if (publicIpv6 !== undefined) udpFd6 = sys.openUdpSocket(publicIpv6, conf.port);
      pump = startLoop();
      sentTable = "";
      try {
        await pump.ready;
      } catch (e) {
        pump.stop();
        pump = undefined; // so a later up() tries again instead of trusting a dead loop
        throw e;
      }
      log.info(`packet loop running`, { tun: TUN_NAME, listen: [publicIp && `${publicIp}:${conf.port}`, publicIpv6 && `[${publicIpv6}]:${conf.port}`].filter(Boolean).join(" "), mtu, offload });
      return { type: "udp" };
    },
    apply(peers: PeerLease[]): ApplyResult {
      const result = emptyResult();
      if (!pump) throw new Error("apply udp backend: up() has not run");
      if (pump.died()) {
        // The fds are still ours and valid: a new worker takes them over.
        log.error("udp packet loop died; starting a new one");
        carried = addCounters(carried, pump.counters()); // counters must not go backwards
        pump.stop();
        pump = startLoop();
        sentTable = "";
        result.changes++;
      }
      ensureDevice(result);
      const checked = checkPeers(peers, { ...deps, needMac: false });
      result.problems.push(...checked.problems);
      // The route of each whole pod network into weft0 (IPv4: made by the kernel with the
      // address, taken over as weft's) is kept like any other weft route.
      const networks = podNetworks(deps);
      programPeers(nl, networks, { routes: networks.map((dst) => ({ dst, dev: TUN_NAME })), devices: [{ dev: TUN_NAME }] }, result);
      const table: PumpPeer[] = [];
      for (const p of checked.peers) {
        // The underlay both nodes have, IPv4 first (the inner packet's family does not matter).
        const u = underlayFor(4, deps, p);
        const subnets = [p.subnet, p.ipv6Subnet].filter((x): x is string => x !== undefined);
        if (u === undefined) {
          for (const s of subnets) result.problems.push(`peer ${p.nodeName}: no route to ${s}: no underlay family in common (this node has ${[publicIp && "IPv4", publicIpv6 && "IPv6"].filter(Boolean).join(" and ")}, the peer ${[p.publicIp && "IPv4", p.publicIpv6 && "IPv6"].filter(Boolean).join(" and ")})`);
          continue;
        }
        const other = peerPublicIp(p, u === 4 ? 6 : 4);
        for (const s of subnets) table.push({ subnet: s, ip: peerPublicIp(p, u)!, ...(other !== undefined ? { otherIp: other } : {}) });
      }
      const text = JSON.stringify(table);
      if (text !== sentTable) {
        pump.setPeers(table);
        sentTable = text;
        result.changes++; // the forwarding table is dataplane state too
      }
      problemLog.update(result.problems);
      return result;
    },
    counters: () => addCounters(carried, pump?.counters() ?? zeroCounters()),
    close() {
      pump?.stop();
      pump = undefined;
      for (const [fd, what] of [[udpFd, `UDP socket ${publicIp}:${conf.port}`], [udpFd6, `UDP socket [${publicIpv6}]:${conf.port}`], [tunFd, TUN_NAME], ...retired.map((f) => [f, `retired ${TUN_NAME} fd`])] as [number, string][]) {
        if (fd < 0) continue;
        try {
          sys.closeFd(fd, what);
        } catch (e) {
          log.warn((e as Error).message);
        }
      }
      retired.length = 0;
      tunFd = udpFd = udpFd6 = -1;
    },
  };
}

