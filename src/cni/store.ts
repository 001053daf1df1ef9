/**
 * IPAM records on disk in host-local's layout, so operators and tools read them the same:
 *
 *   <dataDir>/<network>/10.244.3.5          "<containerID>\r\n<ifname>"  (one file per address)
 *   <dataDir>/<network>/last_reserved_ip.0  "10.244.3.5"                 (per range id)
 *   <dataDir>/<network>/lock                flock(2) target serialising every plugin process
 *
 * A record is created with O_EXCL, so an address is never written twice even if the lock
 * were bypassed. Reading tolerates host-local's oldest format (container id alone).
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { lockFile } from "../sys/flock.ts";
import type { Allocation, AllocationStore } from "./ipam.ts";
import { CniCode, CniError } from "./spec.ts";

/** A file-system failure as the spec's I/O error (code 5), the path in the message. */
const ioError = (what: string, e: unknown) => new CniError(CniCode.IoFailure, `${what}: ${(e as Error).message}`, undefined, { cause: e });

export const LOCK_FILE = "lock";
export const LAST_RESERVED_PREFIX = "last_reserved_ip.";
const LINE_BREAK = "\r\n";

/** File name → record, or undefined for files that are not address records. */
export function parseRecord(name: string, content: string): Allocation | undefined {
  if (name === LOCK_FILE || name.startsWith(LAST_RESERVED_PREFIX) || !/^[0-9a-fA-F.:]+$/.test(name)) return undefined;
  const text = content.trim();
  const i = text.indexOf(LINE_BREAK);
  if (i < 0) return { ip: name, containerId: text };
  return { ip: name, containerId: text.slice(0, i).trim(), ifname: text.slice(i + LINE_BREAK.length).trim() };
}

/** A record's file content. */
export const formatRecord = (containerId: string, ifname: string): string => `${containerId.trim()}${LINE_BREAK}${ifname}`;

export class DiskStore implements AllocationStore {
  /** `<dataDir>/<network>`. */
  readonly dir: string;

  constructor(dataDir: string, network: string) {
    this.dir = join(dataDir, network);
  }

  /** Whether the network's directory exists (DEL on a network never used creates nothing). */
  exists(): boolean {
    return existsSync(this.dir);
  }

  locked<T>(fn: () => T): T {
    let lock;
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o755 });
      lock = lockFile(join(this.dir, LOCK_FILE));
    } catch (e) {
      throw ioError(`lock IPAM records in ${this.dir}`, e);
    }
    try {
      return fn();
    } finally {
      lock.release();
    }
  }

  list(): Allocation[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw ioError(`list allocations in ${this.dir}`, e);
    }
    const out: Allocation[] = [];
    for (const name of names) {
      if (parseRecord(name, "") === undefined) continue;
      let content: string;
      try {
        content = readFileSync(join(this.dir, name), "utf8");
      } catch {
        continue; // removed meanwhile, or a directory
      }
      const r = parseRecord(name, content);
      if (r) out.push(r);
    }
    return out;
  }

  reserve(a: Required<Allocation>, rangeId: string): boolean {
    const path = join(this.dir, a.ip);
    let fd: number;
    try {
      fd = openSync(path, "wx", 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw ioError(`reserve ${a.ip} in ${this.dir}`, e);
    }
    try {
      writeSync(fd, formatRecord(a.containerId, a.ifname));
      closeSync(fd);
    } catch (e) {
      try {
        closeSync(fd);
      } catch {}
      try {
        unlinkSync(path);
      } catch {}
      throw ioError(`reserve ${a.ip} in ${this.dir}`, e);
    }
    try {
      writeFileSync(join(this.dir, LAST_RESERVED_PREFIX + rangeId), a.ip, { mode: 0o644 });
    } catch (e) {
      this.remove(a.ip);
      throw ioError(`record the last reserved address in ${this.dir}`, e);
    }
    return true;
  }

  lastReserved(rangeId: string): string | undefined {
    try {
      return readFileSync(join(this.dir, LAST_RESERVED_PREFIX + rangeId), "utf8").trim() || undefined;
    } catch {
      return undefined;
    }
  }

  remove(ip: string): void {
    try {
      unlinkSync(join(this.dir, ip));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw ioError(`release ${ip} in ${this.dir}`, e);
    }
  }
}
