/**
 * The compiled agent refuses a cluster key other users could read or replace (root, to
 * own files as other users): exit 2 with a message naming the file, what is wrong and
 * the command that fixes it, before it touches the network. Run inside an empty
 * namespace so an agent that wrongly accepted the key could not reach anything.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO, listNamespaces, requireRoot, sh, uniqueName } from "../../sim/netns.ts";

const BIN = join(REPO, "dist/weft");
const skip = existsSync(BIN) ? requireRoot() : "dist/weft is not built (npm test builds it)";

describe.skipIf(!!skip)("cluster key file owner and mode (root, dist/weft)", () => {
  let dir = "";
  let ns = "";
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "weft-hkey-"));
    writeFileSync(join(dir, "net.json"), JSON.stringify({ Network: "10.244.0.0/16", Backend: { Type: "vxlan" } }));
    ns = uniqueName("whk-");
    sh(["ip", "netns", "add", ns]);
  });
  afterAll(() => {
    if (ns) sh(["ip", "netns", "del", ns], { check: false });
    if (dir) rmSync(dir, { recursive: true, force: true });
    expect(ns ? listNamespaces(ns) : []).toEqual([]);
  });

  const agentWith = (key: string) => {
    const p = Bun.spawnSync(["ip", "netns", "exec", ns, BIN, "agent", "--net-conf", join(dir, "net.json"), "--key-file", key, "--state-dir", join(dir, "state"), "--subnet-file", join(dir, "subnet.env"), "--api-listen", "off"], { timeout: 10_000 });
    return { code: p.exitCode, err: p.stderr.toString() };
  };

  test.each([
    ["mode 0644 (world-readable)", 0o644, 0, 0, "mode 0644 gives group and others access to the cluster key (anyone who reads it can join the cluster and forge leases); run: chmod 600"],
    ["mode 0640 with a group other than root's", 0o640, 0, 65534, "mode 0640 gives group access to the cluster key"],
    ["mode 0600 but owned by another user", 0o600, 65534, 65534, "owned by uid 65534, not by root: that user can replace the key; run: chown root"],
  ] as const)("%s: exit 2 naming the file and the fix", (_what, mode, uid, gid, message) => {
    const key = join(dir, `key-${mode.toString(8)}-${uid}-${gid}`);
    writeFileSync(key, Buffer.alloc(32, 9).toString("base64") + "\n", { mode: 0o600 });
    chownSync(key, uid, gid);
    chmodSync(key, mode);
    const r = agentWith(key);
    expect({ code: r.code }).toEqual({ code: 2 });
    expect(r.err).toContain(`weft agent: read cluster key ${key}: ${message}`);
    expect(r.err).not.toMatch(/\n\s+at /);
  });
});
