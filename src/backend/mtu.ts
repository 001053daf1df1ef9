/**
 * The pod MTU per backend: what the backend's device gets and what subnet.env tells CNI.
 * One formula, used by the backends and by the agent (which needs it before the backend
 * exists, for the status API).
 */
import type { BackendConf } from "../net-conf.ts";

/** Bytes VXLAN adds over IPv4: outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const VXLAN_OVERHEAD = 50;
/** Bytes the udp encapsulation adds: outer IPv4 20 + UDP 8. */
export const UDP_OVERHEAD = 28;
/**
 * Bytes WireGuard adds, flannel's figure: outer IPv6 40 (the worst case, so one MTU fits
 * either underlay) + UDP 8 + WireGuard header 16 + authentication tag 16.
 */
export const WIREGUARD_OVERHEAD = 80;

export function podMtu(conf: BackendConf, underlayMtu: number): number {
  if (conf.type === "vxlan") return conf.mtu ?? underlayMtu - VXLAN_OVERHEAD;
  if (conf.type === "udp") return conf.mtu ?? underlayMtu - UDP_OVERHEAD;
  if (conf.type === "wireguard") return conf.mtu ?? underlayMtu - WIREGUARD_OVERHEAD;
  return underlayMtu;
}
