/**
 * flannel's subnet.env, the file the CNI `flannel` plugin (or bridge+host-local fed from it)
 * reads to give pods addresses. Written atomically (a reader never sees half a file) and
 * only into a directory no other user can write to (src/atomic-file.ts).
 */
import { lstatSync, readFileSync } from "node:fs";
import { writeFileAtomic } from "./atomic-file.ts";
import { formatCidr, formatIp, nthAddress, parseCidr } from "./net/cidr.ts";

export interface SubnetEnv {
  /** IPv4 cluster network, e.g. "10.244.0.0/16" (with `subnet`; both absent in an IPv6-only cluster). */
  network?: string;
  /** This node's IPv4 lease, e.g. "10.244.3.0/24" (written as the gateway form 10.244.3.1/24). */
  subnet?: string;
  /** IPv6 cluster network and this node's IPv6 lease, when IPv6 is enabled. */
  ipv6Network?: string;
  ipv6Subnet?: string;
  mtu: number;
  ipMasq: boolean;
}

/** The subnet's first address with its prefix length: "10.244.3.1/24", "fd00:10:244:3::1/64". */
function gatewayForm(subnet: string): string {
  const sub = parseCidr(subnet);
  return `${formatIp(nthAddress(sub, 1))}/${sub.prefix}`;
}

/**
 * flannel's lines in flannel's order (pkg/subnet WriteSubnetFile): the IPv4 pair when
 * IPv4 is enabled, the IPv6 pair when IPv6 is enabled (an IPv6-only node writes no IPv4
 * line), then MTU and IPMASQ.
 */
export function formatSubnetEnv(e: SubnetEnv): string {
  const lines: string[] = [];
  if (e.network !== undefined && e.subnet !== undefined) lines.push(`FLANNEL_NETWORK=${formatCidr(parseCidr(e.network))}`, `FLANNEL_SUBNET=${gatewayForm(e.subnet)}`);
  if (e.ipv6Network !== undefined && e.ipv6Subnet !== undefined) lines.push(`FLANNEL_IPV6_NETWORK=${formatCidr(parseCidr(e.ipv6Network))}`, `FLANNEL_IPV6_SUBNET=${gatewayForm(e.ipv6Subnet)}`);
  return [...lines, `FLANNEL_MTU=${e.mtu}`, `FLANNEL_IPMASQ=${e.ipMasq}`, ""].join("\n");
}

/** Parses the KEY=VALUE lines back (tests, `weft demo`). */
export function parseSubnetEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/**
 * Writes subnet.env unless it already is a regular file holding exactly this content;
 * returns whether it wrote. Written through {@link writeFileAtomic}: a refused directory
 * (writable by others, or theirs) throws naming it. An existing file's permission bits
 * are kept (as flannel keeps them: an operator may have narrowed who reads it); a new
 * file gets 0644.
 */
export function writeSubnetEnv(path: string, e: SubnetEnv): boolean {
  const content = formatSubnetEnv(e);
  let mode = 0o644;
  try {
    // Not through a symlink: one planted at the path is replaced by the real file, 0644.
    const st = lstatSync(path);
    if (st.isFile()) {
      if (readFileSync(path, "utf8") === content) return false;
      mode = st.mode & 0o777;
    }
  } catch {}
  writeFileAtomic(path, content, mode);
  return true;
}
