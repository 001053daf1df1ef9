/**
 * The seed list as gossip addresses: "ip:port", without this node's own address, so
 * every node of a cluster can share one list. Host names go through an injected resolver
 * (the system resolver in production); one that does not resolve is kept as written and
 * left to the gossip layer's retries.
 */
import { lookup } from "node:dns/promises";
import type { Logger } from "../log.ts";

/** Resolves a host name to IPv4 addresses. */
export type ResolveHost = (host: string) => Promise<string[]>;

/** The system resolver, IPv4 only. */
export const systemResolveHost: ResolveHost = async (host) => (await lookup(host, { all: true, family: 4 })).map((a) => a.address);

export interface SeedOptions {
  /** "host:port" entries as configured. */
  seeds: string[];
  /** This node's gossip address "ip:port". */
  advertiseAddr: string;
  publicIp: string;
  /** Extra addresses ("ip:port" or "ip") that count as this node's own. */
  ownAddrs?: string[];
  resolveHost: ResolveHost;
  log: Logger;
}

export async function resolveSeeds(o: SeedOptions): Promise<string[]> {
  const advIp = o.advertiseAddr.replace(/:\d+$/, "");
  const advPort = o.advertiseAddr.slice(advIp.length + 1);
  const ownIps = new Set([advIp, o.publicIp, ...(o.ownAddrs ?? [])]);
  const out: string[] = [];
  for (const seed of o.seeds) {
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(seed);
    if (!m) {
      o.log.warn("Ignoring malformed seed (expected host:port)", { seed });
      continue;
    }
    const [, host, port] = m as unknown as [string, string, string];
    let ips = [host];
    if (!/^[\d.]+$/.test(host) && !host.includes(":")) {
      try {
        const found = await o.resolveHost(host);
        if (found.length > 0) ips = found;
      } catch (e) {
        o.log.warn("Cannot resolve seed; the gossip layer will retry it", { seed, error: e as Error });
      }
    }
    if (port === advPort && ips.some((ip) => ownIps.has(ip))) continue;
    if (o.ownAddrs?.includes(seed)) continue;
    const addr = `${ips[0]}:${port}`;
    if (!out.includes(addr)) out.push(addr);
  }
  return out;
}
