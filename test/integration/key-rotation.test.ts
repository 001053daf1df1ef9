/**
 * Rotating the cluster key with reloads only (root): three `dist/weft agent` processes,
 * each with its own copy of the key file, taken through the documented procedure — new
 * key added second, moved first, old key removed — with a SIGHUP (what `systemctl reload
 * weft` sends) to each agent after each edit. All the while every agent must see all
 * three alive (no partition at any step) and no packet may fail to decrypt. A reload of
 * a key file others can read is refused and changes nothing. At the end an agent holding
 * only the old key cannot join.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { keyFingerprint } from "../../src/gossip/keyring.ts";
import { api, BIN, logOf, readiness, startAgentCluster, until, type AgentCluster, type AgentNode } from "../../sim/agents.ts";
import { listNamespaces, requireRoot } from "../../sim/netns.ts";

const PREFIX = "wkr-";
const skip = requireRoot() ?? (!existsSync(BIN) ? "dist/weft is not built (npm test builds it)" : undefined) ?? (!Bun.which("curl") ? "curl is needed to read the agents' API" : undefined);

const K2 = Buffer.alloc(32, 0x22);
const b64 = (k: Buffer) => k.toString("base64");
const keyFileOf = (dir: string, n: AgentNode) => join(dir, n.name, "key");

const status = (n: AgentNode) => {
  const r = api(n, "/v1/status");
  return r?.status === 200 ? (JSON.parse(r.body) as { members: { alive: number; suspect: number; dead: number; left: number }; clusterKeys: { count: number; primary: string } | null }) : undefined;
};
const metric = (n: AgentNode, name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(api(n, "/metrics")?.body ?? "")?.[1] ?? NaN);

describe.skipIf(!!skip)("cluster key rotation with reloads only, 3 agents", () => {
  let c: AgentCluster;
  let nodes: AgentNode[] = [];
  /** The key the cluster started with (each node has its own copy of the key file). */
  let K1: Buffer;
  /** Every moment an agent did not see exactly 3 alive members, as "node: alive/suspect/dead". */
  const partitions: string[] = [];
  let watching = false;
  let watcher: Promise<void> | undefined;

  const writeKeys = (n: AgentNode, keys: Buffer[]) => writeFileSync(keyFileOf(c.dir, n), keys.map(b64).join("\n") + "\n", { mode: 0o600 });
  const three = () => nodes.slice(0, 3);
  /** Edits every key file, then reloads the agents one by one, each confirmed through its status. */
  async function rotate(keys: Buffer[]) {
    for (const n of three()) writeKeys(n, keys);
    for (const n of three()) {
      n.proc!.kill("SIGHUP");
      await until(`${n.name} reloaded`, 5_000, () => {
        const k = status(n)?.clusterKeys;
        return k?.count === keys.length && k.primary === keyFingerprint(keys[0]!);
      });
      await Bun.sleep(1_000); // the cluster runs a while with this agent ahead of the others
    }
    await Bun.sleep(3_000); // longer than a probe round and a suspicion timeout would need to show
  }

  beforeAll(async () => {
    // A fourth node (not started yet) keeps the old key: it tries to join at the end.
    c = await startAgentCluster({ prefix: PREFIX, nodes: 4, running: 3, netConf: { Network: "10.244.0.0/16", Backend: { Type: "vxlan" } }, keyFile: keyFileOf });
    nodes = c.nodes;
    K1 = Buffer.from(readFileSync(c.keyFile, "utf8").trim(), "base64");
    await until("all see 3 alive", 10_000, () => three().every((n) => status(n)?.members.alive === 3));
    watching = true;
    watcher = (async () => {
      while (watching) {
        for (const n of three()) {
          const m = status(n)?.members;
          if (!m) partitions.push(`${n.name}: no answer`);
          else if (m.alive !== 3 || m.suspect || m.dead) partitions.push(`${n.name}: ${m.alive}/${m.suspect}/${m.dead}`);
        }
        await Bun.sleep(100);
      }
    })();
  }, 60_000);

  afterAll(async () => {
    watching = false;
    await watcher;
    await c?.stop();
    expect(listNamespaces(PREFIX)).toEqual([]);
  }, 30_000);

  test("add the new key second, move it first, remove the old one: 3 alive throughout, nothing fails to decrypt", async () => {
    expect(status(nodes[0]!)!.clusterKeys).toEqual({ count: 1, primary: keyFingerprint(K1) });
    await rotate([K1, K2]);
    await rotate([K2, K1]);
    await rotate([K2]);
    expect(partitions).toEqual([]);
    for (const n of three()) {
      expect(status(n)!.clusterKeys).toEqual({ count: 1, primary: keyFingerprint(K2) });
      expect(metric(n, "weft_gossip_decrypt_failures_total")).toBe(0);
      expect(metric(n, "weft_cluster_keys")).toBe(1);
      expect(logOf(n)).toContain("Reloaded the cluster key file");
      expect(logOf(n)).not.toContain(b64(K2));
    }
  }, 90_000);

  test("a key file others can read is refused on reload: logged, the keys in use stay", async () => {
    const n = nodes[0]!;
    chmodSync(keyFileOf(c.dir, n), 0o644);
    n.proc!.kill("SIGHUP");
    await until("the refusal in the log", 5_000, () => logOf(n).includes("Cannot reload the cluster key file; keeping the keys in use"));
    expect(logOf(n)).toContain(`mode 0644 gives group and others access to the cluster key`);
    expect(status(n)!.clusterKeys).toEqual({ count: 1, primary: keyFingerprint(K2) });
    expect(n.proc!.exitCode).toBeNull();
    chmodSync(keyFileOf(c.dir, n), 0o600);
    await Bun.sleep(2_000);
    expect(partitions).toEqual([]);
  }, 30_000);

  test("an agent holding only the old key cannot join: it never gets ready, the three stay three and count its packets as decrypt failures", async () => {
    const old = nodes[3]!;
    c.start(old);
    await until("the seeds refusing its packets", 15_000, () => three().some((n) => metric(n, "weft_gossip_decrypt_failures_total") > 0));
    await Bun.sleep(3_000);
    expect(readiness(old)?.ready).not.toBe(true);
    for (const n of three()) expect(status(n)!.members).toEqual({ alive: 3, suspect: 0, dead: 0, left: 0 });
    expect(logOf(old)).toContain("join: no seed answered, retrying");
    watching = false;
    await watcher;
    expect(partitions).toEqual([]);
  }, 30_000);
});
