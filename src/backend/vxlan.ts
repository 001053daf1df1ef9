/**
 * vxlan, programmed as flannel does it (no learning, no multicast). Up to two devices,
 * one per underlay family: `weft.<VNI>` with this node's IPv4 public address as local,
 * `weft-v6.<VNI>` with its IPv6 one (flannel's flannel.<VNI> / flannel-v6.<VNI>); each
 * exists when the node has an underlay address of its family. Both carry the node's VTEP
 * MAC and the own subnets' network addresses (10.244.3.0/32, fd00:10:244:3::/128).
 *
 * Per peer and pod family, the underlay family is chosen (peers.ts underlayFor): the
 * same family when both nodes have an underlay address of it, else the other one. So
 * IPv6 pods of two nodes with IPv6 underlay addresses go over weft-v6.<VNI>, and over
 * weft.<VNI> when one of them has only IPv4 (VXLAN is L2: the IPv4 device carries IPv6
 * frames as well as IPv4 ones) — and IPv4 pods go over weft-v6.<VNI> between nodes
 * without IPv4 underlay. On the chosen device D:
 *   neighbour peer-subnet gateway → peer VTEP MAC   (ARP or NDP, permanent)
 *   FDB       peer VTEP MAC → peer public address of D's family      (permanent)
 *   route     peer-subnet via gateway dev D onlink                   (added last)
 * With DirectRouting, a peer whose public address of the pod family is on-link on the
 * underlay gets a plain `subnet via <address> dev <underlay>` route instead (no
 * encapsulation, like host-gw).
 *
 * Ownership of the devices: the names are weft's, but only a device of kind vxlan under
 * them is weft's device. That one is adopted when it matches (MAC, and
 * VNI/local/port/learning off when the Netlink implementation reports them), otherwise
 * deleted and recreated; the MAC is kept stable across recreation so peers' entries stay
 * valid. A device of any other kind with that name was made by somebody else: it is
 * never deleted or programmed; up() fails naming it and apply() reports it as a problem.
 *
 * Each VTEP MAC may belong to one peer only: the kernel sends a frame to every FDB
 * destination of its MAC, so two leases with one MAC would hand one node's traffic to the
 * other. Peers sharing a MAC (with each other or with this node) are all skipped and
 * reported.
 */
import type { BackendData } from "../lease/types.ts";
import type { Family } from "../net/cidr.ts";
import type { LinkInfo, NeighSpec, FdbSpec, RouteSpec } from "../sys/netlink.ts";
import type { BackendConf } from "../net-conf.ts";
import { type ApplyResult, type Backend, type BackendDeps, type PeerLease, emptyResult } from "./backend.ts";
import { checkPeers, isOnLink, onLinkPrefixes, peerGateway, peerPublicIp, peerSubnet, podFamilies, podNetworks, underlayFor, type CheckedPeer } from "./peers.ts";
import { ProblemLog } from "./problem-log.ts";
import { attempt, programPeers } from "./program.ts";
import { isUsableMac } from "../net/mac.ts";
import { podMtu, VXLAN_OVERHEAD, VXLAN_V6_OVERHEAD } from "./mtu.ts";
import { isIpv6LinkLocal } from "../net/ipv6.ts";

export { VXLAN_OVERHEAD } from "./mtu.ts";

/** The devices' names for a VNI: weft.<VNI> over IPv4, weft-v6.<VNI> over IPv6. */
export const vxlanDeviceName = (vni: number, underlay: Family): string => (underlay === 4 ? `weft.${vni}` : `weft-v6.${vni}`);

interface Device {
  underlay: Family;
  name: string;
  /** The local (VTEP) address: this node's public address of the underlay family; undefined: the node has none, the device must not exist. */
  local: string | undefined;
  mtu: number;
}

export function createVxlanBackend(conf: Extract<BackendConf, { type: "vxlan" }>, deps: BackendDeps): Backend {
  const { nl, underlayIface } = deps;
  const mtu = podMtu(conf, deps.underlayMtu, { ipv6Underlay: deps.publicIpv6 !== undefined });
  const log = deps.logger.child("backend.vxlan");
  const problemLog = new ProblemLog(log);
  if (deps.vtepMac !== undefined && !isUsableMac(deps.vtepMac)) throw new Error(`create vxlan backend: vtepMac ${JSON.stringify(deps.vtepMac)} is not a lowercase unicast MAC`);
  if (deps.publicIp === undefined && deps.publicIpv6 === undefined) throw new Error("create vxlan backend: the node has no public address (IPv4 or IPv6)");
  let mac = deps.vtepMac;
  const families = podFamilies(deps);
  // Each device carries the own subnets' network addresses as host addresses.
  const ownAddrs = families.map((p) => `${p.ownSubnet.slice(0, p.ownSubnet.indexOf("/"))}/${p.family === 4 ? 32 : 128}`);
  const devices: Device[] = [
    { underlay: 4, name: vxlanDeviceName(conf.vni, 4), local: deps.publicIp, mtu: conf.mtu ?? deps.underlayMtu - VXLAN_OVERHEAD },
    { underlay: 6, name: vxlanDeviceName(conf.vni, 6), local: deps.publicIpv6, mtu: conf.mtu ?? deps.underlayMtu - VXLAN_V6_OVERHEAD },
  ];
  const used = devices.filter((d) => d.local !== undefined);
  /** ifindex of each device instance accept_ra was turned off for, by device name. */
  const raOffFor = new Map<string, number>();

  /**
   * accept_ra=0, as flannel sets on its VXLAN devices: an IPv6 router advertisement
   * arriving over the overlay must not add addresses or routes to weft's device. Once per
   * device instance (a recreated device starts with the kernel's default).
   */
  function refuseRouterAdvertisements(name: string, link: LinkInfo): void {
    if (!deps.sysctl || raOffFor.get(name) === link.index) return;
    raOffFor.set(name, link.index);
    try {
      deps.sysctl(`net.ipv6.conf.${name.replaceAll(".", "/")}.accept_ra`, 0);
    } catch (e) {
      log.debug(`accept_ra stays as it is on ${name}: ${(e as Error).message}`); // e.g. a kernel without IPv6
    }
  }

  /** Why a device named like ours is not ours, or undefined when it is a VXLAN device (weft's). */
  function foreign(l: LinkInfo): string | undefined {
    if (l.kind === "vxlan") return undefined;
    const what = l.kind ? `a ${l.kind} device` : "a device of no reported kind";
    return `${l.name} exists but is ${what}, not weft's VXLAN device; weft does not delete or program devices it did not make: delete or rename it (ip link del ${l.name}), or set another Backend.VNI`;
  }

  /** Why weft's VXLAN device must be recreated, or undefined when it can be adopted. */
  function mismatch(d: Device, l: LinkInfo): string | undefined {
    if (mac !== undefined && l.mac !== undefined && l.mac.toLowerCase() !== mac) return `MAC ${l.mac} is not ${mac}`;
    const v = l.vxlan;
    // Without reported parameters (a Netlink that cannot read them) kind and MAC decide.
    if (v === undefined) return undefined;
    if (v.vni !== conf.vni) return `VNI ${v.vni} is not ${conf.vni}`;
    if (v.local !== d.local) return `local ${v.local ?? "unset"} is not ${d.local}`;
    if (v.port !== conf.port) return `port ${v.port} is not ${conf.port}`;
    if (v.learning === true) return "learning is on (weft programs the FDB itself)";
    return undefined;
  }

  /** Creates, adopts or repairs one device; false (with the problem in `result`) when a foreign device holds the name. */
  function ensureDevice(d: Device & { local: string }, result: ApplyResult): boolean {
    const name = d.name;
    let link: LinkInfo | undefined = nl.getLink(name);
    if (link) {
      const notOurs = foreign(link);
      if (notOurs) {
        result.problems.push(notOurs);
        return false;
      }
      const why = mismatch(d, link);
      if (why) {
        log.warn(`recreating ${name}: ${why}`);
        nl.deleteLink(name);
        result.changes++;
        link = undefined;
      }
    }
    if (!link) {
      const underlayIndex = nl.getLink(underlayIface)?.index;
      link = nl.createVxlan({ name, vni: conf.vni, local: d.local, port: conf.port, mtu: d.mtu, ...(mac ? { mac } : {}), ...(underlayIndex !== undefined ? { underlayIndex } : {}) });
      result.changes++;
      log.info(`created ${name}`, { vni: conf.vni, local: d.local, port: conf.port, mtu: d.mtu, mac: link.mac });
    }
    if (mac === undefined && link.mac) mac = link.mac.toLowerCase();
    refuseRouterAdvertisements(name, link);
    if (link.mtu !== d.mtu) attempt(result, () => nl.setMtu(name, d.mtu));
    if (!link.up) attempt(result, () => nl.setLinkUp(name));
    const addrs = nl.listAddresses(name);
    for (const want of ownAddrs) if (!addrs.some((a) => a.cidr === want)) attempt(result, () => nl.addAddress({ dev: name, cidr: want }));
    for (const a of addrs) if (!ownAddrs.includes(a.cidr) && !isIpv6LinkLocal(a.cidr)) attempt(result, () => nl.deleteAddress(a), { missingIsFine: true });
    return true;
  }

  /** Makes the devices the node has underlay addresses for; removes a weft device of a family it has none of. */
  function ensureDevices(result: ApplyResult): boolean {
    let ok = true;
    for (const d of devices) {
      if (d.local !== undefined) ok = ensureDevice(d as Device & { local: string }, result) && ok;
      else {
        const l = nl.getLink(d.name);
        if (l?.kind === "vxlan") {
          log.info(`deleting ${d.name}: this node has no IPv${d.underlay} underlay address any more`);
          attempt(result, () => nl.deleteLink(d.name), { missingIsFine: true });
        }
      }
    }
    return ok;
  }

  return {
    type: "vxlan",
    device: used[0]!.name,
    mtu: () => mtu,
    async up(): Promise<BackendData> {
      const result = emptyResult();
      if (!ensureDevices(result)) throw new Error(`start vxlan backend: ${result.problems.join("; ")}`);
      if (result.errors.length) throw new Error(`start vxlan backend: ${result.errors.join("; ")}`);
      if (!mac) throw new Error(`start vxlan backend: ${used[0]!.name} has no MAC address`);
      return { type: "vxlan", vtepMac: mac };
    },
    apply(peers: PeerLease[]): ApplyResult {
      const result = emptyResult();
      if (!ensureDevices(result)) {
        problemLog.update(result.problems);
        return result;
      }
      const checked = checkPeers(peers, { ...deps, needMac: !conf.directRouting });
      result.problems.push(...checked.problems);
      const addrs = conf.directRouting ? nl.listAddresses(underlayIface) : [];
      const routes: RouteSpec[] = [];
      /** Per peer, the (pod family, underlay family) pairs it is reached by over VXLAN. */
      const tunnelled = new Map<CheckedPeer, [Family, Family][]>();
      for (const p of checked.peers) {
        for (const { family } of families) {
          const subnet = peerSubnet(p, family);
          if (subnet === undefined) continue;
          const direct = peerPublicIp(p, family);
          if (conf.directRouting && direct !== undefined && isOnLink(onLinkPrefixes(addrs, family), direct)) {
            routes.push({ dst: subnet, gateway: direct, dev: underlayIface });
            continue;
          }
          const underlay = underlayFor(family, deps, p);
          if (underlay === undefined) {
            result.problems.push(`peer ${p.nodeName}: no route to ${subnet}: no underlay family in common (this node has ${underlayText(deps)}, the peer ${underlayText(p)})`);
            continue;
          }
          if (p.vtepMac === undefined || !isUsableMac(p.vtepMac)) {
            result.problems.push(`peer ${p.nodeName}: skipped, vtepMac ${JSON.stringify(p.vtepMac)} is not a unicast MAC and ${direct ?? subnet} is not on-link for DirectRouting`);
            continue;
          }
          tunnelled.set(p, [...(tunnelled.get(p) ?? []), [family, underlay]]);
        }
      }
      const byMac = new Map<string, CheckedPeer[]>();
      for (const p of tunnelled.keys()) byMac.set(p.vtepMac!, [...(byMac.get(p.vtepMac!) ?? []), p]);
      const entries = new Map(used.map((d) => [d.underlay, { neighs: [] as NeighSpec[], fdb: [] as FdbSpec[] }]));
      for (const [vtepMac, claimants] of byMac) {
        if (claimants.length > 1 || vtepMac === mac) {
          const who = claimants.map((p) => `${p.nodeName} (${[p.publicIp, p.publicIpv6].filter(Boolean).join(" / ")})`).join(", ") + (vtepMac === mac ? " and this node" : "");
          result.problems.push(`VTEP MAC ${vtepMac} is claimed by ${who}: skipped, a MAC must belong to one node or the kernel would send one node's traffic to the other (a cloned node or a forged lease)`);
          continue;
        }
        const p = claimants[0]!;
        const fdbDone = new Set<Family>();
        for (const [family, underlay] of tunnelled.get(p)!) {
          const dev = vxlanDeviceName(conf.vni, underlay);
          const e = entries.get(underlay)!;
          const gateway = peerGateway(p, family)!;
          e.neighs.push({ dev, ip: gateway, mac: vtepMac });
          if (!fdbDone.has(underlay)) e.fdb.push({ dev, mac: vtepMac, dst: peerPublicIp(p, underlay)! });
          fdbDone.add(underlay);
          routes.push({ dst: peerSubnet(p, family)!, gateway, dev, onlink: true });
        }
      }
      programPeers(nl, podNetworks(deps), { routes, devices: used.map((d) => ({ dev: d.name, entries: entries.get(d.underlay)! })) }, result);
      problemLog.update(result.problems);
      return result;
    },
    close() {},
  };
}

/** "IPv4 and IPv6 underlay addresses", "only an IPv4 underlay address", … */
function underlayText(x: { publicIp?: string; publicIpv6?: string }): string {
  if (x.publicIp !== undefined && x.publicIpv6 !== undefined) return "IPv4 and IPv6 underlay addresses";
  return x.publicIp !== undefined ? "only an IPv4 underlay address" : "only an IPv6 underlay address";
}
