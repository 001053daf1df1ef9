/**
 * The node's persisted state in --state-dir:
 *   identity.json  {nodeName, nodeId, generation}   rewritten on every start (generation+1)
 *   lease.json     the own committed lease record     rewritten on commit/refresh/renumber
 * Each write is atomic (temp file in the same dir, fsync, rename, fsync dir), so a crash
 * leaves the old or the new file, never a torn one. A file that is unreadable, truncated
 * or fails validation is moved aside as "<name>.corrupt-<ms>" and reported; the caller
 * recovers from peers (see cluster.ts). The lease record repeats the generation, so
 * losing identity.json alone cannot send the generation backwards.
 */
import * as nodeFs from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { z } from "zod";
import type { Logger } from "../log.ts";
import { MAX_GENERATION, nodeIdPattern, nodeNamePattern } from "./record-codec.ts";
import type { Lease } from "./types.ts";

export interface NodeIdentity {
  nodeName: string;
  nodeId: string;
  generation: number;
}

export interface LoadedState {
  identity?: NodeIdentity;
  lease?: Lease;
  /** One line per file that had to be set aside. */
  problems: string[];
}

/** The subset of node:fs the store uses; injectable so tests can simulate a full disk. */
export type StoreFs = Pick<
  typeof nodeFs,
  "mkdirSync" | "openSync" | "writeSync" | "fsyncSync" | "closeSync" | "renameSync" | "unlinkSync" | "readFileSync" | "existsSync"
>;

export interface StateStore {
  readonly dir: string;
  load(): LoadedState;
  saveIdentity(id: NodeIdentity): void;
  saveLease(lease: Lease): void;
}

const identitySchema = z.object({
  nodeName: z.string().regex(nodeNamePattern),
  nodeId: z.string().regex(nodeIdPattern),
  generation: z.number().int().min(0).max(MAX_GENERATION),
});

const leaseSchema = z.object({
  nodeName: z.string().regex(nodeNamePattern),
  nodeId: z.string().regex(nodeIdPattern),
  generation: z.number().int().min(1),
  version: z.number().int().min(0),
  subnet: z.string().min(1).max(43).optional(),
  ipv6Subnet: z.string().min(1).max(43).optional(),
  publicIp: z.string().min(1).max(45).optional(),
  publicIpv6: z.string().min(1).max(45).optional(),
  backend: z.object({ type: z.enum(["vxlan", "host-gw", "udp", "wireguard"]), vtepMac: z.string().optional(), publicKey: z.string().optional() }),
  claimedAt: z.number().int().min(0),
  renewedAt: z.number().int().min(0).optional(),
  deleted: z.boolean().optional(),
}).refine((l) => l.subnet !== undefined || l.ipv6Subnet !== undefined, { error: "a lease needs subnet or ipv6Subnet", path: ["subnet"] });

export const newNodeId = (): string => randomBytes(16).toString("hex");

/**
 * Opens the store in `dir` (created 0700 if missing on first write).
 * @example
 *   const store = createStateStore({ dir: "/var/lib/weft", logger });
 *   const { identity, lease } = store.load();
 */
export function createStateStore({ dir, logger, fs = nodeFs }: { dir: string; logger: Logger; fs?: StoreFs }): StateStore {
  const identityPath = join(dir, "identity.json");
  const leasePath = join(dir, "lease.json");

  function readJson<T>(path: string, schema: z.ZodType<T>, what: string, problems: string[]): T | undefined {
    if (!fs.existsSync(path)) return undefined;
    let problem: string;
    try {
      const text = fs.readFileSync(path, "utf8");
      const parsed = schema.safeParse(JSON.parse(text));
      if (parsed.success) return parsed.data;
      const i = parsed.error.issues[0];
      problem = `${i?.path.join(".") || "(root)"}: ${i?.message ?? "invalid"}`;
    } catch (e) {
      problem = (e as Error).message;
    }
    const aside = `${path}.corrupt-${Date.now()}`;
    let moved = "";
    try {
      fs.renameSync(path, aside);
      moved = `; moved to ${aside}`;
    } catch (e) {
      moved = `; could not move it aside: ${(e as Error).message}`;
    }
    const line = `Cannot load ${what} ${path}: ${problem}${moved}`;
    logger.error(`${line}; recovering from peers`, { file: path });
    problems.push(line);
    return undefined;
  }

  function writeAtomic(path: string, value: unknown): void {
    const data = Buffer.from(JSON.stringify(value, null, 2) + "\n");
    const tmp = join(dir, `.${path.slice(dir.length + 1)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
    let fd: number | undefined;
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      fd = fs.openSync(tmp, "wx", 0o600);
      let off = 0;
      while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fd = undefined;
      fs.renameSync(tmp, path);
    } catch (e) {
      if (fd !== undefined) {
        try {
          fs.closeSync(fd);
        } catch {}
      }
      try {
        fs.unlinkSync(tmp);
      } catch {}
      const code = (e as NodeJS.ErrnoException).code;
      throw new Error(`Cannot write ${path}: ${code ? `${code}: ` : ""}${(e as Error).message}`, { cause: e });
    }
    // The rename is durable only once the directory entry is on disk.
    try {
      const dfd = fs.openSync(dir, "r");
      try {
        fs.fsyncSync(dfd);
      } finally {
        fs.closeSync(dfd);
      }
    } catch (e) {
      logger.warn("Cannot fsync state dir", { dir, error: e as Error });
    }
  }

  return {
    dir,
    load() {
      const problems: string[] = [];
      const identity = readJson(identityPath, identitySchema, "node identity", problems);
      const lease = readJson(leasePath, leaseSchema, "own lease", problems) as Lease | undefined;
      const out: LoadedState = { problems };
      if (identity) out.identity = identity;
      if (lease) out.lease = lease;
      return out;
    },
    saveIdentity: (id) => writeAtomic(identityPath, id),
    saveLease: (lease) => writeAtomic(leasePath, lease),
  };
}

/**
 * The identity for this start: the persisted one with generation + 1, or a fresh nodeId.
 * The generation never goes below one already written to identity.json or lease.json.
 */
export function nextIdentity(state: LoadedState, nodeName: string): NodeIdentity {
  const id = state.identity;
  const lease = state.lease;
  // A renamed host keeps its nodeId: it identifies the machine, the name record is new.
  const nodeId = id?.nodeId ?? lease?.nodeId ?? newNodeId();
  let gen = id && id.nodeId === nodeId ? id.generation : 0;
  if (lease && lease.nodeId === nodeId) gen = Math.max(gen, lease.generation);
  return { nodeName, nodeId, generation: gen + 1 };
}
