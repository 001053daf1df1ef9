/**
 * host-gw: no encapsulation; each peer's subnet is routed via the peer's public address
 * of the same family on the underlay interface: its IPv4 subnet via its IPv4 address,
 * its IPv6 subnet via its IPv6 address. That only works when peers share an L2 segment
 * with us, so a peer outside the underlay's on-link prefixes of that family (or without
 * an address of that family) is reported (log + ApplyResult.problems) and gets no route
 * rather than a route the kernel would refuse or that would go nowhere.
 */
import type { BackendData } from "../lease/types.ts";
import type { RouteSpec } from "../sys/netlink.ts";
import { type ApplyResult, type Backend, type BackendDeps, type PeerLease, emptyResult } from "./backend.ts";
import { checkPeers, isOnLink, onLinkPrefixes, peerPublicIp, peerSubnet, podFamilies, podNetworks } from "./peers.ts";
import { ProblemLog } from "./problem-log.ts";
import { programPeers } from "./program.ts";

export function createHostGwBackend(deps: BackendDeps): Backend {
  const { nl, underlayIface, underlayMtu } = deps;
  const log = deps.logger.child("backend.host-gw");
  const problemLog = new ProblemLog(log);
  const families = podFamilies(deps);
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
      const checked = checkPeers(peers, { ...deps, needMac: false });
      result.problems.push(...checked.problems);
      const addrs = nl.listAddresses(underlayIface);
      const routes: RouteSpec[] = [];
      for (const { family } of families) {
        const onLink = onLinkPrefixes(addrs, family);
        for (const p of checked.peers) {
          const subnet = peerSubnet(p, family);
          if (subnet === undefined) continue;
          const via = peerPublicIp(p, family);
          if (via === undefined) {
            result.problems.push(`peer ${p.nodeName}: no route to ${subnet}: host-gw routes it via the peer's IPv${family} address, and its lease has none; use vxlan to carry IPv${family} pods over the other family's underlay`);
            continue;
          }
          if (!isOnLink(onLink, via)) {
            const shown = addrs.filter((a) => a.cidr.includes(":") === (family === 6)).map((a) => a.cidr);
            result.problems.push(
              `peer ${p.nodeName}: no route to ${subnet}: host-gw needs ${via} on the same L2 network as ${underlayIface} (${onLink.length ? "on-link prefixes: " + shown.join(", ") : `it has no IPv${family} prefix`}); use vxlan for routed underlays`,
            );
            continue;
          }
          routes.push({ dst: subnet, gateway: via, dev: underlayIface });
        }
      }
      programPeers(nl, podNetworks(deps), { routes }, result);
      problemLog.update(result.problems);
      return result;
    },
    close() {},
  };
}
