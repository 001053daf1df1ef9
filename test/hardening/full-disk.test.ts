/**
 * A full disk when writing state: the state store on a real,
 * full tmpfs inside a private mount namespace (`unshare -m`), and the agent binary
 * starting with its --state-dir on one. Shown: an error naming the file and ENOSPC, no
 * torn file and no temp file left behind, the previous file intact and still loadable.
 * Plus a short write followed by ENOSPC through the store's injectable fs (no root).
 */
import { afterAll, describe, expect, test } from "bun:test";
import * as nodeFs from "node:fs";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createStateStore, type StoreFs } from "../../src/lease/state-store.ts";
import type { Lease } from "../../src/lease/types.ts";
import { silentLogger } from "../../src/log.ts";
import { REPO, createTopology, listNamespaces, requireRoot, type Topology } from "../../sim/netns.ts";
import { BIN } from "../../sim/agents.ts";

const lease: Lease = {
  nodeName: "n1", nodeId: "cd".repeat(16), generation: 3, version: 1, subnet: "10.244.9.0/24", publicIp: "192.0.2.9",
  backend: { type: "vxlan", vtepMac: "0e:00:00:00:00:09" }, claimedAt: 1000, renewedAt: 2000,
};
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  dirs.push(d);
  return d;
};

describe("full disk through the injectable fs", () => {
  test("a short write then ENOSPC: error names the file, old lease.json intact, no temp file", () => {
    const dir = tempDir("weft-hd-fs-");
    createStateStore({ dir, logger: silentLogger }).saveLease(lease);
    const old = readFileSync(join(dir, "lease.json"), "utf8");
    let budget = 40; // bytes the "disk" still takes
    const fullFs: StoreFs = {
      ...nodeFs,
      writeSync: ((fd: number, buf: Uint8Array, off?: number, len?: number) => {
        if (budget <= 0) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
        const n = Math.min(budget, len ?? buf.length);
        budget -= n;
        return nodeFs.writeSync(fd, buf, off, n);
      }) as StoreFs["writeSync"],
    };
    const s = createStateStore({ dir, logger: silentLogger, fs: fullFs });
    expect(() => s.saveLease({ ...lease, version: 2, subnet: "10.244.10.0/24" })).toThrow(/Cannot write .*lease\.json: ENOSPC/);
    expect(readFileSync(join(dir, "lease.json"), "utf8")).toBe(old);
    expect(readdirSync(dir).sort()).toEqual(["lease.json"]);
    expect(createStateStore({ dir, logger: silentLogger }).load()).toEqual({ lease, problems: [] });
  });
});

const rootSkip = requireRoot() ?? (Bun.which("unshare") ? undefined : "needs unshare(1) for a private mount namespace");

describe.skipIf(!!rootSkip)("full disk on a real tmpfs (private mount namespace)", () => {
  test("state store: ENOSPC error, previous files intact and loadable, no torn or temp files", async () => {
    const dir = tempDir("weft-hd-tmpfs-");
    const script = join(dir, "script.ts");
    writeFileSync(
      script,
      `
import { writeFileSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { createStateStore } from ${JSON.stringify(join(REPO, "src/lease/state-store.ts"))};
import { silentLogger } from ${JSON.stringify(join(REPO, "src/log.ts"))};
const lease = ${JSON.stringify(lease)};
const mnt = ${JSON.stringify(join(dir, "mnt"))};
const m = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt]);
if (m.exitCode !== 0) throw new Error("mount: " + m.stderr.toString());
const stateDir = join(mnt, "state");
const s = createStateStore({ dir: stateDir, logger: silentLogger });
s.saveIdentity({ nodeName: "n1", nodeId: lease.nodeId, generation: 3 });
s.saveLease(lease);
const before = { lease: readFileSync(join(stateDir, "lease.json"), "utf8"), identity: readFileSync(join(stateDir, "identity.json"), "utf8") };
// Fill the filesystem to the last byte.
let filled = 0;
try { for (;;) { writeFileSync(join(mnt, "filler-" + filled), Buffer.alloc(4096, 1)); filled++; } } catch (e) { if (e.code !== "ENOSPC") throw e; }
try { for (let i = 0; ; i++) writeFileSync(join(mnt, "small-" + i), "x"); } catch {}
const errors = [];
for (const f of [() => s.saveLease({ ...lease, version: 2, subnet: "10.244.10.0/24", publicIp: "192.0.2.99" }), () => s.saveIdentity({ nodeName: "n1", nodeId: lease.nodeId, generation: 4 })]) {
  try { f(); errors.push(null); } catch (e) { errors.push(e.message); }
}
const after = { lease: readFileSync(join(stateDir, "lease.json"), "utf8"), identity: readFileSync(join(stateDir, "identity.json"), "utf8") };
console.log(JSON.stringify({ filled, errors, same: before.lease === after.lease && before.identity === after.identity, files: readdirSync(stateDir).sort(), loaded: createStateStore({ dir: stateDir, logger: silentLogger }).load() }));
`,
    );
    nodeFs.mkdirSync(join(dir, "mnt"));
    const p = Bun.spawnSync(["unshare", "-m", "--propagation", "private", process.execPath, script], { timeout: 20_000 });
    const out = p.stdout.toString().trim().split("\n").pop() ?? "";
    expect({ code: p.exitCode, err: p.exitCode === 0 ? "" : p.stderr.toString() }).toEqual({ code: 0, err: "" });
    const r = JSON.parse(out) as { filled: number; errors: (string | null)[]; same: boolean; files: string[]; loaded: { lease: Lease; identity: unknown; problems: string[] } };
    expect(r.filled).toBeGreaterThan(0);
    expect(r.errors[0]).toMatch(/^Cannot write .*lease\.json: ENOSPC/);
    expect(r.errors[1]).toMatch(/^Cannot write .*identity\.json: ENOSPC/);
    expect(r.same).toBe(true);
    expect(r.files).toEqual(["identity.json", "lease.json"]);
    expect(r.loaded).toEqual({ identity: { nodeName: "n1", nodeId: lease.nodeId, generation: 3 }, lease, problems: [] });
    // The tmpfs lived only in the child's mount namespace.
    expect(readdirSync(join(dir, "mnt"))).toEqual([]);
  }, 30_000);

  describe.skipIf(!existsSync(BIN))("the agent binary with --state-dir on a full tmpfs", () => {
    let topo: Topology | undefined;
    afterAll(async () => {
      await topo?.cleanup();
      if (topo) expect(listNamespaces(topo.id)).toEqual([]);
    });

    test("exits 1 with a message naming the state file and ENOSPC", async () => {
      const dir = tempDir("weft-hd-agent-");
      topo = createTopology({ prefix: "whd-d", nodes: 1 });
      writeFileSync(join(dir, "key"), Buffer.alloc(32, 3).toString("base64"), { mode: 0o600 });
      writeFileSync(join(dir, "net.json"), JSON.stringify({ Network: "10.244.0.0/16", Backend: { Type: "vxlan" } }));
      nodeFs.mkdirSync(join(dir, "mnt"));
      const mnt = join(dir, "mnt");
      const sh = `mount -t tmpfs -o size=16k tmpfs ${mnt} && mkdir ${mnt}/state && (i=0; while head -c 4096 /dev/zero > ${mnt}/f$i 2>/dev/null; do i=$((i+1)); done; for j in $(seq 1 64); do echo x > ${mnt}/s$j 2>/dev/null; done; true) && exec ${BIN} agent --net-conf ${dir}/net.json --key-file ${dir}/key --node-name full1 --state-dir ${mnt}/state --subnet-file ${dir}/subnet.env --bridge none --api-listen off`;
      const p = Bun.spawnSync(["ip", "netns", "exec", topo.nodes[0]!.ns, "unshare", "-m", "--propagation", "private", "sh", "-c", sh], { timeout: 30_000 });
      const err = p.stderr.toString();
      expect({ code: p.exitCode }).toEqual({ code: 1 });
      expect(err).toMatch(/Cannot write .*state\/identity\.json: ENOSPC/);
    }, 40_000);
  });
});
