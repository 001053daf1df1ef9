/**
 * The real dataplane: {@link Netlink} over libnl-3/libnl-route-3 through bun:ffi.
 *
 * Design: one netlink socket per instance, every call is a synchronous request with the
 * kernel's ack (auto-ack stays on: without it duplicate adds "succeed"). Every libnl
 * object is allocated and released inside one method (a {@link Scope} puts them in
 * `finally`), so no pointer escapes to callers. libnl is built with asserts on Debian: a
 * VXLAN setter called on a non-VXLAN link aborts the process, so type-specific setters are
 * only called on objects this file just allocated with the matching `*_alloc`.
 * Listing uses a cache walked with nl_cache_get_first/next (no JS callback needed),
 * except the FDB, which is dumped over a raw socket (see rtnl-raw.ts).
 *
 * Longer than most files on purpose: it is the one class implementing the Netlink port,
 * one method per operation, each a short sequence of libnl calls around its own objects.
 * Pure checks and text live in libnl-codec.ts, the symbol tables in ffi/libnl.ts.
 */
import { toArrayBuffer, type Pointer } from "bun:ffi";
import {
  AF_BRIDGE, AF_INET, AF_INET6, AF_LLC, AF_UNSPEC, IFA_F_NODAD, IFA_F_NOPREFIXROUTE, IFF_UP, NETLINK_ROUTE, NLE_NODEV,
  NLE_NOMEM, NLE_OBJ_NOTFOUND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NTF_SELF, NUD_PERMANENT, RT_TABLE_MAIN,
  RTN_UNICAST, RTNH_F_ONLINK, RTPROT_UNSPEC, RT_SCOPE_LINK, RT_SCOPE_UNIVERSE,
} from "../../ffi/constants.ts";
import { cstr, loadLibc, readCString } from "../../ffi/libc.ts";
import { loadLibnl, type LibnlLibraries } from "../../ffi/libnl.ts";
import { dumpFdb } from "./rtnl-raw.ts";
import {
  invalidIfName, invalidInt, ipBytes, ipCidr, NetlinkError, routeText,
} from "./libnl-codec.ts";
import { contains, type Family, parseCidr } from "../net/cidr.ts";
import { formatIpBytes } from "../net/ipv4.ts";
import { formatMac, macBytes } from "../net/mac.ts";
import {
  WEFT_ROUTE_PROTOCOL, type AddressSpec, type FdbSpec, type LinkInfo, type NeighSpec, type Netlink, type RouteInfo,
  type RouteSpec, type VethSpec, type VxlanSpec,
} from "./netlink.ts";

export { NetlinkError } from "./libnl-codec.ts";

/** The address family constant of a family. */
const afOf = (family: Family): number => (family === 4 ? AF_INET : AF_INET6);

/** IPv6 neighbours the kernel keeps for itself (link-local, multicast). */
const KERNEL_NDP = [parseCidr("fe80::/10"), parseCidr("ff00::/8")];

/** Releases collected libnl references in reverse order. */
class Scope {
  private readonly releases: (() => void)[] = [];
  defer(release: () => void): void {
    this.releases.push(release);
  }
  close(): void {
    for (let i = this.releases.length - 1; i >= 0; i--) this.releases[i]!();
    this.releases.length = 0;
  }
}

/** Opens a netlink route socket; throws naming the step that failed. */
export function openNetlink(): LibnlNetlink {
  return new LibnlNetlink(loadLibnl());
}

export class LibnlNetlink implements Netlink {
  private sk: Pointer | null;
  private readonly nl: LibnlLibraries["nl"];
  private readonly rt: LibnlLibraries["route"];
  private readonly opt: LibnlLibraries["optional"];

  constructor(libs: LibnlLibraries) {
    this.nl = libs.nl;
    this.rt = libs.route;
    this.opt = libs.optional;
    const sk = this.nl.nl_socket_alloc();
    if (!sk) throw new NetlinkError("open netlink socket", "Out of memory", NLE_NOMEM);
    const rc = this.nl.nl_connect(sk, NETLINK_ROUTE);
    if (rc < 0) {
      this.nl.nl_socket_free(sk);
      throw new NetlinkError("open netlink socket", this.errText(rc), -rc);
    }
    this.sk = sk;
  }

  close(): void {
    if (this.sk) this.nl.nl_socket_free(this.sk);
    this.sk = null;
  }

  // ------------------------------------------------------------------ links

  createBridge(name: string, opts: { mtu?: number; mac?: string } = {}): LinkInfo {
    const op = `create bridge ${name}`;
    this.checkName(op, name);
    if (opts.mtu !== undefined) this.checkInt(op, "mtu", opts.mtu, 68, 65535);
    const mac = opts.mac !== undefined ? this.parse(op, () => macBytes(opts.mac!)) : undefined;
    this.run(op, (s) => {
      const link = this.rt.rtnl_link_bridge_alloc();
      if (!link) throw new NetlinkError(op, "Out of memory", NLE_NOMEM);
      s.defer(() => this.rt.rtnl_link_put(link));
      const nameBuf = cstr(name);
      this.rt.rtnl_link_set_name(link, nameBuf);
      this.rt.rtnl_link_set_flags(link, IFF_UP);
      if (opts.mtu !== undefined) this.rt.rtnl_link_set_mtu(link, opts.mtu);
      if (mac) this.rt.rtnl_link_set_addr(link, this.addr(s, op, AF_LLC, mac));
      this.check(op, this.rt.rtnl_link_add(this.sock(op), link, NLM_F_CREATE | NLM_F_EXCL));
    });
    return this.mustGetLink(op, name);
  }

  createVxlan(spec: VxlanSpec): LinkInfo {
    const op = `create vxlan ${spec.name} (vni ${spec.vni}, local ${spec.local}, port ${spec.port})`;
    this.checkName(op, spec.name);
    this.checkInt(op, "vni", spec.vni, 0, 0xffffff);
    this.checkInt(op, "port", spec.port, 1, 65535);
    this.checkInt(op, "mtu", spec.mtu, 68, 65535);
    if (spec.underlayIndex !== undefined) this.checkInt(op, "underlayIndex", spec.underlayIndex, 1, 0x7fffffff);
    const local = this.parse(op, () => ipBytes(spec.local));
    const mac = spec.mac !== undefined ? this.parse(op, () => macBytes(spec.mac!)) : undefined;
    const setPort = this.opt.rtnl_link_vxlan_set_port;
    if (!setPort) throw new NetlinkError(op, "this libnl lacks rtnl_link_vxlan_set_port (need libnl >= 3.2.29)");
    this.run(op, (s) => {
      // Allocated as VXLAN right here: the vxlan setters below are safe on it.
      const link = this.rt.rtnl_link_vxlan_alloc();
      if (!link) throw new NetlinkError(op, "Out of memory", NLE_NOMEM);
      s.defer(() => this.rt.rtnl_link_put(link));
      const nameBuf = cstr(spec.name);
      this.rt.rtnl_link_set_name(link, nameBuf);
      this.rt.rtnl_link_set_flags(link, IFF_UP);
      this.rt.rtnl_link_set_mtu(link, spec.mtu);
      if (mac) this.rt.rtnl_link_set_addr(link, this.addr(s, op, AF_LLC, mac));
      this.check(op, this.rt.rtnl_link_vxlan_set_id(link, spec.vni));
      // An IPv6 local makes an IPv6 VXLAN (IFLA_VXLAN_LOCAL6): the underlay of weft-v6.<VNI>.
      this.check(op, this.rt.rtnl_link_vxlan_set_local(link, this.addr(s, op, afOf(local.family), local.bytes)));
      this.check(op, setPort(link, spec.port));
      this.check(op, this.rt.rtnl_link_vxlan_set_learning(link, 0));
      if (spec.underlayIndex !== undefined) this.check(op, this.rt.rtnl_link_vxlan_set_link(link, spec.underlayIndex));
      this.check(op, this.rt.rtnl_link_add(this.sock(op), link, NLM_F_CREATE | NLM_F_EXCL));
    });
    return this.mustGetLink(op, spec.name);
  }

  getLink(name: string): LinkInfo | undefined {
    const op = `get link ${name}`;
    this.checkName(op, name);
    return this.run(op, (s) => {
      const link = this.kernelLink(s, op, name, true);
      return link ? this.linkInfo(link) : undefined;
    });
  }

  listLinks(): LinkInfo[] {
    return this.run("list links", (s) => {
      const out: LinkInfo[] = [];
      for (const obj of this.cache(s, "list links", (p) => this.rt.rtnl_link_alloc_cache(this.sock("list links"), AF_UNSPEC, p))) {
        out.push(this.linkInfo(obj));
      }
      return out;
    });
  }

  setLinkUp(name: string): void {
    this.changeLink(`set link ${name} up`, name, (change) => this.rt.rtnl_link_set_flags(change, IFF_UP));
  }

  setMtu(name: string, mtu: number): void {
    const op = `set mtu ${mtu} on link ${name}`;
    this.checkInt(op, "mtu", mtu, 68, 65535);
    this.changeLink(op, name, (change) => this.rt.rtnl_link_set_mtu(change, mtu));
  }

  deleteLink(name: string): void {
    const op = `delete link ${name}`;
    this.checkName(op, name);
    this.run(op, (s) => {
      const link = this.rt.rtnl_link_alloc();
      if (!link) throw new NetlinkError(op, "Out of memory", NLE_NOMEM);
      s.defer(() => this.rt.rtnl_link_put(link));
      const nameBuf = cstr(name);
      this.rt.rtnl_link_set_name(link, nameBuf);
      this.check(op, this.rt.rtnl_link_delete(this.sock(op), link));
    });
  }

  /**
   * Creates a veth pair in one request: the host end here (up, enslaved to `master` if
   * given), the peer created down inside the namespace of `peerNetnsFd` under its own name,
   * so a name taken here never collides with it. Not part of the {@link Netlink} port:
   * only the CNI plugin attaches pods.
   */
  createVeth(spec: VethSpec): LinkInfo {
    const op = `create veth ${spec.name} peer ${spec.peer} (netns fd ${spec.peerNetnsFd})`;
    this.checkName(op, spec.name);
    this.checkName(op, spec.peer);
    this.checkInt(op, "mtu", spec.mtu, 68, 65535);
    this.checkInt(op, "peerNetnsFd", spec.peerNetnsFd, 0, 0x7fffffff);
    this.run(op, (s) => {
      const master = spec.master !== undefined ? this.ifindex(s, op, spec.master) : undefined;
      // Allocated as veth right here: get_peer's type assert holds.
      const link = this.rt.rtnl_link_veth_alloc();
      if (!link) throw new NetlinkError(op, "Out of memory", NLE_NOMEM);
      s.defer(() => this.rt.rtnl_link_put(link));
      const peer = this.rt.rtnl_link_veth_get_peer(link);
      if (!peer) throw new NetlinkError(op, "veth has no peer object");
      // libnl 3.7 hands the peer out with a reference of its own; one that lends it
      // (refcount 1, held by the link) must not be put.
      if (this.nl.nl_object_get_refcnt(peer) > 1) s.defer(() => this.rt.rtnl_link_put(peer));
      const nameBuf = cstr(spec.name);
      const peerBuf = cstr(spec.peer);
      this.rt.rtnl_link_set_name(link, nameBuf);
      this.rt.rtnl_link_set_mtu(link, spec.mtu);
      this.rt.rtnl_link_set_flags(link, IFF_UP);
      if (master !== undefined) this.rt.rtnl_link_set_master(link, master);
      this.rt.rtnl_link_set_name(peer, peerBuf);
      this.rt.rtnl_link_set_mtu(peer, spec.mtu);
      this.rt.rtnl_link_set_ns_fd(peer, spec.peerNetnsFd);
      this.check(op, this.rt.rtnl_link_add(this.sock(op), link, NLM_F_CREATE | NLM_F_EXCL));
    });
    return this.mustGetLink(op, spec.name);
  }

  /**
   * Sets a link's hardware address. On a bridge this also pins it: the kernel stops
   * taking the lowest MAC of its ports, which otherwise changes whenever a port goes and
   * leaves every pod's ARP entry for the gateway pointing at a MAC nobody answers to.
   * Not part of the {@link Netlink} port (only the CNI plugin needs it).
   */
  setLinkMac(name: string, mac: string): void {
    const op = `set address ${mac} on link ${name}`;
    const bytes = this.parse(op, () => macBytes(mac));
    this.changeLink(op, name, (change, s) => this.rt.rtnl_link_set_addr(change, this.addr(s, op, AF_LLC, bytes)));
  }

  // -------------------------------------------------------------- addresses

  addAddress(a: AddressSpec): void {
    this.changeAddress(`add address ${a.cidr} dev ${a.dev}`, a, true);
  }

  deleteAddress(a: AddressSpec): void {
    this.changeAddress(`delete address ${a.cidr} dev ${a.dev}`, a, false);
  }

  listAddresses(dev?: string): AddressSpec[] {
    const op = dev === undefined ? "list addresses" : `list addresses dev ${dev}`;
    return this.run(op, (s) => {
      const names = this.linkNames(s, op);
      const out: AddressSpec[] = [];
      const v6: AddressSpec[] = [];
      for (const obj of this.cache(s, op, (p) => this.rt.rtnl_addr_alloc_cache(this.sock(op), p))) {
        const family = this.rt.rtnl_addr_get_family(obj);
        if (family !== AF_INET && family !== AF_INET6) continue;
        const name = names.get(this.rt.rtnl_addr_get_ifindex(obj));
        if (name === undefined || (dev !== undefined && name !== dev)) continue;
        const local = this.rt.rtnl_addr_get_local(obj);
        if (!local) continue;
        const bytes = this.addrBytes(local);
        if (bytes.length !== (family === AF_INET ? 4 : 16)) continue;
        (family === AF_INET ? out : v6).push({ dev: name, cidr: `${formatIpBytes(bytes)}/${this.rt.rtnl_addr_get_prefixlen(obj)}` });
      }
      return [...out, ...v6];
    });
  }

  // ----------------------------------------------------------------- routes

  replaceRoute(r: RouteSpec): void {
    const protocol = r.protocol ?? WEFT_ROUTE_PROTOCOL;
    const op = `replace route ${routeText({ ...r, protocol })}`;
    if (r.dev === undefined && r.gateway === undefined) throw new NetlinkError(op, "a route needs a gateway or a dev");
    this.route(op, r, protocol, (sk, route) => this.rt.rtnl_route_add(sk, route, NLM_F_CREATE | NLM_F_REPLACE));
  }

  deleteRoute(r: RouteSpec): void {
    // Protocol 0 matches any protocol in the kernel's delete lookup.
    const op = `delete route ${routeText(r)}`;
    const protocol = r.protocol ?? RTPROT_UNSPEC;
    const del = (scope?: number) => (sk: Pointer, route: Pointer) => {
      if (scope !== undefined) this.rt.rtnl_route_set_scope(route, scope);
      return this.rt.rtnl_route_delete(sk, route, 0);
    };
    if (r.gateway !== undefined) return this.route(op, r, protocol, del());
    // The kernel matches any scope only for "nowhere", which libnl replaces with its
    // guess (link scope without a gateway). So try universe (gateway routes) first,
    // then link (device routes): two requests at most, no dump.
    try {
      this.route(op, r, protocol, del(RT_SCOPE_UNIVERSE));
    } catch (e) {
      if (!(e instanceof NetlinkError) || e.code !== NLE_OBJ_NOTFOUND) throw e;
      this.route(op, r, protocol, del(RT_SCOPE_LINK));
    }
  }

  listRoutes(filter: { protocol?: number; dev?: string; anyType?: boolean } = {}): RouteInfo[] {
    const op = "list routes";
    return this.run(op, (s) => {
      const names = this.linkNames(s, op);
      const out: RouteInfo[] = [];
      for (const family of [AF_INET, AF_INET6]) for (const obj of this.cache(s, op, (p) => this.rt.rtnl_route_alloc_cache(this.sock(op), family, 0, p))) {
        const table = this.rt.rtnl_route_get_table(obj);
        const type = this.rt.rtnl_route_get_type(obj);
        if (table !== RT_TABLE_MAIN || (type !== RTN_UNICAST && !filter.anyType)) continue;
        const protocol = this.rt.rtnl_route_get_protocol(obj);
        if (filter.protocol !== undefined && protocol !== filter.protocol) continue;
        const dstAddr = this.rt.rtnl_route_get_dst(obj);
        const dstBytes = dstAddr ? this.addrBytes(dstAddr) : new Uint8Array(0);
        // The kernel omits a default route's destination: an empty address of the family.
        const dst = dstBytes.length ? `${formatIpBytes(dstBytes)}/${this.nl.nl_addr_get_prefixlen(dstAddr!)}` : family === AF_INET ? "0.0.0.0/0" : "::/0";
        const info: RouteInfo = { dst, protocol, table };
        if (type !== RTN_UNICAST) info.type = type;
        const priority = this.rt.rtnl_route_get_priority(obj);
        if (priority !== 0) info.priority = priority;
        if (this.rt.rtnl_route_get_nnexthops(obj) > 0) {
          const nh = this.rt.rtnl_route_nexthop_n(obj, 0);
          if (nh) {
            const gw = this.rt.rtnl_route_nh_get_gateway(nh);
            const gwFamily = gw ? this.nl.nl_addr_get_family(gw) : AF_UNSPEC;
            if (gw && (gwFamily === AF_INET || gwFamily === AF_INET6)) info.gateway = formatIpBytes(this.addrBytes(gw));
            const name = names.get(this.rt.rtnl_route_nh_get_ifindex(nh));
            if (name !== undefined) info.dev = name;
            if (this.rt.rtnl_route_nh_get_flags(nh) & RTNH_F_ONLINK) info.onlink = true;
          }
        }
        if (filter.dev !== undefined && info.dev !== filter.dev) continue;
        out.push(info);
      }
      return out;
    });
  }

  // ------------------------------------------------------------- neighbours

  replaceNeighbor(n: NeighSpec): void {
    const op = `replace neighbor ${n.ip} lladdr ${n.mac} dev ${n.dev}`;
    const ip = this.parse(op, () => ipBytes(n.ip));
    const mac = this.parse(op, () => macBytes(n.mac));
    this.neigh(op, n.dev, (s, neigh) => {
      // The family follows the address: an ARP entry for IPv4, an NDP entry for IPv6.
      this.check(op, this.rt.rtnl_neigh_set_dst(neigh, this.addr(s, op, afOf(ip.family), ip.bytes)));
      this.rt.rtnl_neigh_set_lladdr(neigh, this.addr(s, op, AF_LLC, mac));
      this.rt.rtnl_neigh_set_state(neigh, NUD_PERMANENT);
      return (sk) => this.rt.rtnl_neigh_add(sk, neigh, NLM_F_CREATE | NLM_F_REPLACE);
    });
  }

  deleteNeighbor(n: Omit<NeighSpec, "mac">): void {
    const op = `delete neighbor ${n.ip} dev ${n.dev}`;
    const ip = this.parse(op, () => ipBytes(n.ip));
    this.neigh(op, n.dev, (s, neigh) => {
      this.check(op, this.rt.rtnl_neigh_set_dst(neigh, this.addr(s, op, afOf(ip.family), ip.bytes)));
      return (sk) => this.rt.rtnl_neigh_delete(sk, neigh, 0);
    });
  }

  listNeighbors(dev: string): NeighSpec[] {
    const op = `list neighbors dev ${dev}`;
    return this.listNeigh(op, dev, (p) => this.rt.rtnl_neigh_alloc_cache(this.sock(op), p), (ip, mac) => ({ dev, ip, mac }));
  }

  replaceFdb(f: FdbSpec): void {
    this.fdb(`replace fdb ${f.mac} dst ${f.dst} dev ${f.dev}`, f, (sk, neigh) =>
      this.rt.rtnl_neigh_add(sk, neigh, NLM_F_CREATE | NLM_F_REPLACE),
    );
  }

  deleteFdb(f: FdbSpec): void {
    const op = `delete fdb ${f.mac} dst ${f.dst} dev ${f.dev}`;
    // The kernel reports success when the MAC exists without this dst; the contract says
    // a missing object throws, so look first (FDB deletes are rare; one dump).
    const mac = this.parse(op, () => formatMac(macBytes(f.mac)));
    const dst = this.parse(op, () => formatIpBytes(ipBytes(f.dst).bytes));
    if (!this.listFdbOp(op, f.dev).some((e) => e.mac === mac && e.dst === dst)) {
      throw new NetlinkError(op, "Object not found", NLE_OBJ_NOTFOUND);
    }
    this.fdb(op, f, (sk, neigh) => this.rt.rtnl_neigh_delete(sk, neigh, 0));
  }

  listFdb(dev: string): FdbSpec[] {
    return this.listFdbOp(`list fdb dev ${dev}`, dev);
  }

  // ---------------------------------------------------------------- helpers

  private listFdbOp(op: string, dev: string): FdbSpec[] {
    // libnl's neigh cache keys bridge entries by MAC, merging remotes of one MAC; a raw
    // PF_BRIDGE dump keeps every (mac, dst) pair.
    return this.run(op, (s) => {
      const index = this.ifindex(s, op, dev);
      let entries;
      try {
        entries = dumpFdb();
      } catch (e) {
        throw new NetlinkError(op, (e as Error).message.replace(/^dump fdb: /, ""), undefined, { cause: e });
      }
      return entries.filter((e) => e.ifindex === index).map((e) => ({ dev, mac: e.mac, dst: e.dst }));
    });
  }

  private sock(op: string): Pointer {
    if (!this.sk) throw new NetlinkError(op, "netlink socket closed");
    return this.sk;
  }

  private run<T>(op: string, fn: (s: Scope) => T): T {
    this.sock(op);
    const s = new Scope();
    try {
      return fn(s);
    } finally {
      s.close();
    }
  }

  private errText(rc: number): string {
    return readCString(this.nl.nl_geterror(rc)) ?? `libnl error ${rc}`;
  }

  private check(op: string, rc: number): void {
    if (rc < 0) throw new NetlinkError(op, this.errText(rc), -rc);
  }

  private parse<T>(op: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw new NetlinkError(op, (e as Error).message, undefined, { cause: e });
    }
  }

  private checkName(op: string, name: string): void {
    const bad = invalidIfName(name);
    if (bad) throw new NetlinkError(op, bad);
  }

  private checkInt(op: string, field: string, value: number, min: number, max: number): void {
    const bad = invalidInt(field, value, min, max);
    if (bad) throw new NetlinkError(op, bad);
  }

  /** An nl_addr owned by the scope; libnl setters take their own reference or copy. */
  private addr(s: Scope, op: string, family: number, bytes: Uint8Array, prefix?: number): Pointer {
    const p = this.nl.nl_addr_build(family, bytes, bytes.length);
    if (!p) throw new NetlinkError(op, "Out of memory", NLE_NOMEM);
    s.defer(() => this.nl.nl_addr_put(p));
    if (prefix !== undefined) this.nl.nl_addr_set_prefixlen(p, prefix);
    return p;
  }

  /** Copies a borrowed nl_addr's bytes out of C memory. */
  private addrBytes(a: Pointer): Uint8Array {
    const len = this.nl.nl_addr_get_len(a);
    const bin = this.nl.nl_addr_get_binary_addr(a);
    if (len === 0 || !bin) return new Uint8Array(0);
    return new Uint8Array(toArrayBuffer(bin, 0, len)).slice();
  }

  /** A kernel link reference owned by the scope; undefined (when allowed) if it does not exist. */
  private kernelLink(s: Scope, op: string, name: string, allowMissing = false): Pointer | undefined {
    const out = new BigUint64Array(1);
    const nameBuf = cstr(name);
    const rc = this.rt.rtnl_link_get_kernel(this.sock(op), 0, nameBuf, out);
    if (rc < 0) {
      if (allowMissing && (-rc === NLE_NODEV || -rc === NLE_OBJ_NOTFOUND)) return undefined;
      throw new NetlinkError(op, this.errText(rc), -rc);
    }
    const link = Number(out[0]) as Pointer;
    s.defer(() => this.rt.rtnl_link_put(link));
    return link;
  }

  private ifindex(s: Scope, op: string, dev: string): number {
    this.checkName(op, dev);
    // An ioctl is several times cheaper than a netlink link query; on failure the
    // netlink query runs to produce libnl's error text ("No such device").
    const nameBuf = cstr(dev);
    const index = loadLibc().if_nametoindex(nameBuf);
    if (index > 0) return index;
    return this.rt.rtnl_link_get_ifindex(this.kernelLink(s, op, dev)!);
  }

  private mustGetLink(op: string, name: string): LinkInfo {
    const info = this.getLink(name);
    if (!info) throw new NetlinkError(op, "created but not found when read back");
    return info;
  }

  private linkInfo(link: Pointer): LinkInfo {
    const info: LinkInfo = {
      index: this.rt.rtnl_link_get_ifindex(link),
      name: readCString(this.rt.rtnl_link_get_name(link)) ?? "",
      mtu: this.rt.rtnl_link_get_mtu(link),
      up: (this.rt.rtnl_link_get_flags(link) & IFF_UP) !== 0,
    };
    const kind = readCString(this.rt.rtnl_link_get_type(link));
    if (kind) info.kind = kind;
    const addr = this.rt.rtnl_link_get_addr(link);
    const mac = addr ? formatMac(this.addrBytes(addr)) : undefined;
    if (mac) info.mac = mac;
    const master = this.rt.rtnl_link_get_master(link);
    if (master > 0) info.master = master;
    if (kind === "vxlan" && this.isVxlan(link)) {
      const vxlan = this.vxlanParams(link);
      if (vxlan) info.vxlan = vxlan;
    }
    return info;
  }

  /**
   * The vxlan getters assert that libnl attached its vxlan type ops, and the assert
   * aborts the process: ask rtnl_link_is_vxlan, which tests exactly that. A libnl
   * without it still attaches the ops for every kind "vxlan" (rtnl_link_set_type), so
   * the caller's kind check is the fallback.
   */
  private isVxlan(link: Pointer): boolean {
    const is = this.opt.rtnl_link_is_vxlan;
    return is ? is(link) !== 0 : true;
  }

  /**
   * VNI, local, port and learning of a link known to be VXLAN; undefined when the VNI
   * or port cannot be read (no get_port in this libnl, attribute absent), so callers
   * never act on half the parameters. local is absent when the device has none.
   */
  private vxlanParams(link: Pointer): LinkInfo["vxlan"] {
    const getPort = this.opt.rtnl_link_vxlan_get_port;
    if (!getPort) return undefined;
    const u32 = new Uint32Array(1);
    if (this.rt.rtnl_link_vxlan_get_id(link, u32) < 0) return undefined;
    const vni = u32[0]!;
    if (getPort(link, u32) < 0) return undefined;
    const out: NonNullable<LinkInfo["vxlan"]> = { vni, port: u32[0]! };
    const addrOut = new BigUint64Array(1);
    if (this.rt.rtnl_link_vxlan_get_local(link, addrOut) >= 0 && addrOut[0]) {
      // get_local builds a new nl_addr for us: ours to put.
      const local = Number(addrOut[0]) as Pointer;
      try {
        const bytes = this.addrBytes(local);
        if (bytes.length === 4 || bytes.length === 16) out.local = formatIpBytes(bytes);
      } finally {
        this.nl.nl_addr_put(local);
      }
    }
    const learning = this.rt.rtnl_link_vxlan_get_learning(link);
    if (learning >= 0) out.learning = learning !== 0;
    return out;
  }

  private linkNames(s: Scope, op: string): Map<number, string> {
    const names = new Map<number, string>();
    for (const obj of this.cache(s, op, (p) => this.rt.rtnl_link_alloc_cache(this.sock(op), AF_UNSPEC, p))) {
      names.set(this.rt.rtnl_link_get_ifindex(obj), readCString(this.rt.rtnl_link_get_name(obj)) ?? "");
    }
    return names;
  }

  /** Fills a cache, frees it with the scope, and yields its borrowed objects. */
  private *cache(s: Scope, op: string, alloc: (out: BigUint64Array) => number): Generator<Pointer> {
    const out = new BigUint64Array(1);
    this.check(op, alloc(out));
    const cache = Number(out[0]) as Pointer;
    s.defer(() => this.nl.nl_cache_free(cache));
    for (let obj = this.nl.nl_cache_get_first(cache); obj; obj = this.nl.nl_cache_get_next(obj)) yield obj;
  }

  private changeLink(op: string, name: string, set: (change: Pointer, s: Scope) => void): void {
    this.checkName(op, name);
    this.run(op, (s) => {
      const orig = this.kernelLink(s, op, name)!;
      const change = this.rt.rtnl_link_alloc();
      if (!change) throw new NetlinkError(op, "Out of memory", NLE_NOMEM);
      s.defer(() => this.rt.rtnl_link_put(change));
      set(change, s);
      this.check(op, this.rt.rtnl_link_change(this.sock(op), orig, change, 0));
    });
  }

  private changeAddress(op: string, a: AddressSpec, add: boolean): void {
    const { family, bytes, prefix } = this.parse(op, () => ipCidr(a.cidr));
    this.run(op, (s) => {
      const index = this.ifindex(s, op, a.dev);
      const addr = this.rt.rtnl_addr_alloc();
      if (!addr) throw new NetlinkError(op, "Out of memory", NLE_NOMEM);
      s.defer(() => this.rt.rtnl_addr_put(addr));
      this.rt.rtnl_addr_set_ifindex(addr, index);
      this.check(op, this.rt.rtnl_addr_set_local(addr, this.addr(s, op, afOf(family), bytes, prefix)));
      // Every IPv6 address weft adds is unique by construction (a node's own lease), so no
      // duplicate address detection: the address is usable at once instead of tentative
      // for a second or more.
      if (add && family === 6) this.rt.rtnl_addr_set_flags(addr, IFA_F_NODAD | (a.noPrefixRoute ? IFA_F_NOPREFIXROUTE : 0));
      const sk = this.sock(op);
      this.check(op, add ? this.rt.rtnl_addr_add(sk, addr, 0) : this.rt.rtnl_addr_delete(sk, addr, 0));
    });
  }

  private route(op: string, r: RouteSpec, protocol: number, send: (sk: Pointer, route: Pointer) => number): void {
    const dst = this.parse(op, () => ipCidr(r.dst, { network: true }));
    const gw = r.gateway !== undefined ? this.parse(op, () => ipBytes(r.gateway!)) : undefined;
    if (gw && gw.family !== dst.family) throw new NetlinkError(op, `gateway ${r.gateway} is not of the family of ${r.dst}`);
    this.checkInt(op, "protocol", protocol, 0, 255);
    if (r.onlink && r.dev === undefined) throw new NetlinkError(op, "onlink needs a dev");
    this.run(op, (s) => {
      const index = r.dev !== undefined ? this.ifindex(s, op, r.dev) : undefined;
      const route = this.rt.rtnl_route_alloc();
      if (!route) throw new NetlinkError(op, "Out of memory", NLE_NOMEM);
      s.defer(() => this.rt.rtnl_route_put(route));
      this.check(op, this.rt.rtnl_route_set_dst(route, this.addr(s, op, afOf(dst.family), dst.bytes, dst.prefix)));
      this.rt.rtnl_route_set_table(route, RT_TABLE_MAIN);
      this.rt.rtnl_route_set_protocol(route, protocol);
      // A delete by prefix alone sends no nexthop, so the kernel matches any.
      if (index !== undefined || gw) {
        const nh = this.rt.rtnl_route_nh_alloc();
        if (!nh) throw new NetlinkError(op, "Out of memory", NLE_NOMEM);
        if (index !== undefined) this.rt.rtnl_route_nh_set_ifindex(nh, index);
        if (gw) this.rt.rtnl_route_nh_set_gateway(nh, this.addr(s, op, afOf(gw.family), gw.bytes));
        if (r.onlink) this.rt.rtnl_route_nh_set_flags(nh, RTNH_F_ONLINK);
        // From here the route owns the nexthop and frees it with itself.
        this.rt.rtnl_route_add_nexthop(route, nh);
      }
      this.check(op, send(this.sock(op), route));
    });
  }

  private neigh(op: string, dev: string, build: (s: Scope, neigh: Pointer) => (sk: Pointer) => number): void {
    this.run(op, (s) => {
      const index = this.ifindex(s, op, dev);
      const neigh = this.rt.rtnl_neigh_alloc();
      if (!neigh) throw new NetlinkError(op, "Out of memory", NLE_NOMEM);
      s.defer(() => this.rt.rtnl_neigh_put(neigh));
      this.rt.rtnl_neigh_set_ifindex(neigh, index);
      this.check(op, build(s, neigh)(this.sock(op)));
    });
  }

  private fdb(op: string, f: FdbSpec, send: (sk: Pointer, neigh: Pointer) => number): void {
    const mac = this.parse(op, () => macBytes(f.mac));
    const dst = this.parse(op, () => ipBytes(f.dst));
    this.neigh(op, f.dev, (s, neigh) => {
      // set_dst derives the family from the address, so AF_BRIDGE must come after it;
      // rtnl_neigh_set_type is avoided because it resets the attribute mask. An IPv6 dst
      // (NDA_DST of 16 bytes) is the remote of an IPv6 VXLAN.
      this.check(op, this.rt.rtnl_neigh_set_dst(neigh, this.addr(s, op, afOf(dst.family), dst.bytes)));
      this.rt.rtnl_neigh_set_family(neigh, AF_BRIDGE);
      this.rt.rtnl_neigh_set_lladdr(neigh, this.addr(s, op, AF_LLC, mac));
      this.rt.rtnl_neigh_set_state(neigh, NUD_PERMANENT);
      this.rt.rtnl_neigh_set_flags(neigh, NTF_SELF);
      return (sk) => send(sk, neigh);
    });
  }

  /**
   * ARP and NDP entries on one device that have an address and a MAC. IPv6 link-local and
   * multicast entries are left out: the kernel makes those for its own neighbour
   * discovery; weft never programs them and must not take them for its own.
   */
  private listNeigh<T>(op: string, dev: string, alloc: (out: BigUint64Array) => number, make: (ip: string, mac: string) => T): T[] {
    return this.run(op, (s) => {
      const index = this.ifindex(s, op, dev);
      const out: T[] = [];
      for (const obj of this.cache(s, op, alloc)) {
        const family = this.rt.rtnl_neigh_get_family(obj);
        if ((family !== AF_INET && family !== AF_INET6) || this.rt.rtnl_neigh_get_ifindex(obj) !== index) continue;
        const dst = this.rt.rtnl_neigh_get_dst(obj);
        const ll = this.rt.rtnl_neigh_get_lladdr(obj);
        if (!dst || !ll || this.nl.nl_addr_get_family(dst) !== family) continue;
        const ip = formatIpBytes(this.addrBytes(dst));
        if (family === AF_INET6 && KERNEL_NDP.some((c) => contains(c, parseCidr(`${ip}/128`)))) continue;
        const mac = formatMac(this.addrBytes(ll));
        if (mac) out.push(make(ip, mac));
      }
      return out;
    });
  }
}
