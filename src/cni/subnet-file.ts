/**
 * The node's subnet as the plugin sees it: flannel's subnet.env, written by the agent
 * once its lease is settled. Its absence means the agent is not ready yet (CNI code 11,
 * "try again later"); a malformed file is a configuration error (code 7) naming the key.
 */
import { readFileSync } from "node:fs";
import { canonicalCidr, parseCidr } from "../net/cidr.ts";
import { parseSubnetEnv } from "../subnet-env.ts";
import { poolOf, type Pool } from "./ipam.ts";
import { CniCode, CniError } from "./spec.ts";

export interface NodeSubnet {
  file: string;
  /** FLANNEL_NETWORK in network form; the IPv4 node subnet itself when the file has none; absent without IPv4. */
  network?: string;
  /** FLANNEL_IPV6_NETWORK in network form; the IPv6 node subnet itself when the file has none; absent without IPv6. */
  ipv6Network?: string;
  /** One pool per family the file enables: IPv4 (range id 0) first, then IPv6. */
  pools: Pool[];
  mtu: number;
}

/** Parses subnet.env text (pure); `file` names it in errors. */
export function parseNodeSubnet(text: string, file: string): NodeSubnet {
  const env = parseSubnetEnv(text);
  const bad = (key: string, want: string) => new CniError(CniCode.InvalidConfig, `invalid subnet file ${file}: ${key}: expected ${want}, got ${JSON.stringify(env[key] ?? null)}`);
  const cidr = (key: string, family: 4 | 6): string | undefined => {
    const v = env[key];
    if (v === undefined || v === "") return undefined;
    try {
      const c = parseCidr(v);
      if (c.family !== family) throw new Error("wrong family");
      const maxPrefix = family === 4 ? 30 : 126;
      if (c.prefix > maxPrefix) throw new Error("too small");
    } catch {
      throw bad(key, `an IPv${family} prefix of length ${family === 4 ? "0..30" : "0..126"}`);
    }
    return v;
  };
  const v4 = cidr("FLANNEL_SUBNET", 4);
  const v6 = cidr("FLANNEL_IPV6_SUBNET", 6);
  if (!v4 && !v6) throw bad("FLANNEL_SUBNET", "the node subnet, e.g. 10.244.3.1/24 (or FLANNEL_IPV6_SUBNET for IPv6-only pods)");
  const pools: Pool[] = [];
  if (v4) pools.push(poolOf(v4, String(pools.length)));
  if (v6) pools.push(poolOf(v6, String(pools.length)));
  const mtuText = env.FLANNEL_MTU;
  const mtu = Number(mtuText);
  if (mtuText === undefined || !/^\d+$/.test(mtuText) || mtu < 68 || mtu > 65535) throw bad("FLANNEL_MTU", "an integer in 68..65535");
  const networkOf = (key: string, family: 4 | 6, subnet: string | undefined, example: string): string | undefined => {
    if (subnet === undefined) return undefined;
    const text = env[key];
    if (!text) return canonicalCidr(subnet);
    try {
      if (parseCidr(text).family !== family) throw new Error("wrong family");
      return canonicalCidr(text);
    } catch {
      throw bad(key, `the cluster network, e.g. ${example}`);
    }
  };
  const network = networkOf("FLANNEL_NETWORK", 4, v4, "10.244.0.0/16");
  const ipv6Network = networkOf("FLANNEL_IPV6_NETWORK", 6, v6, "fd00:10:244::/56");
  return { file, ...(network ? { network } : {}), ...(ipv6Network ? { ipv6Network } : {}), pools, mtu };
}

/** Reads and parses `file`; a missing file is code 11 naming it. */
export function readNodeSubnet(file: string): NodeSubnet {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      throw new CniError(CniCode.TryAgainLater, `subnet file ${file} not found: the weft agent has no subnet lease yet, try again later`, "weft agent writes it once its lease is settled (see subnetFile in the network config)");
    }
    throw new CniError(CniCode.IoFailure, `read subnet file ${file}: ${(e as Error).message}`);
  }
  return parseNodeSubnet(text, file);
}
