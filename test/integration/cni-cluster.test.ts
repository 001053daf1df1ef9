/**
 * Pods plumbed by weft's own CNI plugin on a real cluster (root): three `dist/weft agent`
 * processes, one per node namespace, joined by gossip; on each node two pods added by
 * calling `dist/weft` as a runtime does, fed that node's subnet.env. Every pod reaches
 * every other pod, for every backend; DEL on a live node leaves the agent's dataplane
 * alone.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseSubnetEnv } from "../../src/subnet-env.ts";
import { agentNode, logOf, readiness, startAgent, stopAgent, until, type AgentNode } from "../../sim/agents.ts";
import { addPod, BIN, cni } from "./cni-invoke.ts";
import { createTopology, exec, ipJson, listNamespaces, ping, requireRoot, type Topology } from "../../sim/netns.ts";

const PREFIX = "wcc-";
const skip = requireRoot() ?? (!existsSync(BIN) ? "dist/weft is not built (npm test builds it)" : undefined) ?? (!Bun.which("curl") ? "curl is needed to read the agents' readiness" : undefined);

interface Node extends AgentNode {
  pods: { ns: string; id: string; ip: string }[];
}

for (const backend of ["vxlan", "host-gw", "udp"] as const) {
  describe.skipIf(!!skip)(`pods added by weft's CNI plugin on 3 agent nodes, ${backend} backend`, () => {
    let topo: Topology;
    let dir: string;
    const nodes: Node[] = [];
    const conf = (n: Node) => ({ cniVersion: "1.0.0", name: "weft", type: "weft", subnetFile: n.subnetFile, dataDir: join(n.dir, "cni") });

    beforeAll(async () => {
      topo = createTopology({ prefix: PREFIX, nodes: 3 });
      dir = mkdtempSync(join(tmpdir(), "weft-cni-cluster-"));
      const keyFile = join(dir, "key");
      const netConf = join(dir, "net-conf.json");
      writeFileSync(keyFile, exec(topo.nodes[0]!.ns, [BIN, "keygen"]).stdout, { mode: 0o600 });
      writeFileSync(netConf, JSON.stringify({ Network: "10.244.0.0/16", Backend: { Type: backend } }));
      topo.nodes.forEach((t, i) => nodes.push({ ...agentNode(`node${i + 1}`, t.ns, t.ip, dir), pods: [] }));
      for (const n of nodes) startAgent(n, { netConf, keyFile, join: topo.nodes.map((t) => `${t.ip}:7946`) });
      for (const n of nodes) {
        await until(`${n.name} ready`, 30_000, () => n.proc!.exitCode === null && readiness(n)?.ready === true).catch((e) => Promise.reject(new Error(`${(e as Error).message}\n${logOf(n)}`)));
      }
      for (const [i, n] of nodes.entries()) {
        for (let k = 0; k < 2; k++) {
          const podNs = topo.addNamespace(`p${i}${k}`);
          const id = `pod-${i}-${k}`;
          const { ip } = addPod(n.ns, { containerId: id, netns: `/run/netns/${podNs}`, ifname: "eth0", conf: conf(n) });
          n.pods.push({ ns: podNs, id, ip });
        }
      }
    }, 90_000);

    afterAll(async () => {
      await Promise.all(nodes.map((n) => stopAgent(n)));
      await topo?.cleanup();
      if (dir) rmSync(dir, { recursive: true, force: true });
      expect(listNamespaces(PREFIX)).toEqual([]);
    }, 30_000);

    test("each pod's address lies in its node's lease", () => {
      for (const n of nodes) {
        const subnet = parseSubnetEnv(readFileSync(n.subnetFile, "utf8")).FLANNEL_SUBNET!;
        const prefix = subnet.split(".").slice(0, 3).join(".") + ".";
        for (const p of n.pods) expect(p.ip.startsWith(prefix)).toBe(true);
      }
    });

    test("every pod reaches every other pod (same node and across nodes)", () => {
      const all = nodes.flatMap((n) => n.pods);
      const failed: string[] = [];
      for (const a of all) for (const b of all) if (a !== b && !ping(a.ns, b.ip, { deadlineMs: 10_000 })) failed.push(`${a.id} -> ${b.id} (${b.ip})`);
      expect(failed).toEqual([]);
    }, 120_000);

    test("DEL of one pod on a live node removes only that pod; the others still talk across nodes", () => {
      const n = nodes[0]!;
      const gone = n.pods.pop()!;
      const routesBefore = JSON.stringify(ipJson(n.ns, "route", "show"));
      const r = cni(n.ns, { command: "DEL", containerId: gone.id, netns: `/run/netns/${gone.ns}`, ifname: "eth0", conf: conf(n) });
      expect([r.code, r.stdout, r.stderr]).toEqual([0, "", ""]);
      expect(ipJson(gone.ns, "link", "show").map((l: { ifname: string }) => l.ifname)).toEqual(["lo"]);
      expect(JSON.stringify(ipJson(n.ns, "route", "show"))).toBe(routesBefore);
      expect(ping(n.pods[0]!.ns, nodes[2]!.pods[0]!.ip, { deadlineMs: 10_000 })).toBe(true);
      for (const x of nodes) expect(x.proc!.exitCode).toBeNull();
    }, 30_000);
  });
}
