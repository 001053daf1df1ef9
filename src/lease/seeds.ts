/**
 * The seed list as gossip addresses: "ip:port" or "[ipv6]:port", without this node's own address, so
 * every node of a cluster can share one list. Host names go through an injected resolver
 * (the system resolver in production); one that does not resolve is kept as written and
 * left to the gossip layer's retries.
 */
import { lookup } from "node:dns/promises";
import type { Logger } from "../log.ts";
import { formatIp, parseIp } from "../net/cidr.ts";
import { hostOfAddr } from "./families.ts";

/** Resolves a host name to addresses of one family (the family this node gossips over). */
export type ResolveHost = (host: string, family: 4 | 6) => Promise<string[]>;

/** The system resolver. */
export const systemResolveHost: ResolveHost = async (host, family) => (await lookup(host, { all: true, family })).map((a) => a.address);

export interface SeedOptions {
  /** "host:port" entries as configured. */
  seeds: string[];
  /** This node's gossip address "ip:port" or "[ipv6]:port". */
  advertiseAddr: string;
  /** This node's public addresses. */
  publicIps: string[];
  /** Extra addresses ("ip:port" or "ip") that count as this node's own. */
  ownAddrs?: string[];
  resolveHost: ResolveHost;
  log: Logger;
}

export async function resolveSeeds(o: SeedOptions): Promise<string[]> {
  const advIp = hostOfAddr(o.advertiseAddr);
  const advPort = o.advertiseAddr.slice(o.advertiseAddr.lastIndexOf(":") + 1);
  const ownIps = new Set([advIp, ...o.publicIps, ...(o.ownAddrs ?? [])]);
  const out: string[] = [];
  for (const seed of o.seeds) {
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(seed);
    if (!m) {
      o.log.warn("Ignoring malformed seed (expected host:port)", { seed });
      continue;
    }
    const [, written, port] = m as unknown as [string, string, string];
    // IPv6 literals in the one textual form the transport reports them in.
    let host = written;
    if (host.includes(":")) {
      try {
        host = formatIp(parseIp(host));
      } catch {}
    }
    let ips = [host];
    if (!/^[\d.]+$/.test(host) && !host.includes(":")) {
      try {
        const found = await o.resolveHost(host, o.advertiseAddr.startsWith("[") ? 6 : 4);
        if (found.length > 0) ips = found;
      } catch (e) {
        o.log.warn("Cannot resolve seed; the gossip layer will retry it", { seed, error: e as Error });
      }
    }
    if (port === advPort && ips.some((ip) => ownIps.has(ip))) continue;
    if (o.ownAddrs?.includes(seed)) continue;
    const addr = ips[0]!.includes(":") ? `[${ips[0]}]:${port}` : `${ips[0]}:${port}`;
    if (!out.includes(addr)) out.push(addr);
  }
  return out;
}
