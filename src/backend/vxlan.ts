/**
 * vxlan, programmed as flannel does it (no learning, no multicast): the device
 * weft.<VNI> carries the own subnet's network address as a /32, and per peer
 *   ARP   peer-subnet.0 → peer VTEP MAC           (permanent, on weft.<VNI>)
 *   FDB   peer VTEP MAC → peer public IP          (permanent, on weft.<VNI>)
 *   route peer-subnet via peer-subnet.0 dev weft.<VNI> onlink   (added last)
 * With DirectRouting, a peer whose public IP is on-link on the underlay gets a plain
 * `subnet via publicIp dev <underlay>` route instead (no encapsulation, like host-gw).
 *
 * An existing device is adopted when it matches (kind, MAC, and VNI/local/port/learning
 * off when the Netlink implementation reports them); otherwise it is recreated. The MAC
 * is kept stable across recreation so peers' entries stay valid.
 */
import type { BackendData } from "../lease/types.ts";
import type { LinkInfo, NeighSpec, FdbSpec, RouteSpec } from "../sys/netlink.ts";
import type { BackendConf } from "../config.ts";
import { type ApplyResult, type Backend, type BackendDeps, type PeerLease, emptyResult } from "./backend.ts";
import { checkPeers, isOnLink, onLinkPrefixes } from "./peers.ts";
import { ProblemLog } from "./problem-log.ts";
import { attempt, programPeers } from "./program.ts";
import { isUsableMac } from "./mac.ts";
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

  function mismatch(l: LinkInfo): string | undefined {
    if (l.kind !== "vxlan") return `kind ${l.kind ?? "none"} is not vxlan`;
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

  function ensureDevice(result: ApplyResult): void {
    let link: LinkInfo | undefined = nl.getLink(name);
    if (link) {
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
    if (link.mtu !== mtu) attempt(result, () => nl.setMtu(name, mtu));
    if (!link.up) attempt(result, () => nl.setLinkUp(name));
    const addrs = nl.listAddresses(name);
    if (!addrs.some((a) => a.cidr === ownAddr)) attempt(result, () => nl.addAddress({ dev: name, cidr: ownAddr }));
    for (const a of addrs) if (a.cidr !== ownAddr) attempt(result, () => nl.deleteAddress(a), { missingIsFine: true });
  }

  return {
    type: "vxlan",
    device: name,
    mtu: () => mtu,
    async up(): Promise<BackendData> {
      const result = emptyResult();
      ensureDevice(result);
      if (result.errors.length) throw new Error(`start vxlan backend: ${result.errors.join("; ")}`);
      if (!mac) throw new Error(`start vxlan backend: ${name} has no MAC address`);
      return { type: "vxlan", vtepMac: mac };
    },
    apply(peers: PeerLease[]): ApplyResult {
      const result = emptyResult();
      ensureDevice(result);
      const checked = checkPeers(peers, { network, ownSubnet, needMac: !conf.directRouting });
      result.problems.push(...checked.problems);
      const onLink = conf.directRouting ? onLinkPrefixes(nl.listAddresses(underlayIface)) : [];
      const routes: RouteSpec[] = [];
      const neighs: NeighSpec[] = [];
      const fdb: FdbSpec[] = [];
      for (const p of checked.peers) {
        if (conf.directRouting && isOnLink(onLink, p.publicIp)) {
          routes.push({ dst: p.subnet, gateway: p.publicIp, dev: underlayIface });
          continue;
        }
        if (p.vtepMac === undefined || !isUsableMac(p.vtepMac)) {
          result.problems.push(`peer ${p.nodeName}: skipped, vtepMac ${JSON.stringify(p.vtepMac)} is not a unicast MAC and ${p.publicIp} is not on-link for DirectRouting`);
          continue;
        }
        neighs.push({ dev: name, ip: p.gatewayIp, mac: p.vtepMac });
        fdb.push({ dev: name, mac: p.vtepMac, dst: p.publicIp });
        routes.push({ dst: p.subnet, gateway: p.gatewayIp, dev: name, onlink: true });
      }
      programPeers(nl, network, { routes, dev: name, neighs, fdb }, result);
      problemLog.update(result.problems);
      return result;
    },
    close() {},
  };
}
