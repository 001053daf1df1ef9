/**
 * The dataplane backend contract, declarative like tailscale's router: `apply(peers)` is
 * handed the whole desired set every time, reads back what weft owns in the kernel, and
 * changes only the difference (adds before deletes). Calling it twice with the same
 * peers changes nothing the second time, which is what makes periodic reconciling safe.
 *
 * Ownership, so weft never touches what it did not make:
 *  - routes: protocol WEFT_ROUTE_PROTOCOL (87) with a destination inside Network or
 *    IPv6Network;
 *  - neighbours, FDB entries and addresses: those on weft's own devices (weft.<VNI>,
 *    weft-v6.<VNI>, weft0, weft-wg, weft-wg-v6), but for the kernel's IPv6 link-local ones.
 *
 * Families: a cluster runs IPv4 pods, IPv6 pods or both (the subnets and networks given
 * below); a node has an IPv4 underlay address, an IPv6 one or both. Each backend says
 * which underlay carries which pod family to which peer.
 */
import type { BackendType } from "../net-conf.ts";
import type { Logger } from "../log.ts";
import type { Netlink } from "../sys/netlink.ts";
import type { BackendData } from "../lease/types.ts";

/** One remote node as the backend needs it, taken from its (valid, unexpired) lease. */
export interface PeerLease {
  nodeName: string;
  /** IPv4 subnet, canonical CIDR, e.g. "10.244.2.0/24" (absent: none, or IPv4 pods not run). */
  subnet?: string;
  /** IPv6 subnet, canonical CIDR, e.g. "fd00:10:244:2::/64". */
  ipv6Subnet?: string;
  /** Underlay addresses: next hop for host-gw, remote VTEP for vxlan, UDP target for udp (at least one). */
  publicIp?: string;
  publicIpv6?: string;
  /** vxlan only: the peer's VTEP MAC from its lease. */
  vtepMac?: string;
  /** wireguard only: the peer's public key from its lease (base64). */
  publicKey?: string;
}

/** What one apply did; `changes === 0` means the kernel already matched. */
export interface ApplyResult {
  /** Kernel mutations made (device, address, route, neighbour, FDB). */
  changes: number;
  /** Operations that failed this time; the reconciler retries them. */
  errors: string[];
  /** Conditions an operator must fix, e.g. a host-gw peer that is not on-link. Shown in status. */
  problems: string[];
}

export interface Backend {
  readonly type: BackendType;
  /** weft's own device ("weft.1", "weft0"), or undefined for host-gw. */
  readonly device: string | undefined;
  /** MTU pods should use (written to subnet.env as FLANNEL_MTU). */
  mtu(): number;
  /**
   * Creates or adopts weft's device and its lease address and starts any packet loop.
   * Returns what goes into the own lease (vxlan: the VTEP MAC). Safe to call again.
   */
  up(): Promise<BackendData>;
  /**
   * Makes the kernel match `peers` (own subnet is skipped if present) and recreates a
   * device someone deleted. Synchronous; throws only when nothing can be programmed
   * (e.g. the device cannot be created), otherwise reports per-operation errors.
   */
  apply(peers: PeerLease[]): ApplyResult;
  /** Stops loops and releases handles; leaves the dataplane in place so pods keep working across restarts. */
  close(): void;
}

/** Dependencies every backend gets; one options object, as the agent has them. */
export interface BackendDeps {
  nl: Netlink;
  /** This node's underlay addresses, IPv4 and/or IPv6 (at least one). */
  publicIp?: string;
  publicIpv6?: string;
  /** The underlay interface holding them. */
  underlayIface: string;
  underlayMtu: number;
  /** IPv4 pods: this node's leased subnet and the cluster pod network (net-conf Network). */
  ownSubnet?: string;
  network?: string;
  /** IPv6 pods: this node's leased IPv6 subnet and IPv6Network. */
  ownIpv6Subnet?: string;
  ipv6Network?: string;
  /** vxlan: the stable VTEP MAC (see stableMac); a random one is used without it. */
  vtepMac?: string;
  /**
   * Sets a kernel parameter in the node's namespace (the agent's host port), sysctl(8)
   * style: `net.ipv6.conf.weft/1.accept_ra` for device weft.1. Without it none is set.
   */
  sysctl?: (name: string, value: number) => void;
  logger: Logger;
}

export const emptyResult = (): ApplyResult => ({ changes: 0, errors: [], problems: [] });
