/**
 * Built-in IPAM: one address per pool (one pool per address family in subnet.env) for
 * each (container, ifname), recorded in an {@link AllocationStore}. The rules are
 * host-local's, so its on-disk records mean the same here:
 *
 * - A pool is the node's subnet minus its network address, its gateway (the first
 *   address, the bridge's) and, for IPv4, its broadcast address.
 * - The search starts after the pool's last reserved address and wraps around, so a
 *   freed address is not handed out again at once.
 * - Records outside every current pool (a renumbered node's old subnet) never count as
 *   taken and are never handed out; DEL and GC remove them by container.
 *
 * Everything that reads or writes records runs inside `store.locked`, so concurrent
 * plugin processes never pick the same address.
 */
import { contains, formatIp, networkOf, nthAddress, parseCidr, sizeOf, tryParseIp, type Cidr, type Family, type Ip } from "../net/cidr.ts";
import { CniCode, CniError } from "./spec.ts";

export interface Pool {
  family: Family;
  /** The node's subnet in network form, e.g. 10.244.3.0/24. */
  subnet: Cidr;
  /** The subnet's first address, carried by the bridge. */
  gateway: Ip;
  /** host-local's range id: the suffix of `last_reserved_ip.<id>`. */
  rangeId: string;
}

/** One record: the address and who holds it (`ifname` absent in host-local's oldest format). */
export interface Allocation {
  ip: string;
  containerId: string;
  ifname?: string;
}

/** Where records live; one store per network. See store.ts for the on-disk one. */
export interface AllocationStore {
  /** Runs `fn` holding the network's exclusive lock. */
  locked<T>(fn: () => T): T;
  list(): Allocation[];
  /** Creates the record unless one exists for `ip`; returns whether it did. */
  reserve(a: Required<Allocation>, rangeId: string): boolean;
  lastReserved(rangeId: string): string | undefined;
  /** Removes the record of `ip`; a missing one is not an error. */
  remove(ip: string): void;
}

/** A pool for the subnet written as in subnet.env (any address inside it, e.g. its gateway form). */
export function poolOf(subnetText: string, rangeId: string): Pool {
  const subnet = networkOf(parseCidr(subnetText));
  return { family: subnet.family, subnet, gateway: nthAddress(subnet, 1), rangeId };
}

/** First and last assignable addresses (the gateway inside them is skipped separately). */
export function poolBounds(p: Pool): { first: bigint; last: bigint } {
  const size = sizeOf(p.family, p.subnet.prefix);
  const last = p.family === 4 ? p.subnet.addr + size - 2n : p.subnet.addr + size - 1n;
  return { first: p.subnet.addr + 1n, last };
}

/** How many addresses the pool can hand out. */
export function poolCapacity(p: Pool): bigint {
  const { first, last } = poolBounds(p);
  return last < first ? 0n : last - first + (p.gateway.addr >= first && p.gateway.addr <= last ? 0n : 1n);
}

/** True when `ip` may be handed out from the pool (inside it, not reserved). */
export function assignable(p: Pool, ip: Ip): boolean {
  if (ip.family !== p.family || !contains(p.subnet, ip)) return false;
  const { first, last } = poolBounds(p);
  return ip.addr >= first && ip.addr <= last && ip.addr !== p.gateway.addr;
}

/**
 * The next free address after `last` (or from the start), wrapping once; undefined when
 * every assignable address is taken. Visits at most |taken| + 2 candidates: among that
 * many consecutive addresses one is neither taken nor the gateway.
 */
export function pickAddress(p: Pool, taken: ReadonlySet<bigint>, last?: bigint): bigint | undefined {
  const { first, last: end } = poolBounds(p);
  if (end < first) return undefined;
  const span = end - first + 1n;
  const start = last !== undefined && last >= first && last <= end ? last + 1n : first;
  const limit = BigInt(taken.size) + 2n < span ? BigInt(taken.size) + 2n : span;
  for (let i = 0n; i < limit; i++) {
    let a = start + i;
    if (a > end) a -= span;
    if (a !== p.gateway.addr && !taken.has(a)) return a;
  }
  return undefined;
}


const holds = (a: Allocation, containerId: string, ifname: string): boolean =>
  a.containerId === containerId && (a.ifname === undefined || a.ifname === ifname);

/**
 * Reserves one address per pool for (containerId, ifname); call inside `store.locked`.
 * Throws code 100 when the attachment already holds an address in a pool, code 11 when a
 * pool is full (addresses reserved in earlier pools by this call are given back).
 */
export function allocate(store: AllocationStore, pools: readonly Pool[], containerId: string, ifname: string): Allocation[] {
  const records = store.list();
  for (const r of records) {
    const ip = tryParseIp(r.ip);
    if (ip && holds(r, containerId, ifname) && pools.some((p) => assignable(p, ip))) {
      throw new CniError(CniCode.AlreadyExists, `container ${containerId} interface ${ifname} already holds ${r.ip}`, "the runtime must DEL an attachment before adding it again");
    }
  }
  const made: Allocation[] = [];
  try {
    for (const p of pools) {
      const taken = new Set<bigint>();
      for (const r of records) {
        const ip = tryParseIp(r.ip);
        if (ip && assignable(p, ip)) taken.add(ip.addr);
      }
      const lastText = store.lastReserved(p.rangeId);
      const lastIp = lastText !== undefined ? tryParseIp(lastText) : undefined;
      const last = lastIp && lastIp.family === p.family ? lastIp.addr : undefined;
      for (;;) {
        const addr = pickAddress(p, taken, last);
        if (addr === undefined) {
          throw new CniError(
            CniCode.TryAgainLater,
            `no free address in ${formatIp(p.subnet)}/${p.subnet.prefix}: all ${poolCapacity(p)} are allocated`,
            "addresses come back when pods are deleted (DEL) or garbage-collected (GC)",
          );
        }
        const a = { ip: formatIp({ family: p.family, addr }), containerId, ifname };
        if (store.reserve(a, p.rangeId)) {
          made.push(a);
          break;
        }
        taken.add(addr); // a record we could not read as an address holds it
      }
    }
  } catch (e) {
    for (const a of made) store.remove(a.ip);
    throw e;
  }
  return made;
}

/** Removes every record of (containerId, ifname); returns the addresses freed. Call inside `store.locked`. */
export function release(store: AllocationStore, containerId: string, ifname: string): string[] {
  const freed: string[] = [];
  for (const r of store.list()) {
    if (!holds(r, containerId, ifname)) continue;
    store.remove(r.ip);
    freed.push(r.ip);
  }
  return freed;
}

/**
 * Records whose attachment is not in `valid` (GC's `cni.dev/valid-attachments`). A record
 * without an ifname stays while its container has any valid attachment.
 */
export function staleAllocations(records: readonly Allocation[], valid: readonly { containerID: string; ifname: string }[]): Allocation[] {
  const keys = new Set(valid.map((v) => `${v.containerID}\n${v.ifname}`));
  const ids = new Set(valid.map((v) => v.containerID));
  return records.filter((r) => (r.ifname === undefined ? !ids.has(r.containerId) : !keys.has(`${r.containerId}\n${r.ifname}`)));
}

/** Number of addresses still free in `p` given the records (status). */
export function freeCount(p: Pool, records: readonly Allocation[]): bigint {
  let used = 0n;
  for (const r of records) {
    const ip = tryParseIp(r.ip);
    if (ip && assignable(p, ip)) used++;
  }
  return poolCapacity(p) - used;
}
