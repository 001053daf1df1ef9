/**
 * The diff step shared by the backends: desired routes/neighbours/FDB versus what weft
 * owns in the kernel right now (read back every time, never remembered), applied in an
 * order that never black-holes traffic: neighbour and FDB entries first, then routes (a
 * route must not point at a next hop the device cannot resolve yet); on removal routes
 * go first, then the entries behind them. A failed operation is reported and the rest
 * still run; the next reconcile retries it.
 *
 * Two kernel behaviours it works around:
 *  - a route replace takes over any main-table route with the same destination and
 *    metric 0, whoever made it. So before replacing, a route weft does not own (another
 *    protocol, not on weft's device) with that key is looked for; if there is one, weft
 *    leaves it and reports a problem instead of adopting it.
 *  - a VXLAN device sends a frame to every destination its FDB lists for the MAC. So each
 *    MAC gets exactly one destination: entries are replaced, never appended, and any
 *    other destination of a wanted MAC is deleted.
 */
import { defaultMetric, WEFT_ROUTE_PROTOCOL, type FdbSpec, type NeighSpec, type Netlink, type RouteInfo, type RouteSpec } from "../sys/netlink.ts";
import { routeText } from "../sys/libnl-codec.ts";
import { contains, parseCidr } from "../net/cidr.ts";
import type { ApplyResult } from "./backend.ts";

const RT_TABLE_MAIN = 254;

export interface DesiredPeers {
  /** Routes to install, all marked with WEFT_ROUTE_PROTOCOL. */
  routes: RouteSpec[];
  /**
   * weft's own devices (none for host-gw). A route on one is weft's whatever its protocol
   * (the kernel's prefix route of weft0's address is adopted this way). `entries`: the
   * neighbour and FDB entries weft wants on it (vxlan); it owns every entry there.
   * Without: the device has none (a TUN).
   */
  devices?: { dev: string; entries?: { neighs: NeighSpec[]; fdb: FdbSpec[] } }[];
}

/** Runs one kernel mutation, counting it or recording its error. */
export function attempt(result: ApplyResult, fn: () => void, opts: { missingIsFine?: boolean } = {}): boolean {
  try {
    fn();
    result.changes++;
    return true;
  } catch (e) {
    const msg = (e as Error).message;
    // Deleting something an outsider removed meanwhile: the goal is reached.
    if (opts.missingIsFine && /not found|No such (process|file|device)|Cannot assign requested address/i.test(msg)) return true;
    result.errors.push(msg);
    return false;
  }
}

const inNetwork = (net: ReturnType<typeof parseCidr>, dst: string): boolean => {
  try {
    return contains(net, parseCidr(dst));
  } catch {
    return false;
  }
};

/** The weft routes among `routes`: our protocol, main table, unicast, inside one of the pod networks. */
function weftRoutes(routes: RouteInfo[], networks: string[]): RouteInfo[] {
  const nets = networks.map((n) => parseCidr(n));
  return routes.filter((r) => r.protocol === WEFT_ROUTE_PROTOCOL && r.type === undefined && (r.table === undefined || r.table === RT_TABLE_MAIN) && nets.some((n) => inNetwork(n, r.dst)));
}

/**
 * Main-table routes a replace of `dst` would take over although weft did not make them:
 * same destination, the default metric of its family (0, IPv6 1024), any type, neither
 * weft's protocol nor on one of weft's devices.
 */
function foreignRoutesByDst(routes: RouteInfo[], devs: Set<string>): Map<string, RouteInfo> {
  const out = new Map<string, RouteInfo>();
  for (const r of routes) {
    if ((r.table !== undefined && r.table !== RT_TABLE_MAIN) || (r.priority ?? 0) !== defaultMetric(r.dst)) continue;
    if (r.protocol === WEFT_ROUTE_PROTOCOL || (r.dev !== undefined && devs.has(r.dev))) continue;
    if (!out.has(r.dst)) out.set(r.dst, r);
  }
  return out;
}

const sameRoute = (a: RouteSpec, b: RouteSpec) => a.dst === b.dst && a.gateway === b.gateway && a.dev === b.dev;

/**
 * Makes weft's routes (inside any of `networks`, the pod networks of the families the
 * node runs), and the neighbour and FDB entries on `want.dev`, match `want`.
 */
export function programPeers(nl: Netlink, networks: string[], want: DesiredPeers, result: ApplyResult): void {
  const allRoutes = nl.listRoutes({ anyType: true });
  const curRoutes = weftRoutes(allRoutes, networks);
  const devices = want.devices ?? [];
  const foreign = foreignRoutesByDst(allRoutes, new Set(devices.map((d) => d.dev)));
  const routeByDst = new Map(curRoutes.map((c) => [c.dst, c]));
  const withEntries = devices.filter((d) => d.entries !== undefined) as { dev: string; entries: { neighs: NeighSpec[]; fdb: FdbSpec[] } }[];
  // Indexed once: a cluster of 1000 peers must not cost 1000 × 1000 comparisons per run.
  const current = withEntries.map(({ dev, entries }) => {
    const neighs = nl.listNeighbors(dev);
    const fdb = nl.listFdb(dev);
    const fdbDsts = new Map<string, string[]>();
    for (const c of fdb) {
      const mac = c.mac.toLowerCase();
      fdbDsts.set(mac, [...(fdbDsts.get(mac) ?? []), c.dst]);
    }
    return { dev, entries, neighs, fdb, neighByIp: new Map(neighs.map((c) => [c.ip, c.mac.toLowerCase()])), fdbDsts };
  });

  // 1. entries behind the routes
  for (const d of current) {
    for (const n of d.entries.neighs) {
      if (d.neighByIp.get(n.ip) === n.mac) continue;
      attempt(result, () => nl.replaceNeighbor(n));
    }
    for (const f of d.entries.fdb) {
      // Present among others: the others go in step 3, no need to touch this one.
      if (d.fdbDsts.get(f.mac)?.includes(f.dst)) continue;
      attempt(result, () => nl.replaceFdb(f));
    }
  }
  // 2. routes, last
  for (const r of want.routes) {
    const other = foreign.get(r.dst);
    if (other) {
      result.problems.push(`route ${r.dst} not installed: the kernel has a route weft did not make for it (${routeText(other)}); weft never replaces foreign routes, delete it to let weft route ${r.dst}`);
      continue;
    }
    const c = routeByDst.get(r.dst);
    if (c && sameRoute(c, r)) continue;
    attempt(result, () => nl.replaceRoute({ ...r, protocol: WEFT_ROUTE_PROTOCOL }));
  }
  // 3. removals: routes first, then what they pointed at
  const wantDst = new Set(want.routes.map((r) => r.dst));
  for (const c of curRoutes) {
    if (wantDst.has(c.dst)) continue;
    attempt(result, () => nl.deleteRoute({ dst: c.dst, ...(c.gateway ? { gateway: c.gateway } : {}), ...(c.dev ? { dev: c.dev } : {}), protocol: WEFT_ROUTE_PROTOCOL }), { missingIsFine: true });
  }
  for (const d of current) {
    const owner = d.dev;
    const wantNeigh = new Set(d.entries.neighs.map((n) => n.ip));
    for (const c of d.neighs) {
      if (wantNeigh.has(c.ip)) continue;
      attempt(result, () => nl.deleteNeighbor({ dev: owner, ip: c.ip }), { missingIsFine: true });
    }
    // One destination per MAC: every (MAC, destination) pair not wanted goes, including
    // other destinations of a wanted MAC (a replace only changed the first one).
    const wantFdb = new Set(d.entries.fdb.map((f) => `${f.mac} ${f.dst}`));
    for (const c of d.fdb) {
      if (wantFdb.has(`${c.mac.toLowerCase()} ${c.dst}`)) continue;
      attempt(result, () => nl.deleteFdb({ dev: owner, mac: c.mac, dst: c.dst }), { missingIsFine: true });
    }
  }
}
