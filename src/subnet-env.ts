/**
 * flannel's subnet.env, the file the CNI `flannel` plugin (or bridge+host-local fed from it)
 * reads to give pods addresses. Written atomically (a reader never sees half a file) and
 * only into a directory no other user can write to (src/atomic-file.ts).
 */
import { lstatSync, readFileSync } from "node:fs";
import { writeFileAtomic } from "./atomic-file.ts";
import { formatCidr, formatIp, nthAddress, parseCidr } from "./net/cidr.ts";

export interface SubnetEnv {
  /** Cluster network, e.g. "10.244.0.0/16". */
  network: string;
  /** This node's lease, e.g. "10.244.3.0/24" (written as the gateway form 10.244.3.1/24). */
  subnet: string;
  mtu: number;
  ipMasq: boolean;
}

export function formatSubnetEnv(e: SubnetEnv): string {
  const sub = parseCidr(e.subnet);
  const gateway = `${formatIp(nthAddress(sub, 1))}/${sub.prefix}`;
  return [`FLANNEL_NETWORK=${formatCidr(parseCidr(e.network))}`, `FLANNEL_SUBNET=${gateway}`, `FLANNEL_MTU=${e.mtu}`, `FLANNEL_IPMASQ=${e.ipMasq}`, ""].join("\n");
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
