/**
 * The one entry point the agent uses: picks the backend for net-conf's Backend.Type.
 *
 * @example
 *   const backend = createBackend(config.net.backend, { nl, publicIp, publicIpv6, underlayIface,
 *     underlayMtu, ownSubnet: lease.subnet, network: config.net.network,
 *     ownIpv6Subnet: lease.ipv6Subnet, ipv6Network: config.net.ipv6Network,
 *     vtepMac: stableMac(nodeId), logger });
 *   const data = await backend.up();            // goes into the own lease
 *   const rec = createReconciler({ backend, peers, clock, logger, ... }); rec.start();
 */
import type { BackendConf } from "../net-conf.ts";
import type { Backend, BackendDeps } from "./backend.ts";
import { createHostGwBackend } from "./host-gw.ts";
import { createUdpBackend, type UdpSys } from "./udp.ts";
import { createVxlanBackend } from "./vxlan.ts";
import type { UdpCounters } from "./udp-pump.ts";
import { createWireguardBackend, type WireguardDeps, type WireguardStats } from "./wireguard.ts";

export type { Backend, BackendDeps, PeerLease, ApplyResult } from "./backend.ts";
export type { UdpCounters } from "./udp-pump.ts";
export type { WireguardStats } from "./wireguard.ts";

/** A backend; `counters` is present for udp (packets forwarded/dropped), `stats` for wireguard (peers, handshakes, bytes). */
export type AnyBackend = Backend & { counters?: () => UdpCounters; stats?: () => WireguardStats };

export function createBackend(
  conf: BackendConf,
  deps: BackendDeps & { udpSys?: Partial<UdpSys>; udpOffload?: boolean; wireguard?: Pick<WireguardDeps, "keys" | "sys" | "now" | "resendEndpoints"> },
): AnyBackend {
  if (typeof deps.underlayIface !== "string" || deps.underlayIface === "") throw new Error(`create ${conf.type} backend: underlayIface is required`);
  // At least one family of each: a public address, and a pod network with its subnet.
  for (const [what, pair] of [
    ["publicIp or publicIpv6", [deps.publicIp, deps.publicIpv6]],
    ["ownSubnet or ownIpv6Subnet", [deps.ownSubnet, deps.ownIpv6Subnet]],
  ] as const) {
    if (!pair.some((v) => typeof v === "string" && v !== "")) throw new Error(`create ${conf.type} backend: ${what} is required`);
  }
  if ((deps.ownSubnet === undefined) !== (deps.network === undefined)) throw new Error(`create ${conf.type} backend: ownSubnet and network go together`);
  if ((deps.ownIpv6Subnet === undefined) !== (deps.ipv6Network === undefined)) throw new Error(`create ${conf.type} backend: ownIpv6Subnet and ipv6Network go together`);
  if (!Number.isInteger(deps.underlayMtu) || deps.underlayMtu < 576) throw new Error(`create ${conf.type} backend: underlayMtu must be an integer >= 576, got ${deps.underlayMtu}`);
  switch (conf.type) {
    case "vxlan":
      return createVxlanBackend(conf, deps);
    case "host-gw":
      return createHostGwBackend(deps);
    case "udp":
      return createUdpBackend(conf, { ...deps, ...(deps.udpSys ? { sys: deps.udpSys } : {}), ...(deps.udpOffload !== undefined ? { offload: deps.udpOffload } : {}) });
    case "wireguard":
      if (!deps.wireguard) throw new Error("create wireguard backend: the node's WireGuard keys and device control are required");
      return createWireguardBackend(conf, { ...deps, ...deps.wireguard });
  }
}
