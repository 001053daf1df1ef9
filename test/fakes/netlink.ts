/**
 * An in-memory kernel behind the Netlink port. Every mutating call made through the
 * interface is recorded as one line of iproute2-like text, so backend tests compare
 * operations as text (tailscale's router tests do the same). Errors follow the kernel:
 * deleting a missing object throws "Object not found", adding an existing address or
 * link throws "Object exists", a device that does not exist throws "No such device".
 *
 * `outside(fn)` runs changes as somebody else would (an operator with `ip`): they are
 * not recorded, but subscribers of `watch` hear about them, like netlink multicast.
 */
import {
  defaultMetric,
  WEFT_ROUTE_PROTOCOL,
  type AddressSpec,
  type FdbSpec,
  type LinkInfo,
  type NeighSpec,
  type Netlink,
  type RouteInfo,
  type RouteSpec,
  type VxlanSpec,
} from "../../src/sys/netlink.ts";
import { bitsOf, contains, formatCidr, networkOf, parseCidr, parseIp } from "../../src/net/cidr.ts";

const RTPROT_KERNEL = 2;
const RT_TABLE_MAIN = 254;
/** The metric the kernel gives an IPv6 address's prefix route. */
const IPV6_PREFIX_ROUTE_METRIC = 256;

export interface FakeLink extends LinkInfo {
  /** What the kernel keeps of a VXLAN; getLink/listLinks report it in LinkInfo's shape. */
  vxlan?: Omit<VxlanSpec, "name" | "mtu" | "mac" | "local"> & { local?: string; learning?: boolean };
}

export interface NetlinkEvent {
  kind: "link" | "address" | "route" | "neigh" | "fdb";
  action: "new" | "del";
  text: string;
}

export class RecordingNetlink implements Netlink {
  /** Every mutation made through the interface, in order. */
  readonly ops: string[] = [];
  private links = new Map<string, FakeLink>();
  private addrs: AddressSpec[] = [];
  private routes: RouteInfo[] = [];
  private neighs: NeighSpec[] = [];
  private fdb: FdbSpec[] = [];
  private nextIndex = 1;
  private recording = true;
  private watchers = new Set<(e: NetlinkEvent) => void>();
  private failures: { match: RegExp; message: string; times: number }[] = [];
  closed = false;

  constructor() {
    this.addLinkRaw({ name: "lo", mtu: 65536, up: true });
  }

  // ---------------------------------------------------------------- test helpers

  /** Returns the recorded operations and forgets them. */
  takeOps(): string[] {
    return this.ops.splice(0);
  }

  /** Runs `fn` as an outsider: its changes are not recorded but are announced to watchers. */
  outside<T>(fn: (nl: RecordingNetlink) => T): T {
    const was = this.recording;
    this.recording = false;
    try {
      return fn(this);
    } finally {
      this.recording = was;
    }
  }

  /** Creates a plain link (underlay NIC, a TUN made elsewhere) without recording it. */
  addLinkRaw(l: Partial<FakeLink> & { name: string }): FakeLink {
    if (this.links.has(l.name)) throw new Error(`add link ${l.name}: Object exists`);
    const link: FakeLink = { index: this.nextIndex++, mtu: 1500, up: true, ...l };
    this.links.set(l.name, link);
    this.emit({ kind: "link", action: "new", text: l.name });
    return link;
  }

  /** Adds a route as given (any protocol, type, metric) without recording it, as `ip route add` by an outsider would. */
  addRouteRaw(r: Omit<RouteInfo, "table"> & { table?: number }): void {
    this.routes.push({ table: RT_TABLE_MAIN, ...r });
    this.emit({ kind: "route", action: "new", text: routeText(r) });
  }

  /** Adds one more destination to a MAC's FDB entry (`bridge fdb append`), unrecorded. */
  appendFdbRaw(f: FdbSpec): void {
    this.fdb.push({ ...f });
    this.emit({ kind: "fdb", action: "new", text: `append fdb ${f.mac} dst ${f.dst} dev ${f.dev}` });
  }

  /** The next `times` operations whose text matches `match` throw `message`. */
  failOn(match: RegExp, message: string, times = 1): void {
    this.failures.push({ match, message, times });
  }

  /** Subscribes to every change, like an RTNLGRP_* multicast listener; returns unsubscribe. */
  watch(fn: (e: NetlinkEvent) => void): () => void {
    this.watchers.add(fn);
    return () => void this.watchers.delete(fn);
  }

  /** The whole state as sorted text lines, for asserting end states. */
  dump(): string[] {
    const out: string[] = [];
    for (const l of this.links.values()) out.push(`link ${l.name}${l.kind ? ` ${l.kind}` : ""} mtu ${l.mtu}${l.mac ? ` ${l.mac}` : ""}${l.up ? " up" : ""}`);
    for (const a of this.addrs) out.push(`address ${a.cidr} dev ${a.dev}`);
    for (const r of this.routes) out.push(`route ${routeText(r)}`);
    for (const n of this.neighs) out.push(`neigh ${n.ip} lladdr ${n.mac} dev ${n.dev}`);
    for (const f of this.fdb) out.push(`fdb ${f.mac} dst ${f.dst} dev ${f.dev}`);
    return out.sort();
  }

  // ---------------------------------------------------------------- links

  createBridge(name: string, opts: { mtu?: number; mac?: string } = {}): LinkInfo {
    const op = `add link ${name} type bridge${opts.mtu ? ` mtu ${opts.mtu}` : ""}${opts.mac ? ` address ${opts.mac}` : ""}`;
    this.begin(op);
    if (this.links.has(name)) throw new Error(`${op}: Object exists`);
    const link = this.addLinkRaw({ name, kind: "bridge", mtu: opts.mtu ?? 1500, up: true, ...(opts.mac ? { mac: opts.mac } : {}) });
    this.record(op);
    return { ...link };
  }

  createVxlan(s: VxlanSpec): LinkInfo {
    const op =
      `add link ${s.name} type vxlan id ${s.vni} local ${s.local} dstport ${s.port} nolearning mtu ${s.mtu}` +
      (s.mac ? ` address ${s.mac}` : "") +
      (s.underlayIndex !== undefined ? ` dev-index ${s.underlayIndex}` : "");
    this.begin(op);
    if (this.links.has(s.name)) throw new Error(`${op}: Object exists`);
    const mac = s.mac ?? "02:00:00:00:00:" + this.nextIndex.toString(16).padStart(2, "0");
    const vxlan: FakeLink["vxlan"] = { vni: s.vni, local: s.local, port: s.port, learning: false, ...(s.underlayIndex !== undefined ? { underlayIndex: s.underlayIndex } : {}) };
    const link = this.addLinkRaw({ name: s.name, kind: "vxlan", mtu: s.mtu, mac, up: true, vxlan });
    this.record(op);
    return linkView(link);
  }

  getLink(name: string): LinkInfo | undefined {
    const l = this.links.get(name);
    return l ? linkView(l) : undefined;
  }

  listLinks(): LinkInfo[] {
    return [...this.links.values()].map(linkView);
  }

  setLinkUp(name: string): void {
    const op = `set link ${name} up`;
    this.begin(op);
    this.mustLink(op, name).up = true;
    this.record(op);
    this.emit({ kind: "link", action: "new", text: name });
  }

  setMtu(name: string, mtu: number): void {
    const op = `set link ${name} mtu ${mtu}`;
    this.begin(op);
    this.mustLink(op, name).mtu = mtu;
    this.record(op);
    this.emit({ kind: "link", action: "new", text: name });
  }

  deleteLink(name: string): void {
    const op = `delete link ${name}`;
    this.begin(op);
    this.mustLink(op, name);
    this.links.delete(name);
    // The kernel drops everything that hung off the device with it.
    this.addrs = this.addrs.filter((a) => a.dev !== name);
    this.routes = this.routes.filter((r) => r.dev !== name);
    this.neighs = this.neighs.filter((n) => n.dev !== name);
    this.fdb = this.fdb.filter((f) => f.dev !== name);
    this.record(op);
    this.emit({ kind: "link", action: "del", text: name });
  }

  // ---------------------------------------------------------------- addresses

  addAddress(a: AddressSpec): void {
    const op = `add address ${a.cidr} dev ${a.dev}${a.noPrefixRoute ? " noprefixroute" : ""}`;
    this.begin(op);
    this.mustLink(op, a.dev);
    const c = parseCidr(a.cidr);
    if (this.addrs.some((x) => x.dev === a.dev && parseCidr(x.cidr).family === c.family && parseCidr(x.cidr).addr === c.addr)) throw new Error(`${op}: Object exists`);
    this.addrs.push({ dev: a.dev, cidr: a.cidr });
    if (c.prefix < bitsOf(c.family) && !a.noPrefixRoute) {
      this.routes.push({ dst: formatCidr(networkOf(c)), dev: a.dev, protocol: RTPROT_KERNEL, table: RT_TABLE_MAIN, ...(c.family === 6 ? { priority: IPV6_PREFIX_ROUTE_METRIC } : {}) });
    }
    this.record(op);
    this.emit({ kind: "address", action: "new", text: op });
  }

  deleteAddress(a: AddressSpec): void {
    const op = `delete address ${a.cidr} dev ${a.dev}`;
    this.begin(op);
    const c = parseCidr(a.cidr);
    const i = this.addrs.findIndex((x) => x.dev === a.dev && parseCidr(x.cidr).family === c.family && parseCidr(x.cidr).addr === c.addr);
    if (i < 0) throw new Error(`${op}: Cannot assign requested address`);
    this.addrs.splice(i, 1);
    const net = formatCidr(networkOf(c));
    this.routes = this.routes.filter((r) => !(r.protocol === RTPROT_KERNEL && r.dev === a.dev && r.dst === net));
    this.record(op);
    this.emit({ kind: "address", action: "del", text: op });
  }

  /** Addresses as the kernel lists them: IPv4 first, then IPv6. */
  listAddresses(dev?: string): AddressSpec[] {
    const mine = this.addrs.filter((a) => dev === undefined || a.dev === dev);
    return [...mine.filter((a) => !a.cidr.includes(":")), ...mine.filter((a) => a.cidr.includes(":"))].map((a) => ({ ...a }));
  }

  // ---------------------------------------------------------------- routes

  replaceRoute(r: RouteSpec): void {
    // A route added without a metric gets its family's default (IPv6: 1024).
    const metric = defaultMetric(r.dst);
    const full: RouteInfo = { ...r, protocol: r.protocol ?? WEFT_ROUTE_PROTOCOL, table: RT_TABLE_MAIN, ...(metric ? { priority: metric } : {}) };
    const op = `replace route ${routeText({ ...r, protocol: full.protocol })}`;
    this.begin(op);
    const dst = parseCidr(r.dst);
    if (formatCidr(networkOf(dst)) !== r.dst) throw new Error(`${op}: Invalid argument`);
    if (r.dev !== undefined) this.mustLink(op, r.dev);
    if (r.gateway !== undefined && !r.onlink && !this.gatewayReachable(r.gateway, r.dev)) {
      // libnl maps ENETUNREACH to its catch-all.
      throw new Error(`${op}: Unspecific failure`);
    }
    if (r.dev === undefined && r.gateway === undefined) throw new Error(`${op}: Invalid argument`);
    // Like the kernel: the first route with the same destination and metric is replaced, whatever its protocol or type.
    const i = this.routes.findIndex((x) => x.dst === r.dst && x.table === RT_TABLE_MAIN && (x.priority ?? 0) === metric);
    if (i >= 0) this.routes[i] = full;
    else this.routes.push(full);
    this.record(op);
    this.emit({ kind: "route", action: "new", text: op });
  }

  deleteRoute(r: RouteSpec): void {
    const op = `delete route ${routeText({ ...r, protocol: r.protocol ?? WEFT_ROUTE_PROTOCOL })}`;
    this.begin(op);
    // Like the kernel: unspecified fields match anything, given fields must match.
    const i = this.routes.findIndex(
      (x) =>
        x.dst === r.dst &&
        (r.gateway === undefined || x.gateway === r.gateway) &&
        (r.dev === undefined || x.dev === r.dev) &&
        (r.protocol === undefined || x.protocol === r.protocol),
    );
    if (i < 0) throw new Error(`${op}: Object not found`);
    this.routes.splice(i, 1);
    this.record(op);
    this.emit({ kind: "route", action: "del", text: op });
  }

  listRoutes(filter: { protocol?: number; dev?: string; anyType?: boolean } = {}): RouteInfo[] {
    return this.routes
      .filter((r) => r.table === RT_TABLE_MAIN && (r.type === undefined || filter.anyType) && (filter.protocol === undefined || r.protocol === filter.protocol) && (filter.dev === undefined || r.dev === filter.dev))
      .map((r) => ({ ...r }));
  }

  // ---------------------------------------------------------------- neighbours

  replaceNeighbor(n: NeighSpec): void {
    const op = `replace neigh ${n.ip} lladdr ${n.mac} dev ${n.dev} nud permanent`;
    this.begin(op);
    this.mustLink(op, n.dev);
    parseIp(n.ip);
    const i = this.neighs.findIndex((x) => x.dev === n.dev && x.ip === n.ip);
    if (i >= 0) this.neighs[i] = { ...n };
    else this.neighs.push({ ...n });
    this.record(op);
    this.emit({ kind: "neigh", action: "new", text: op });
  }

  deleteNeighbor(n: Omit<NeighSpec, "mac">): void {
    const op = `delete neigh ${n.ip} dev ${n.dev}`;
    this.begin(op);
    const i = this.neighs.findIndex((x) => x.dev === n.dev && x.ip === n.ip);
    if (i < 0) throw new Error(`${op}: Object not found`);
    this.neighs.splice(i, 1);
    this.record(op);
    this.emit({ kind: "neigh", action: "del", text: op });
  }

  listNeighbors(dev: string): NeighSpec[] {
    return this.neighs.filter((n) => n.dev === dev).map((n) => ({ ...n }));
  }

  // ---------------------------------------------------------------- fdb

  replaceFdb(f: FdbSpec): void {
    const op = `replace fdb ${f.mac} dst ${f.dst} dev ${f.dev}`;
    this.begin(op);
    const link = this.mustLink(op, f.dev);
    if (link.kind !== "vxlan") throw new Error(`${op}: Operation not supported`);
    // Like the kernel's vxlan_fdb_update with NLM_F_REPLACE: the MAC's first destination changes, others stay.
    const i = this.fdb.findIndex((x) => x.dev === f.dev && x.mac === f.mac);
    if (i >= 0) this.fdb[i] = { ...f };
    else this.fdb.push({ ...f });
    this.record(op);
    this.emit({ kind: "fdb", action: "new", text: op });
  }

  deleteFdb(f: FdbSpec): void {
    const op = `delete fdb ${f.mac} dst ${f.dst} dev ${f.dev}`;
    this.begin(op);
    const i = this.fdb.findIndex((x) => x.dev === f.dev && x.mac === f.mac && x.dst === f.dst);
    if (i < 0) throw new Error(`${op}: Object not found`);
    this.fdb.splice(i, 1);
    this.record(op);
    this.emit({ kind: "fdb", action: "del", text: op });
  }

  listFdb(dev: string): FdbSpec[] {
    return this.fdb.filter((f) => f.dev === dev).map((f) => ({ ...f }));
  }

  close(): void {
    this.closed = true;
  }

  // ---------------------------------------------------------------- internals

  private begin(op: string): void {
    if (this.closed) throw new Error(`${op}: netlink socket closed`);
    const f = this.failures.find((x) => x.times > 0 && x.match.test(op));
    if (f) {
      f.times--;
      throw new Error(`${op}: ${f.message}`);
    }
  }

  private record(op: string): void {
    if (this.recording) this.ops.push(op);
  }

  private emit(e: NetlinkEvent): void {
    for (const w of [...this.watchers]) w(e);
  }

  private mustLink(op: string, name: string): FakeLink {
    const l = this.links.get(name);
    if (!l) throw new Error(`${op}: No such device`);
    return l;
  }

  private gatewayReachable(gw: string, dev?: string): boolean {
    const ip = parseIp(gw);
    return this.addrs.some((a) => (dev === undefined || a.dev === dev) && contains(parseCidr(a.cidr), ip) && parseCidr(a.cidr).prefix < bitsOf(ip.family));
  }
}

/** A copy of a link as the real implementation reports it (vxlan: vni/local/port/learning only). */
function linkView(l: FakeLink): LinkInfo {
  const { vxlan, ...rest } = l;
  if (!vxlan) return { ...rest };
  const v: NonNullable<LinkInfo["vxlan"]> = { vni: vxlan.vni, port: vxlan.port };
  if (vxlan.local !== undefined) v.local = vxlan.local;
  if (vxlan.learning !== undefined) v.learning = vxlan.learning;
  return { ...rest, vxlan: v };
}

/** iproute2-like text of a route: "10.244.2.0/24 via 10.244.2.0 dev weft.1 onlink proto 87". */
export function routeText(r: RouteSpec & { protocol?: number; type?: number; priority?: number }): string {
  return [
    r.type !== undefined ? `type ${r.type}` : "",
    r.dst,
    r.gateway !== undefined ? `via ${r.gateway}` : "",
    r.dev !== undefined ? `dev ${r.dev}` : "",
    r.onlink ? "onlink" : "",
    r.protocol !== undefined ? `proto ${r.protocol}` : "",
    r.priority ? `metric ${r.priority}` : "",
  ]
    .filter(Boolean)
    .join(" ");
}
