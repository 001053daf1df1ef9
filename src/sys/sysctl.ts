/**
 * Kernel parameters through /proc/sys (what sysctl(8) does), synchronous so they happen
 * in the calling thread's network namespace. Names use sysctl's dotted form, where a
 * "/" inside a component stands for "." (`net.ipv6.conf.weft/1.accept_ra` is the
 * interface "weft.1"); pass an array of components to avoid that rule altogether.
 *
 * @example
 * writeSysctl("net.ipv4.ip_forward", 1);
 * writeSysctl(["net", "ipv6", "conf", "weft.1", "accept_ra"], 0);
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export type SysctlName = string | readonly string[];

export interface SysctlOptions {
  /** Mount point of the sysctl tree; tests point it at a temp dir. */
  root?: string;
}

/** Components of a sysctl name, validated; throws naming the input. */
export function sysctlComponents(name: SysctlName): string[] {
  const parts = typeof name === "string" ? name.split(".").map((p) => p.replaceAll("/", ".")) : [...name];
  const shown = typeof name === "string" ? name : parts.join(".");
  if (parts.length === 0) throw new Error(`invalid sysctl name ${JSON.stringify(shown)}: empty`);
  for (const p of parts) {
    if (typeof p !== "string" || p === "" || p === "." || p === ".." || p.includes("/") || p.includes("\0")) {
      throw new Error(`invalid sysctl name ${JSON.stringify(shown)}: bad component ${JSON.stringify(p)}`);
    }
  }
  return parts;
}

/** Absolute path of a sysctl under `root` (default /proc/sys). */
export function sysctlPath(name: SysctlName, { root = "/proc/sys" }: SysctlOptions = {}): string {
  return join(root, ...sysctlComponents(name));
}

const display = (name: SysctlName): string => (typeof name === "string" ? name : name.join("."));

function explain(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err.code === "ENOENT") return "no such sysctl (module not loaded or device missing?)";
  if (err.code === "EACCES" || err.code === "EPERM") return "permission denied (needs root/CAP_NET_ADMIN)";
  if (err.code === "EROFS") return "read-only /proc/sys (container without a private network namespace?)";
  if (err.code === "EINVAL") return "value rejected by the kernel";
  return err.message ?? String(e);
}

/** Reads a sysctl's value, trimmed (e.g. "1"). */
export function readSysctl(name: SysctlName, opts: SysctlOptions = {}): string {
  const path = sysctlPath(name, opts);
  try {
    return readFileSync(path, "utf8").trim();
  } catch (e) {
    throw new Error(`read sysctl ${display(name)} (${path}): ${explain(e)}`, { cause: e });
  }
}

/** Writes a sysctl; throws "write sysctl <name>=<value> (<path>): <reason>". */
export function writeSysctl(name: SysctlName, value: string | number, opts: SysctlOptions = {}): void {
  const path = sysctlPath(name, opts);
  const text = String(value);
  if (/[\n\0]/.test(text)) throw new Error(`write sysctl ${display(name)}: value ${JSON.stringify(text)} contains a newline or NUL`);
  try {
    writeFileSync(path, text + "\n", { flag: "r+" });
  } catch (e) {
    throw new Error(`write sysctl ${display(name)}=${text} (${path}): ${explain(e)}`, { cause: e });
  }
}
