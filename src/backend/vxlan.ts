/**
 * vxlan, programmed as flannel does it (no learning, no multicast): the device
 * weft.<VNI> carries the own subnet's network address as a /32, and per peer
 *   ARP   peer-subnet.0 → peer VTEP MAC           (permanent, on weft.<VNI>)
 *   FDB   peer VTEP MAC → peer public IP          (permanent, on weft.<VNI>)
 *   route peer-subnet via peer-subnet.0 dev weft.<VNI> onlink   (added last)
 * With DirectRouting, a peer whose public IP is on-link on the underlay gets a plain
 * `subnet via publicIp dev <underlay>` route instead (no encapsulation, like host-gw).
 *
 * Ownership of the device: the name weft.<VNI> is weft's, but only a device of kind
 * vxlan under it is weft's device. That one is adopted when it matches (MAC, and
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
import type { LinkInfo, NeighSpec, FdbSpec, RouteSpec } from "../sys/netlink.ts";
import type { BackendConf } from "../net-conf.ts";
import { type ApplyResult, type Backend, type BackendDeps, type PeerLease, emptyResult } from "./backend.ts";
import { checkPeers, isOnLink, onLinkPrefixes, type CheckedPeer } from "./peers.ts";
import { ProblemLog } from "./problem-log.ts";
import { attempt, programPeers } from "./program.ts";
import { isUsableMac } from "../net/mac.ts";
import { podMtu } from "./mtu.ts";

export { VXLAN_OVERHEAD } from "./mtu.ts";

export function createVxlanBackend(conf: Extract<BackendConf, { type: "vxlan" }>, deps: BackendDeps): Backend {
  const { nl, network, ownSubnet, publicIp, underlayIface } = deps;
  const name = `weft.${conf.vni}`;
  const mtu = podMtu(conf, deps.underlayMtu);
  const log = deps.logger.child("backend.vxlan");
  const problemLog = new ProblemLog(log);
  if (deps.vtepMac !== undefined && !isUsableMac(deps.vtepMac)) throw new Error(`create vxlan backend: vtepMac ${JSON.stringify(deps.vtepMac)} is not a lowercase unicast MAC`);
  let mac = deps.vtepMac;
  const ownAddr = `${ownSubnet.slice(0, ownSubnet.indexOf("/"))}/32`;
  /** ifindex of the device instance accept_ra was turned off for. */
  let raOffFor: number | undefined;

  /**
   * accept_ra=0, as flannel sets on its VXLAN devices: an IPv6 router advertisement
   * arriving over the overlay must not add addresses or routes to weft's device. Once per
   * device instance (a recreated device starts with the kernel's default).
   */
  function refuseRouterAdvertisements(link: LinkInfo): void {
    if (!deps.sysctl || link.index === raOffFor) return;
    raOffFor = link.index;
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
    return `${name} exists but is ${what}, not weft's VXLAN device; weft does not delete or program devices it did not make: delete or rename it (ip link del ${name}), or set another Backend.VNI`;
  }

  /** Why weft's VXLAN device must be recreated, or undefined when it can be adopted. */
  function mismatch(l: LinkInfo): string | undefined {
    if (mac !== undefined && l.mac !== undefined && l.mac.toLowerCase() !== mac) return `MAC ${l.mac} is not ${mac}`;
    const v = l.vxlan;
    // Without reported parameters (a Netlink that cannot read them) kind and MAC decide.
    if (v === undefined) return undefined;
    if (v.vni !== conf.vni) return `VNI ${v.vni} is not ${conf.vni}`;
    if (v.local !== publicIp) return `local ${v.local ?? "unset"} is not ${publicIp}`;
    if (v.port !== conf.port) return `port ${v.port} is not ${conf.port}`;
    if (v.learning === true) return "learning is on (weft programs the FDB itself)";
    return undefined;
  }

  /** Creates, adopts or repairs the device; false (with the problem in `result`) when a foreign device holds the name. */
  function ensureDevice(result: ApplyResult): boolean {
    let link: LinkInfo | undefined = nl.getLink(name);
    if (link) {
      const notOurs = foreign(link);
      if (notOurs) {
        result.problems.push(notOurs);
        return false;
      }
      const why = mismatch(link);
      if (why) {
        log.warn(`recreating ${name}: ${why}`);
        nl.deleteLink(name);
        result.changes++;
        link = undefined;
      }
    }
    if (!link) {
      const underlayIndex = nl.getLink(underlayIface)?.index;
      link = nl.createVxlan({ name, vni: conf.vni, local: publicIp, port: conf.port, mtu, ...(mac ? { mac } : {}), ...(underlayIndex !== undefined ? { underlayIndex } : {}) });
      result.changes++;
      log.info(`created ${name}`, { vni: conf.vni, local: publicIp, port: conf.port, mtu, mac: link.mac });
    }
    if (mac === undefined && link.mac) mac = link.mac.toLowerCase();
    refuseRouterAdvertisements(link);
    if (link.mtu !== mtu) attempt(result, () => nl.setMtu(name, mtu));
    if (!link.up) attempt(result, () => nl.setLinkUp(name));
    const addrs = nl.listAddresses(name);
    if (!addrs.some((a) => a.cidr === ownAddr)) attempt(result, () => nl.addAddress({ dev: name, cidr: ownAddr }));
    for (const a of addrs) if (a.cidr !== ownAddr) attempt(result, () => nl.deleteAddress(a), { missingIsFine: true });
    return true;
  }

  return {
    type: "vxlan",
    device: name,
    mtu: () => mtu,
    async up(): Promise<BackendData> {
      const result = emptyResult();
      if (!ensureDevice(result)) throw new Error(`start vxlan backend: ${result.problems.join("; ")}`);
      if (result.errors.length) throw new Error(`start vxlan backend: ${result.errors.join("; ")}`);
      if (!mac) throw new Error(`start vxlan backend: ${name} has no MAC address`);
      return { type: "vxlan", vtepMac: mac };
    },
    apply(peers: PeerLease[]): ApplyResult {
      const result = emptyResult();
      if (!ensureDevice(result)) {
        problemLog.update(result.problems);
        return result;
      }
      const checked = checkPeers(peers, { network, ownSubnet, needMac: !conf.directRouting });
      result.problems.push(...checked.problems);
      const onLink = conf.directRouting ? onLinkPrefixes(nl.listAddresses(underlayIface)) : [];
      const routes: RouteSpec[] = [];
      const byMac = new Map<string, CheckedPeer[]>();
      for (const p of checked.peers) {
        if (conf.directRouting && isOnLink(onLink, p.publicIp)) {
          routes.push({ dst: p.subnet, gateway: p.publicIp, dev: underlayIface });
          continue;
        }
        if (p.vtepMac === undefined || !isUsableMac(p.vtepMac)) {
          result.problems.push(`peer ${p.nodeName}: skipped, vtepMac ${JSON.stringify(p.vtepMac)} is not a unicast MAC and ${p.publicIp} is not on-link for DirectRouting`);
          continue;
        }
        byMac.set(p.vtepMac, [...(byMac.get(p.vtepMac) ?? []), p]);
      }
      const neighs: NeighSpec[] = [];
      const fdb: FdbSpec[] = [];
      for (const [vtepMac, claimants] of byMac) {
        if (claimants.length > 1 || vtepMac === mac) {
          const who = claimants.map((p) => `${p.nodeName} (${p.publicIp})`).join(", ") + (vtepMac === mac ? " and this node" : "");
          result.problems.push(`VTEP MAC ${vtepMac} is claimed by ${who}: skipped, a MAC must belong to one node or the kernel would send one node's traffic to the other (a cloned node or a forged lease)`);
          continue;
        }
        const p = claimants[0]!;
        neighs.push({ dev: name, ip: p.gatewayIp, mac: vtepMac });
        fdb.push({ dev: name, mac: vtepMac, dst: p.publicIp });
        routes.push({ dst: p.subnet, gateway: p.gatewayIp, dev: name, onlink: true });
      }
      programPeers(nl, network, { routes, dev: name, entries: { neighs, fdb } }, result);
      problemLog.update(result.problems);
      return result;
    },
    close() {},
  };
}
