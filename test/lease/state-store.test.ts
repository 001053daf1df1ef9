import { afterEach, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createStateStore, nextIdentity, type StoreFs } from "../../src/lease/state-store.ts";
import type { Logger } from "../../src/log.ts";
import type { Lease } from "../../src/lease/types.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "weft-lease-store-"));
  dirs.push(d);
  return d;
};

function recordingLogger() {
  const lines: string[] = [];
  const l: Logger = {
    debug: () => {},
    info: () => {},
    warn: (m) => void lines.push(`warn ${m}`),
    error: (m) => void lines.push(`error ${m}`),
    child: () => l,
  };
  return { logger: l, lines };
}

const lease: Lease = {
  nodeName: "n1", nodeId: "ab".repeat(16), generation: 4, version: 2, subnet: "10.244.7.0/24", publicIp: "192.0.2.7",
  backend: { type: "vxlan", vtepMac: "0e:00:00:00:00:01" }, claimedAt: 1000, renewedAt: 2000,
};

describe("state store", () => {
  test("round-trips identity and lease; files are complete JSON and no temp files remain", () => {
    const dir = join(tempDir(), "nested", "state");
    const { logger } = recordingLogger();
    const s = createStateStore({ dir, logger });
    expect(s.load()).toEqual({ problems: [] });
    s.saveIdentity({ nodeName: "n1", nodeId: lease.nodeId, generation: 4 });
    s.saveLease(lease);
    expect(s.load()).toEqual({ identity: { nodeName: "n1", nodeId: lease.nodeId, generation: 4 }, lease, problems: [] });
    expect(readdirSync(dir).sort()).toEqual(["identity.json", "lease.json"]);
    expect(JSON.parse(readFileSync(join(dir, "lease.json"), "utf8"))).toEqual(lease);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
  });

  test("a truncated lease file is set aside with a clear logged error and the identity survives", () => {
    const dir = tempDir();
    const { logger, lines } = recordingLogger();
    const s = createStateStore({ dir, logger });
    s.saveIdentity({ nodeName: "n1", nodeId: lease.nodeId, generation: 4 });
    s.saveLease(lease);
    const text = readFileSync(join(dir, "lease.json"), "utf8");
    writeFileSync(join(dir, "lease.json"), text.slice(0, text.length / 2));
    const loaded = s.load();
    expect(loaded.lease).toBeUndefined();
    expect(loaded.identity?.generation).toBe(4);
    expect(loaded.problems).toHaveLength(1);
    expect(loaded.problems[0]).toMatch(/^Cannot load own lease .*lease\.json: .*moved to .*lease\.json\.corrupt-\d+$/);
    expect(lines.some((l) => l.startsWith("error Cannot load own lease"))).toBe(true);
    expect(readdirSync(dir).some((f) => f.startsWith("lease.json.corrupt-"))).toBe(true);
    // The next load is clean (the bad file no longer blocks the node).
    expect(s.load().problems).toEqual([]);
  });

  test("a corrupted identity (valid JSON, wrong shape) is reported; the lease keeps generation and nodeId", () => {
    const dir = tempDir();
    const { logger } = recordingLogger();
    const s = createStateStore({ dir, logger });
    s.saveLease(lease);
    writeFileSync(join(dir, "identity.json"), JSON.stringify({ nodeId: "nope", generation: "x" }));
    const loaded = s.load();
    expect(loaded.identity).toBeUndefined();
    expect(loaded.problems[0]).toMatch(/Cannot load node identity .*nodeName/);
    const next = nextIdentity(loaded, "n1");
    expect(next).toEqual({ nodeName: "n1", nodeId: lease.nodeId, generation: 5 });
  });

  test("binary garbage is reported, not thrown", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "identity.json"), new Uint8Array([0, 255, 1, 2]));
    const { logger } = recordingLogger();
    const loaded = createStateStore({ dir, logger }).load();
    expect(loaded.identity).toBeUndefined();
    expect(loaded.problems).toHaveLength(1);
  });

  test("generation never goes backwards across starts, even if identity.json is lost", () => {
    const dir = tempDir();
    const { logger } = recordingLogger();
    const s = createStateStore({ dir, logger });
    let prev = 0;
    for (let i = 0; i < 5; i++) {
      const id = nextIdentity(s.load(), "n1");
      expect(id.generation).toBeGreaterThan(prev);
      prev = id.generation;
      s.saveIdentity(id);
      s.saveLease({ ...lease, nodeId: id.nodeId, generation: id.generation });
    }
    const nodeId = s.load().identity!.nodeId;
    rmSync(join(dir, "identity.json"));
    const id = nextIdentity(s.load(), "n1");
    expect(id.nodeId).toBe(nodeId);
    expect(id.generation).toBe(prev + 1);
    // A fresh dir gives a fresh random id at generation 1.
    const fresh = nextIdentity({ problems: [] }, "n1");
    expect(fresh.generation).toBe(1);
    expect(fresh.nodeId).toMatch(/^[0-9a-f]{32}$/);
    expect(fresh.nodeId).not.toBe(nodeId);
  });

  test("an unwritable state dir is an error naming the file; nothing is torn", () => {
    const base = tempDir();
    const notADir = join(base, "file");
    writeFileSync(notADir, "x");
    const { logger } = recordingLogger();
    const s = createStateStore({ dir: join(notADir, "state"), logger });
    expect(() => s.saveLease(lease)).toThrow(/^Cannot write .*file\/state\/lease\.json: (ENOTDIR|EEXIST)/);
  });

  test("a full disk mid-write leaves the old file intact and no temp file", () => {
    const dir = tempDir();
    const { logger } = recordingLogger();
    createStateStore({ dir, logger }).saveLease(lease);
    let calls = 0;
    const fullFs: StoreFs = {
      ...fs,
      writeSync: ((fd: number, buf: Uint8Array, off: number, len: number) => {
        if (calls++ > 0) throw Object.assign(new Error("no space left on device"), { code: "ENOSPC" });
        return fs.writeSync(fd, buf, off, Math.min(len, 10));
      }) as StoreFs["writeSync"],
    };
    const s = createStateStore({ dir, logger, fs: fullFs });
    expect(() => s.saveLease({ ...lease, version: 99 })).toThrow(/^Cannot write .*lease\.json: ENOSPC: no space left/);
    expect(calls).toBe(2);
    expect(readdirSync(dir)).toEqual(["lease.json"]);
    expect(createStateStore({ dir, logger }).load().lease).toEqual(lease);
  });
});
