/**
 * The diff step shared by the backends: desired routes/neighbours/FDB versus what weft
 * owns in the kernel right now (read back every time, never remembered), applied in an
 * order that never black-holes traffic: neighbour and FDB entries first, then routes (a
 * route must not point at a next hop the device cannot resolve yet); on removal routes
 * go first, then the entries behind them. A failed operation is reported and the rest
 * still run; the next reconcile retries it.
 */
import { WEFT_ROUTE_PROTOCOL, type FdbSpec, type NeighSpec, type Netlink, type RouteInfo, type RouteSpec } from "../sys/netlink.ts";
import { contains, parseCidr } from "../net/cidr.ts";
import type { ApplyResult } from "./backend.ts";

const RT_TABLE_MAIN = 254;

export interface DesiredPeers {
  /** Routes to install, all marked with WEFT_ROUTE_PROTOCOL. */
  routes: RouteSpec[];
  /** weft's own device whose neighbours and FDB entries weft owns (none for host-gw). */
  dev?: string;
  neighs: NeighSpec[];
  fdb: FdbSpec[];
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

/** The weft routes currently in the kernel: our protocol, main table, inside Network. */
export function ownedRoutes(nl: Netlink, network: string): RouteInfo[] {
  const net = parseCidr(network);
  return nl.listRoutes({ protocol: WEFT_ROUTE_PROTOCOL }).filter((r) => {
    if (r.protocol !== WEFT_ROUTE_PROTOCOL || (r.table !== undefined && r.table !== RT_TABLE_MAIN)) return false;
    try {
      return contains(net, parseCidr(r.dst));
    } catch {
      return false;
    }
  });
}

const sameRoute = (a: RouteSpec, b: RouteSpec) => a.dst === b.dst && a.gateway === b.gateway && a.dev === b.dev;

export function programPeers(nl: Netlink, network: string, want: DesiredPeers, result: ApplyResult): void {
  const curRoutes = ownedRoutes(nl, network);
  const curNeighs = want.dev ? nl.listNeighbors(want.dev) : [];
  const curFdb = want.dev ? nl.listFdb(want.dev) : [];

  // Indexed once: a cluster of 1000 peers must not cost 1000 × 1000 comparisons per run.
  const neighByIp = new Map(curNeighs.map((c) => [c.ip, c.mac.toLowerCase()]));
  const fdbKeys = new Set(curFdb.map((c) => `${c.mac.toLowerCase()} ${c.dst}`));
  const routeByDst = new Map(curRoutes.map((c) => [c.dst, c]));

  // 1. entries behind the routes
  for (const n of want.neighs) {
    if (neighByIp.get(n.ip) === n.mac) continue;
    attempt(result, () => nl.replaceNeighbor(n));
  }
  for (const f of want.fdb) {
    if (fdbKeys.has(`${f.mac} ${f.dst}`)) continue;
    attempt(result, () => nl.appendFdb(f));
  }
  // 2. routes, last
  for (const r of want.routes) {
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
  if (want.dev) {
    const dev = want.dev;
    const wantNeigh = new Set(want.neighs.map((n) => n.ip));
    for (const c of curNeighs) {
      if (wantNeigh.has(c.ip)) continue;
      attempt(result, () => nl.deleteNeighbor({ dev, ip: c.ip }), { missingIsFine: true });
    }
    const wantFdb = new Set(want.fdb.map((f) => `${f.mac} ${f.dst}`));
    for (const c of curFdb) {
      if (wantFdb.has(`${c.mac.toLowerCase()} ${c.dst}`)) continue;
      attempt(result, () => nl.deleteFdb({ dev, mac: c.mac, dst: c.dst }), { missingIsFine: true });
    }
  }
}
