/**
 * Pods plumbed by weft's own CNI plugin on a real cluster (root): three `dist/weft agent`
 * processes, one per node namespace, joined by gossip; on each node two pods added by
 * calling `dist/weft` as a runtime does, fed that node's subnet.env. Every pod reaches
 * every other pod, for every backend; DEL on a live node leaves the agent's dataplane
 * alone.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseSubnetEnv } from "../../src/subnet-env.ts";
import { until } from "../wait.ts";
import { addPod, BIN, cni } from "./cni-invoke.ts";
import { createTopology, exec, ipJson, listNamespaces, ping, requireRoot, type Topology } from "./harness.ts";

const PREFIX = "wcc-";
const skip = requireRoot() ?? (!existsSync(BIN) ? "dist/weft is not built (npm test builds it)" : undefined);

interface Node {
  name: string;
  ns: string;
  dir: string;
  subnetFile: string;
  logFile: string;
  agent?: Subprocess;
  pods: { ns: string; id: string; ip: string }[];
}

for (const backend of ["vxlan", "host-gw", "udp"] as const) {
  describe.skipIf(!!skip)(`pods added by weft's CNI plugin on 3 agent nodes, ${backend} backend`, () => {
    let topo: Topology;
    let dir: string;
    const nodes: Node[] = [];
    const conf = (n: Node) => ({ cniVersion: "1.0.0", name: "weft", type: "weft", subnetFile: n.subnetFile, dataDir: join(n.dir, "cni") });
    const logOf = (n: Node) => (existsSync(n.logFile) ? readFileSync(n.logFile, "utf8") : "");
    const ready = (n: Node) => {
      const r = exec(n.ns, [process.execPath, "-e", "const r = await fetch('http://127.0.0.1:7947/readyz').catch(() => null); console.log(r ? r.status : 0)"], { check: false });
      return r.stdout.trim() === "200";
    };

    beforeAll(async () => {
      topo = createTopology({ prefix: PREFIX, nodes: 3 });
      dir = mkdtempSync(join(tmpdir(), "weft-cni-cluster-"));
      writeFileSync(join(dir, "key"), exec(topo.nodes[0]!.ns, [BIN, "keygen"]).stdout, { mode: 0o600 });
      writeFileSync(join(dir, "net-conf.json"), JSON.stringify({ Network: "10.244.0.0/16", Backend: { Type: backend } }));
      topo.nodes.forEach((t, i) => {
        const nd = join(dir, `n${i + 1}`);
        mkdirSync(nd, { recursive: true });
        nodes.push({ name: `node${i + 1}`, ns: t.ns, dir: nd, subnetFile: join(nd, "subnet.env"), logFile: join(nd, "agent.log"), pods: [] });
      });
      for (const n of nodes) {
        const log = Bun.file(n.logFile);
        const argv = [BIN, "agent", "--net-conf", join(dir, "net-conf.json"), "--node-name", n.name, "--key-file", join(dir, "key"), "--state-dir", join(n.dir, "state"), "--subnet-file", n.subnetFile, "--join", "192.0.2.11:7946,192.0.2.12:7946,192.0.2.13:7946"];
        n.agent = Bun.spawn(["ip", "netns", "exec", n.ns, ...argv], { stdout: log, stderr: log, stdin: "ignore" });
      }
      for (const n of nodes) await until(`${n.name} ready`, 30_000, () => n.agent!.exitCode === null && ready(n)).catch((e) => Promise.reject(new Error(`${(e as Error).message}\n${logOf(n)}`)));
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
      for (const n of nodes) n.agent?.kill(9);
      await Promise.all(nodes.map((n) => n.agent?.exited));
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
      for (const x of nodes) expect(x.agent!.exitCode).toBeNull();
    }, 30_000);
  });
}
