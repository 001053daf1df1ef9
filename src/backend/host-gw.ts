/**
 * host-gw: no encapsulation; each peer's subnet is routed via the peer's public IP on the
 * underlay interface. That only works when peers share an L2 segment with us, so a peer
 * outside the underlay's on-link prefixes is reported (log + ApplyResult.problems) and
 * gets no route rather than a route the kernel would refuse or that would go nowhere.
 */
import type { BackendData } from "../lease/types.ts";
import type { RouteSpec } from "../sys/netlink.ts";
import { type ApplyResult, type Backend, type BackendDeps, type PeerLease, emptyResult } from "./backend.ts";
import { checkPeers, isOnLink, onLinkPrefixes } from "./peers.ts";
import { ProblemLog } from "./problem-log.ts";
import { programPeers } from "./program.ts";

export function createHostGwBackend(deps: BackendDeps): Backend {
  const { nl, network, ownSubnet, underlayIface, underlayMtu } = deps;
  const log = deps.logger.child("backend.host-gw");
  const problemLog = new ProblemLog(log);
  return {
    type: "host-gw",
    device: undefined,
    mtu: () => underlayMtu,
    async up(): Promise<BackendData> {
      if (!nl.getLink(underlayIface)) throw new Error(`start host-gw backend: underlay interface ${underlayIface} not found`);
      return { type: "host-gw" };
    },
    apply(peers: PeerLease[]): ApplyResult {
      const result = emptyResult();
      const checked = checkPeers(peers, { network, ownSubnet, needMac: false });
      result.problems.push(...checked.problems);
      const onLink = onLinkPrefixes(nl.listAddresses(underlayIface));
      const routes: RouteSpec[] = [];
      for (const p of checked.peers) {
        if (!isOnLink(onLink, p.publicIp)) {
          result.problems.push(`peer ${p.nodeName}: no route to ${p.subnet}: host-gw needs ${p.publicIp} on the same L2 network as ${underlayIface} (${onLink.length ? "on-link prefixes: " + nl.listAddresses(underlayIface).map((a) => a.cidr).join(", ") : "it has no IPv4 prefix"}); use vxlan for routed underlays`);
          continue;
        }
        routes.push({ dst: p.subnet, gateway: p.publicIp, dev: underlayIface });
      }
      programPeers(nl, network, { routes }, result);
      problemLog.update(result.problems);
      return result;
    },
    close() {},
  };
}
