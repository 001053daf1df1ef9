/**
 * packaging/weft.service matches what the agent's sd_notify support expects (Type=notify,
 * watchdog, main-process notify access) and passes `systemd-analyze verify` when present.
 */
import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const unitPath = resolve(import.meta.dir, "../../packaging/weft.service");
const text = readFileSync(unitPath, "utf8");

/** key → values of the [Service] section (continuation lines joined). */
function section(name: string): Map<string, string[]> {
  const body = text.split(/^\[/m).find((s) => s.startsWith(`${name}]`)) ?? "";
  const joined = body.replace(/\\\n\s*/g, " ");
  const out = new Map<string, string[]>();
  for (const line of joined.split("\n")) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

test("service settings the agent relies on", () => {
  const s = section("Service");
  const one = (k: string) => s.get(k)?.at(-1);
  expect(one("Type")).toBe("notify");
  expect(one("NotifyAccess")).toBe("main");
  expect(one("WatchdogSec")).toBe("30s");
  expect(one("Restart")).toBe("on-failure");
  expect(one("KillMode")).toBe("process");
  expect(one("EnvironmentFile")).toBe("-/etc/weft/weft.env");
  expect(one("ExecStart")).toMatch(/^\/usr\/local\/bin\/weft agent .*--subnet-file \/run\/flannel\/subnet\.env/);
  // systemctl reload: SIGHUP re-reads the key file and the log level.
  expect(one("ExecReload")).toBe("/bin/kill -HUP $MAINPID");
  expect(one("AmbientCapabilities")!.split(/\s+/).sort()).toEqual(["CAP_NET_ADMIN", "CAP_NET_RAW"]);
  expect(one("CapabilityBoundingSet")!.split(/\s+/).sort()).toEqual(["CAP_NET_ADMIN", "CAP_NET_RAW"]);
  expect(one("StateDirectory")).toBe("weft");
  expect(one("RuntimeDirectory")!.split(/\s+/)).toContain("flannel");
  expect(Number(one("LimitNOFILE"))).toBeGreaterThanOrEqual(4096);
  // Bun's JIT needs writable+executable memory.
  expect(s.has("MemoryDenyWriteExecute")).toBe(false);
});

const analyze = Bun.which("systemd-analyze");
test.skipIf(!analyze)("systemd-analyze verify accepts the unit (ExecStart pointed at /bin/true)", () => {
  const dir = mkdtempSync(join(tmpdir(), "wop-unit-"));
  try {
    const copy = join(dir, "weft.service");
    writeFileSync(copy, text.replaceAll("/usr/local/bin/weft", "/bin/true"));
    const r = Bun.spawnSync([analyze!, "verify", copy], { stderr: "pipe", stdout: "pipe" });
    expect(r.stderr.toString() + r.stdout.toString()).toBe("");
    expect(r.exitCode).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
