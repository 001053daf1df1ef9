/**
 * Raw dlopen symbol tables for libnl-3 and libnl-route-3 (Debian package names
 * libnl-3-200, libnl-route-3-200). Only signatures: the safe wrapper is
 * src/sys/libnl.ts. Versioned sonames are used because the unversioned .so links exist
 * only with the -dev packages.
 *
 * Every pointer argument/return is `ptr`; object ownership follows libnl's rules
 * (`*_alloc` and `*_get_kernel` give a reference you must put, `*_get_*` on an object
 * borrows). `dlopen` fails as a whole when one symbol is missing, so symbols that older
 * libnl releases may lack live in {@link LIBNL_ROUTE_OPTIONAL} and are bound one by one.
 * The libraries are opened lazily on first use so importing this file never fails.
 */
import { dlopen, type FFIFunction } from "bun:ffi";

export const LIBNL_PATH = process.env.WEFT_LIBNL ?? "libnl-3.so.200";
export const LIBNL_ROUTE_PATH = process.env.WEFT_LIBNL_ROUTE ?? "libnl-route-3.so.200";


export const LIBNL_SYMBOLS = {
  nl_socket_alloc: { args: [], returns: "ptr" },
  nl_socket_free: { args: ["ptr"], returns: "void" },
  nl_connect: { args: ["ptr", "i32"], returns: "i32" },
  nl_close: { args: ["ptr"], returns: "void" },
  nl_geterror: { args: ["i32"], returns: "ptr" },
  nl_addr_build: { args: ["i32", "ptr", "u64"], returns: "ptr" },
  nl_addr_put: { args: ["ptr"], returns: "void" },
  nl_addr_set_prefixlen: { args: ["ptr", "i32"], returns: "void" },
  nl_addr_get_prefixlen: { args: ["ptr"], returns: "u32" },
  nl_addr_get_family: { args: ["ptr"], returns: "i32" },
  nl_addr_get_len: { args: ["ptr"], returns: "u32" },
  nl_addr_get_binary_addr: { args: ["ptr"], returns: "ptr" },
  nl_cache_get_first: { args: ["ptr"], returns: "ptr" },
  nl_cache_get_next: { args: ["ptr"], returns: "ptr" },
  nl_cache_free: { args: ["ptr"], returns: "void" },
  nl_object_get_refcnt: { args: ["ptr"], returns: "i32" },
} as const;

export const LIBNL_ROUTE_SYMBOLS = {
  // links
  rtnl_link_alloc: { args: [], returns: "ptr" },
  rtnl_link_bridge_alloc: { args: [], returns: "ptr" },
  rtnl_link_vxlan_alloc: { args: [], returns: "ptr" },
  rtnl_link_put: { args: ["ptr"], returns: "void" },
  rtnl_link_set_name: { args: ["ptr", "ptr"], returns: "void" },
  rtnl_link_get_name: { args: ["ptr"], returns: "ptr" },
  rtnl_link_set_flags: { args: ["ptr", "u32"], returns: "void" },
  rtnl_link_get_flags: { args: ["ptr"], returns: "u32" },
  rtnl_link_set_mtu: { args: ["ptr", "u32"], returns: "void" },
  rtnl_link_get_mtu: { args: ["ptr"], returns: "u32" },
  rtnl_link_set_addr: { args: ["ptr", "ptr"], returns: "void" },
  rtnl_link_get_addr: { args: ["ptr"], returns: "ptr" },
  rtnl_link_get_ifindex: { args: ["ptr"], returns: "i32" },
  rtnl_link_get_master: { args: ["ptr"], returns: "i32" },
  rtnl_link_get_type: { args: ["ptr"], returns: "ptr" },
  rtnl_link_add: { args: ["ptr", "ptr", "i32"], returns: "i32" },
  rtnl_link_change: { args: ["ptr", "ptr", "ptr", "i32"], returns: "i32" },
  rtnl_link_delete: { args: ["ptr", "ptr"], returns: "i32" },
  rtnl_link_get_kernel: { args: ["ptr", "i32", "ptr", "ptr"], returns: "i32" },
  rtnl_link_alloc_cache: { args: ["ptr", "i32", "ptr"], returns: "i32" },
  rtnl_link_set_master: { args: ["ptr", "i32"], returns: "void" },
  // Moves the link into the network namespace of an open nsfs descriptor when it is created.
  rtnl_link_set_ns_fd: { args: ["ptr", "i32"], returns: "void" },
  // veth: get_peer asserts the link type (only call it on an object from veth_alloc); in
  // libnl 3.7 it returns the peer with a new reference (nl_object_get_refcnt shows 2).
  rtnl_link_veth_alloc: { args: [], returns: "ptr" },
  rtnl_link_veth_get_peer: { args: ["ptr"], returns: "ptr" },
  // VXLAN setters: only ever call these on an object from rtnl_link_vxlan_alloc, libnl
  // asserts the link type and aborts the process otherwise.
  rtnl_link_vxlan_set_id: { args: ["ptr", "u32"], returns: "i32" },
  rtnl_link_vxlan_set_local: { args: ["ptr", "ptr"], returns: "i32" },
  rtnl_link_vxlan_set_learning: { args: ["ptr", "u8"], returns: "i32" },
  rtnl_link_vxlan_set_link: { args: ["ptr", "u32"], returns: "i32" },
  // VXLAN getters: the same assert applies, so only call them on a link whose type is
  // "vxlan" (libnl then has attached its vxlan info). get_id fills a uint32_t, get_local
  // hands back a new nl_addr the caller must put, get_learning returns the value.
  rtnl_link_vxlan_get_id: { args: ["ptr", "ptr"], returns: "i32" },
  rtnl_link_vxlan_get_local: { args: ["ptr", "ptr"], returns: "i32" },
  rtnl_link_vxlan_get_learning: { args: ["ptr"], returns: "i32" },
  // addresses
  rtnl_addr_alloc: { args: [], returns: "ptr" },
  rtnl_addr_put: { args: ["ptr"], returns: "void" },
  rtnl_addr_set_ifindex: { args: ["ptr", "i32"], returns: "void" },
  rtnl_addr_get_ifindex: { args: ["ptr"], returns: "i32" },
  rtnl_addr_set_local: { args: ["ptr", "ptr"], returns: "i32" },
  rtnl_addr_get_local: { args: ["ptr"], returns: "ptr" },
  rtnl_addr_get_family: { args: ["ptr"], returns: "i32" },
  rtnl_addr_get_prefixlen: { args: ["ptr"], returns: "i32" },
  // IFA_F_* flags; those above 0xff go out as IFA_FLAGS (libnl >= 3.2.26).
  rtnl_addr_set_flags: { args: ["ptr", "u32"], returns: "void" },
  rtnl_addr_add: { args: ["ptr", "ptr", "i32"], returns: "i32" },
  rtnl_addr_delete: { args: ["ptr", "ptr", "i32"], returns: "i32" },
  rtnl_addr_alloc_cache: { args: ["ptr", "ptr"], returns: "i32" },
  // routes
  rtnl_route_alloc: { args: [], returns: "ptr" },
  rtnl_route_put: { args: ["ptr"], returns: "void" },
  rtnl_route_set_dst: { args: ["ptr", "ptr"], returns: "i32" },
  rtnl_route_get_dst: { args: ["ptr"], returns: "ptr" },
  rtnl_route_set_table: { args: ["ptr", "u32"], returns: "void" },
  rtnl_route_get_table: { args: ["ptr"], returns: "u32" },
  rtnl_route_set_protocol: { args: ["ptr", "u8"], returns: "void" },
  rtnl_route_get_protocol: { args: ["ptr"], returns: "u8" },
  rtnl_route_set_scope: { args: ["ptr", "u8"], returns: "void" },
  rtnl_route_get_family: { args: ["ptr"], returns: "u8" },
  rtnl_route_get_type: { args: ["ptr"], returns: "u8" },
  rtnl_route_get_priority: { args: ["ptr"], returns: "u32" },
  rtnl_route_get_nnexthops: { args: ["ptr"], returns: "i32" },
  rtnl_route_nexthop_n: { args: ["ptr", "i32"], returns: "ptr" },
  rtnl_route_add_nexthop: { args: ["ptr", "ptr"], returns: "void" },
  rtnl_route_add: { args: ["ptr", "ptr", "i32"], returns: "i32" },
  rtnl_route_delete: { args: ["ptr", "ptr", "i32"], returns: "i32" },
  rtnl_route_alloc_cache: { args: ["ptr", "i32", "i32", "ptr"], returns: "i32" },
  rtnl_route_nh_alloc: { args: [], returns: "ptr" },
  rtnl_route_nh_free: { args: ["ptr"], returns: "void" },
  rtnl_route_nh_set_ifindex: { args: ["ptr", "i32"], returns: "void" },
  rtnl_route_nh_get_ifindex: { args: ["ptr"], returns: "i32" },
  rtnl_route_nh_set_gateway: { args: ["ptr", "ptr"], returns: "void" },
  rtnl_route_nh_get_gateway: { args: ["ptr"], returns: "ptr" },
  rtnl_route_nh_set_flags: { args: ["ptr", "u32"], returns: "void" },
  rtnl_route_nh_get_flags: { args: ["ptr"], returns: "u32" },
  // neighbours (ARP and bridge FDB)
  rtnl_neigh_alloc: { args: [], returns: "ptr" },
  rtnl_neigh_put: { args: ["ptr"], returns: "void" },
  rtnl_neigh_set_ifindex: { args: ["ptr", "i32"], returns: "void" },
  rtnl_neigh_get_ifindex: { args: ["ptr"], returns: "i32" },
  rtnl_neigh_set_dst: { args: ["ptr", "ptr"], returns: "i32" },
  rtnl_neigh_get_dst: { args: ["ptr"], returns: "ptr" },
  rtnl_neigh_set_lladdr: { args: ["ptr", "ptr"], returns: "void" },
  rtnl_neigh_get_lladdr: { args: ["ptr"], returns: "ptr" },
  rtnl_neigh_set_state: { args: ["ptr", "i32"], returns: "void" },
  rtnl_neigh_get_state: { args: ["ptr"], returns: "i32" },
  rtnl_neigh_set_flags: { args: ["ptr", "u32"], returns: "void" },
  rtnl_neigh_get_flags: { args: ["ptr"], returns: "u32" },
  rtnl_neigh_set_family: { args: ["ptr", "i32"], returns: "void" },
  rtnl_neigh_get_family: { args: ["ptr"], returns: "i32" },
  rtnl_neigh_add: { args: ["ptr", "ptr", "i32"], returns: "i32" },
  rtnl_neigh_delete: { args: ["ptr", "ptr", "i32"], returns: "i32" },
  rtnl_neigh_alloc_cache: { args: ["ptr", "ptr"], returns: "i32" },
} as const;

/**
 * Symbols bound individually; a missing one is `undefined` and the wrapper reports
 * which feature is unavailable instead of failing to load at all.
 * rtnl_link_vxlan_set_port/get_port arrived in libnl 3.2.29; older hosts can still run
 * host-gw (and read VXLAN links without the port).
 */
export const LIBNL_ROUTE_OPTIONAL = {
  rtnl_link_vxlan_set_port: { args: ["ptr", "u32"], returns: "i32" },
  // Same release as set_port; fills a uint32_t in host byte order (libnl does the ntohs).
  rtnl_link_vxlan_get_port: { args: ["ptr", "ptr"], returns: "i32" },
  // Checks exactly what the vxlan getters assert (the attached type ops are vxlan's).
  rtnl_link_is_vxlan: { args: ["ptr"], returns: "i32" },
} as const;

/**
 * bun-types widen pointer results to `Pointer | bigint | null`; Bun returns pointers as
 * numbers, so the bigint arm is dropped to keep call sites free of casts.
 */
type Narrow<F> = F extends (...a: infer A) => infer R ? (...a: A) => Exclude<R, bigint> : F;
export type Narrowed<S> = { [K in keyof S]: Narrow<S[K]> };
type Loaded<S extends Record<string, FFIFunction>> = Narrowed<ReturnType<typeof dlopen<S>>["symbols"]>;
export type LibnlSymbols = Loaded<typeof LIBNL_SYMBOLS>;
export type LibnlRouteSymbols = Loaded<typeof LIBNL_ROUTE_SYMBOLS>;
export type LibnlRouteOptional = Partial<Loaded<typeof LIBNL_ROUTE_OPTIONAL>>;

export interface LibnlLibraries {
  nl: LibnlSymbols;
  route: LibnlRouteSymbols;
  optional: LibnlRouteOptional;
}

let loaded: LibnlLibraries | undefined;

/** Opens both libraries once per process; throws naming the library that failed. */
export function loadLibnl(): LibnlLibraries {
  if (loaded) return loaded;
  const open = <S extends Record<string, FFIFunction>>(path: string, syms: S) => {
    try {
      return dlopen(path, syms).symbols as unknown as Loaded<S>;
    } catch (e) {
      throw new Error(`load ${path}: ${(e as Error).message} (install libnl-3-200 and libnl-route-3-200)`, { cause: e });
    }
  };
  const nl = open(LIBNL_PATH, LIBNL_SYMBOLS);
  const route = open(LIBNL_ROUTE_PATH, LIBNL_ROUTE_SYMBOLS);
  const optional: Record<string, unknown> = {};
  for (const [name, def] of Object.entries(LIBNL_ROUTE_OPTIONAL)) {
    try {
      optional[name] = dlopen(LIBNL_ROUTE_PATH, { [name]: def }).symbols[name];
    } catch {
      // absent in this libnl build; callers check for undefined
    }
  }
  loaded = { nl, route, optional: optional as LibnlRouteOptional };
  return loaded;
}
