/**
 * host-local's on-disk layout, byte for byte, and the lock that makes concurrent plugin
 * processes safe: real files in a temp dir, real processes racing for one /24 (no root).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { allocate, poolOf, release } from "../../src/cni/ipam.ts";
import { DiskStore, formatRecord, parseRecord } from "../../src/cni/store.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "weft-cni-store-"));
  dirs.push(d);
  return d;
};

describe("records", () => {
  test("a record is host-local's: '<id>\\r\\n<ifname>' in a file named by the address", () => {
    expect(formatRecord("c1 ", "eth0")).toBe("c1\r\neth0");
    expect(parseRecord("10.244.3.2", "c1\r\neth0")).toEqual({ ip: "10.244.3.2", containerId: "c1", ifname: "eth0" });
    expect(parseRecord("fd00::2", "c1\r\neth0\n")).toEqual({ ip: "fd00::2", containerId: "c1", ifname: "eth0" });
    expect(parseRecord("10.244.3.2", "c1\n")).toEqual({ ip: "10.244.3.2", containerId: "c1" });
    for (const other of ["lock", "last_reserved_ip.0", "10.244.3.2.tmp", "notes"]) expect(parseRecord(other, "x")).toBeUndefined();
  });

  test("reserve writes the record and last_reserved_ip.<range>, refuses an existing file, remove is idempotent", () => {
    const data = tmp();
    const s = new DiskStore(data, "weft");
    expect(s.exists()).toBe(false);
    s.locked(() => {
      expect(s.reserve({ ip: "10.244.3.2", containerId: "c1", ifname: "eth0" }, "0")).toBe(true);
      expect(s.reserve({ ip: "10.244.3.2", containerId: "c2", ifname: "eth0" }, "0")).toBe(false);
    });
    const dir = join(data, "weft");
    expect(readdirSync(dir).sort()).toEqual(["10.244.3.2", "last_reserved_ip.0", "lock"]);
    expect(readFileSync(join(dir, "10.244.3.2"), "utf8")).toBe("c1\r\neth0");
    expect(readFileSync(join(dir, "last_reserved_ip.0"), "utf8")).toBe("10.244.3.2");
    expect(s.lastReserved("0")).toBe("10.244.3.2");
    expect(s.list()).toEqual([{ ip: "10.244.3.2", containerId: "c1", ifname: "eth0" }]);
    s.locked(() => {
      s.remove("10.244.3.2");
      s.remove("10.244.3.2");
    });
    expect(s.list()).toEqual([]);
  });

  test("records written by host-local are read and released", () => {
    const data = tmp();
    const dir = join(data, "cbr0");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "10.244.3.7"), "0123abcd\r\neth0");
    writeFileSync(join(dir, "10.244.3.8"), "legacyid");
    writeFileSync(join(dir, "last_reserved_ip.0"), "10.244.3.8");
    const s = new DiskStore(data, "cbr0");
    expect(s.list().sort((a, b) => a.ip.localeCompare(b.ip))).toEqual([
      { ip: "10.244.3.7", containerId: "0123abcd", ifname: "eth0" },
      { ip: "10.244.3.8", containerId: "legacyid" },
    ]);
    // The next address follows host-local's last reservation.
    expect(s.locked(() => allocate(s, [poolOf("10.244.3.1/24", "0")], "new", "eth0"))[0]!.ip).toBe("10.244.3.9");
    expect(s.locked(() => release(s, "legacyid", "eth0"))).toEqual(["10.244.3.8"]);
  });

  test("a store on a missing directory lists nothing and creates nothing", () => {
    const data = tmp();
    const s = new DiskStore(data, "nope");
    expect(s.list()).toEqual([]);
    expect(readdirSync(data)).toEqual([]);
  });
});

const WORKER = `
import { DiskStore } from ${JSON.stringify(resolve(import.meta.dir, "../../src/cni/store.ts"))};
import { allocate, poolOf } from ${JSON.stringify(resolve(import.meta.dir, "../../src/cni/ipam.ts"))};
const [data, id] = process.argv.slice(2);
const s = new DiskStore(data, "race");
const got = s.locked(() => {
  const out = allocate(s, [poolOf("10.244.3.1/24", "0")], id, "eth0");
  // Hold the lock a moment, as a real ADD does while it creates the bridge.
  Bun.sleepSync(5);
  return out;
});
console.log(got[0].ip);
`;

const HOLDER = `
import { appendFileSync } from "node:fs";
import { DiskStore } from ${JSON.stringify(resolve(import.meta.dir, "../../src/cni/store.ts"))};
const [data, id] = process.argv.slice(2);
const s = new DiskStore(data, "race");
s.locked(() => {
  appendFileSync(data + "/trace", "in " + id + "\\n");
  Bun.sleepSync(15);
  appendFileSync(data + "/trace", "out " + id + "\\n");
});
`;

describe("concurrent processes", () => {
  test("the lock admits one process at a time: no two critical sections interleave", async () => {
    const data = tmp();
    const script = join(data, "holder.ts");
    writeFileSync(script, HOLDER);
    const procs = Array.from({ length: 8 }, (_, i) => Bun.spawn([process.execPath, script, data, `p${i}`], { stdout: "ignore", stderr: "pipe" }));
    expect(await Promise.all(procs.map((p) => p.exited))).toEqual(Array(8).fill(0));
    const lines = readFileSync(join(data, "trace"), "utf8").trim().split("\n");
    expect(lines.length).toBe(16);
    for (let i = 0; i < lines.length; i += 2) expect([lines[i], lines[i + 1]]).toEqual([lines[i], lines[i]!.replace("in ", "out ")]);
  }, 60_000);

  // Both the lock and the O_EXCL create guard this; it fails only with neither.
  test("24 plugin processes racing for one /24 get 24 distinct addresses", async () => {
    const data = tmp();
    const script = join(data, "worker.ts");
    writeFileSync(script, WORKER);
    const procs = Array.from({ length: 24 }, (_, i) => Bun.spawn([process.execPath, script, data, `c${i}`], { stdout: "pipe", stderr: "pipe" }));
    const outs = await Promise.all(procs.map(async (p) => ({ out: (await new Response(p.stdout).text()).trim(), err: await new Response(p.stderr).text(), code: await p.exited })));
    for (const o of outs) expect([o.code, o.err]).toEqual([0, ""]);
    const ips = outs.map((o) => o.out);
    expect(new Set(ips).size).toBe(24);
    const s = new DiskStore(data, "race");
    expect(s.list().length).toBe(24);
    expect(new Set(s.list().map((r) => r.containerId)).size).toBe(24);
  }, 60_000);
});

describe("I/O failures", () => {
  test("a records directory that cannot be made is the spec's I/O error (code 5) naming it", () => {
    const data = tmp();
    writeFileSync(join(data, "weft"), "a file where the directory should be");
    const s = new DiskStore(data, "weft");
    let err: { code?: number; message?: string } | undefined;
    try {
      s.locked(() => 1);
    } catch (e) {
      err = e as typeof err;
    }
    expect(err?.code).toBe(5);
    expect(err?.message).toContain(`lock IPAM records in ${join(data, "weft")}`);
  });
});
