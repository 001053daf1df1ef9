/**
 * The dataplane port: every kernel change weft makes goes through this interface.
 * The real implementation (src/sys/libnl.ts) calls libnl through bun:ffi; tests of the
 * backends use a recorder (test/fakes/netlink.ts) that logs operations as text.
 *
 * Contract: every method is synchronous (netlink round trip with kernel ack) and throws
 * an Error whose message names the operation and the object, then libnl's text, e.g.
 * "add route 10.244.2.0/24 via 10.244.2.0 dev weft.1: Object exists".
 * "replace" methods are idempotent; "delete" of a missing object throws (callers that
 * reconcile decide whether that matters).
 */

/** Routes weft installs carry this rtnetlink protocol number so weft can tell them apart. */
export const WEFT_ROUTE_PROTOCOL = 0x57; // 87, unassigned in /etc/iproute2/rt_protos

/**
 * The metric a route added without one gets: 0 for IPv4, 1024 for IPv6 (the kernel's
 * IP6_RT_PRIO_USER). weft's routes have it, so it is also the metric of the routes a
 * replace of one of them would take over.
 */
export const defaultMetric = (dst: string): number => (dst.includes(":") ? 1024 : 0);

export interface LinkInfo {
  index: number;
  name: string;
  /** rtnl kind: "bridge", "vxlan", "veth", "tun", or undefined for plain devices. */
  kind?: string;
  mtu: number;
  /** Hardware address, lowercase "aa:bb:cc:dd:ee:ff", if the link has one. */
  mac?: string;
  up: boolean;
  /** ifindex of the master (bridge) device, if enslaved. */
  master?: number;
  /**
   * VXLAN parameters as the kernel reports them, only for kind "vxlan" (and only when
   * the implementation can read VNI and port). `local` is absent when the device has no
   * local address; `learning` when the kernel did not say.
   */
  vxlan?: { vni: number; local?: string; port: number; learning?: boolean };
}

export interface VxlanSpec {
  name: string;
  vni: number;
  /** Local VTEP address (the node's public IP): IPv4, or IPv6 for an IPv6 VXLAN. */
  local: string;
  /** UDP destination port, e.g. 8472. */
  port: number;
  mtu: number;
  /** Fixed MAC so peers' FDB/ARP entries survive agent restarts. */
  mac?: string;
  /** Underlay device index the tunnel is bound to (optional). */
  underlayIndex?: number;
}

/** A veth pair whose peer is created directly inside another network namespace. */
export interface VethSpec {
  /** Host-side name. */
  name: string;
  /** Name of the peer inside the target namespace (unique there, not here). */
  peer: string;
  /** Open nsfs descriptor of the namespace the peer is created in. */
  peerNetnsFd: number;
  /** MTU of both ends. */
  mtu: number;
  /** Bridge the host end is enslaved to. */
  master?: string;
}

export interface AddressSpec {
  dev: string;
  /** "10.244.3.0/32", "10.244.3.1/24", "fd00:10:244:3::1/64". IPv6 addresses are added without duplicate address detection (weft's are unique by construction). */
  cidr: string;
  /** IPv6: no prefix route with the address (weft installs its own route instead). */
  noPrefixRoute?: boolean;
}

export interface RouteSpec {
  /** Destination prefix, e.g. "10.244.2.0/24". */
  dst: string;
  gateway?: string;
  dev?: string;
  onlink?: boolean;
  /** Defaults to WEFT_ROUTE_PROTOCOL on replace. */
  protocol?: number;
}

export interface RouteInfo extends RouteSpec {
  dev?: string;
  protocol: number;
  table: number;
  /** rtnetlink route type (RTN_BLACKHOLE 6, RTN_UNREACHABLE 7, ...); absent for unicast. */
  type?: number;
  /** Metric (RTA_PRIORITY); absent for 0, the metric of every route weft installs. */
  priority?: number;
}

export interface NeighSpec {
  dev: string;
  /** IPv4 (ARP) or IPv6 (NDP) address, e.g. "10.244.2.0", "fd00:10:244:2::". */
  ip: string;
  mac: string;
}

export interface FdbSpec {
  dev: string;
  mac: string;
  /** Remote VTEP (peer's public IP): IPv4 on an IPv4 VXLAN, IPv6 on an IPv6 one. */
  dst: string;
}

export interface Netlink {
  // links
  createBridge(name: string, opts?: { mtu?: number; mac?: string }): LinkInfo;
  createVxlan(spec: VxlanSpec): LinkInfo;
  getLink(name: string): LinkInfo | undefined;
  listLinks(): LinkInfo[];
  setLinkUp(name: string): void;
  setMtu(name: string, mtu: number): void;
  deleteLink(name: string): void;
  // addresses
  addAddress(a: AddressSpec): void;
  deleteAddress(a: AddressSpec): void;
  /** IPv4 and IPv6 addresses as "a.b.c.d/len" / "x::y/len", with the device name (IPv4 first). */
  listAddresses(dev?: string): AddressSpec[];
  // routes (main table, IPv4 and IPv6)
  /**
   * NLM_F_CREATE|NLM_F_REPLACE: replaces whatever main-table route has the same
   * destination and metric 0, whoever made it; callers check for foreign routes first.
   */
  replaceRoute(r: RouteSpec): void;
  deleteRoute(r: RouteSpec): void;
  /**
   * Main-table routes of both families (IPv4 first); unicast only unless `anyType`
   * (blackhole, unreachable, ... too). IPv6 routes carry their metric (1024 for routes
   * added without one, the kernel's default).
   */
  listRoutes(filter?: { protocol?: number; dev?: string; anyType?: boolean }): RouteInfo[];
  // ARP and NDP neighbours (permanent)
  replaceNeighbor(n: NeighSpec): void;
  deleteNeighbor(n: Omit<NeighSpec, "mac">): void;
  listNeighbors(dev: string): NeighSpec[];
  // bridge FDB entries on a VXLAN device ("self permanent")
  /**
   * NLM_F_CREATE|NLM_F_REPLACE: creates the MAC's entry, or points its first destination
   * at `dst`. Never adds a second destination (the kernel sends to every destination of
   * a MAC); the caller deletes any others it finds.
   */
  replaceFdb(f: FdbSpec): void;
  deleteFdb(f: FdbSpec): void;
  listFdb(dev: string): FdbSpec[];
  /** Releases the netlink socket. */
  close(): void;
}
