/**
 * flannel's subnet.env, the file the CNI `flannel` plugin (or bridge+host-local fed from it)
 * reads to give pods addresses. Written atomically: a reader never sees half a file.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { dirname } from "node:path";
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
 * Writes `content` to `path` via a temp file in the same directory, fsync and rename.
 * On any failure the temp file is removed and the old file stays as it was.
 */
export function writeFileAtomic(path: string, content: string, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, "w", mode);
    const buf = Buffer.from(content);
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {}
    throw new Error(`write ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** Writes subnet.env unless it already holds exactly this content; returns whether it wrote. */
export function writeSubnetEnv(path: string, e: SubnetEnv): boolean {
  const content = formatSubnetEnv(e);
  try {
    if (readFileSync(path, "utf8") === content) return false;
  } catch {}
  writeFileAtomic(path, content);
  return true;
}
