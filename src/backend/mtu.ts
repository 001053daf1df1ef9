/**
 * The pod MTU per backend: what the backend's device gets and what subnet.env tells CNI.
 * One formula, used by the backends and by the agent (which needs it before the backend
 * exists, for the status API). A node with an IPv6 underlay address may send pods'
 * packets over IPv6, whose header is 20 bytes longer: pods get the smaller MTU, since one
 * pod interface serves every peer.
 */
import type { BackendConf } from "../net-conf.ts";

/** Bytes VXLAN adds over IPv4: outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const VXLAN_OVERHEAD = 50;
/** Bytes VXLAN adds over IPv6: outer IPv6 40 + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const VXLAN_V6_OVERHEAD = 70;
/** Bytes the udp encapsulation adds: outer IPv4 20 + UDP 8. */
export const UDP_OVERHEAD = 28;
/** Bytes the udp encapsulation adds over IPv6: outer IPv6 40 + UDP 8. */
export const UDP_V6_OVERHEAD = 48;
/**
 * Bytes WireGuard adds, flannel's figure: outer IPv6 40 (the worst case, so one MTU fits
 * either underlay) + UDP 8 + WireGuard header 16 + authentication tag 16.
 */
export const WIREGUARD_OVERHEAD = 80;

/** `ipv6Underlay`: the node has an IPv6 underlay address (it runs IPv6 pods and has one). */
export function podMtu(conf: BackendConf, underlayMtu: number, { ipv6Underlay = false }: { ipv6Underlay?: boolean } = {}): number {
  if (conf.type === "vxlan") return conf.mtu ?? underlayMtu - (ipv6Underlay ? VXLAN_V6_OVERHEAD : VXLAN_OVERHEAD);
  if (conf.type === "udp") return conf.mtu ?? underlayMtu - (ipv6Underlay ? UDP_V6_OVERHEAD : UDP_OVERHEAD);
  if (conf.type === "wireguard") return conf.mtu ?? underlayMtu - WIREGUARD_OVERHEAD;
  return underlayMtu;
}
