/**
 * The shipped binary, end to end, for every backend (root only): three `dist/weft agent`
 * processes, one per node namespace on a shared underlay, joined by gossip with a real
 * key; one pod per node attached to cni0 by the standard CNI bridge + host-local plugins
 * fed from that node's subnet.env (what flannel's CNI plugin delegates to). Then the
 * operator's failure cases: kill -9, restart, a route deleted by hand, a no-op reconcile.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cniConfig } from "./flannel-delegate.ts";
import { parseSubnetEnv } from "../../src/subnet-env.ts";
import { until as waitUntil } from "../../sim/wait.ts";
import { REPO, createTopology, exec, ipJson, listNamespaces, ping, requireRoot, type Topology } from "../../sim/netns.ts";

const BIN = join(REPO, "dist/weft");
const CNI_DIR = "/usr/lib/cni";
const PREFIX = "wag-";
const skip =
  requireRoot() ??
  (!existsSync(BIN) ? "dist/weft is not built (npm test builds it)" : undefined) ??
  (!existsSync(join(CNI_DIR, "bridge")) ? "CNI plugins missing (apt install containernetworking-plugins)" : undefined);

/** Polls every 50 ms: the route-repair case measures sub-second latencies. */
const until = <T>(what: string, timeoutMs: number, probe: () => T | undefined | false | Promise<T | undefined | false>) => waitUntil(what, timeoutMs, probe, 50);

interface Node {
  name: string;
  ns: string;
  ip: string;
  dir: string;
  subnetFile: string;
  logFile: string;
  agent?: Subprocess;
  pod?: { ns: string; ip: string };
}

for (const backend of ["vxlan", "host-gw", "udp"] as const) {
  describe.skipIf(!!skip)(`3-node cluster of dist/weft agents, ${backend} backend`, () => {
    let topo: Topology;
    let dir: string;
    const nodes: Node[] = [];

    const agentArgs = (n: Node) => [
      BIN,
      "agent",
      "--net-conf", join(dir, "net-conf.json"),
      "--node-name", n.name,
      "--key-file", join(dir, "key"),
      "--state-dir", join(n.dir, "state"),
      "--subnet-file", n.subnetFile,
      "--join", "192.0.2.11:7946,192.0.2.12:7946,192.0.2.13:7946",
      "--log-level", "debug",
    ];

    const startAgent = (n: Node) => {
      const log = Bun.file(n.logFile);
      n.agent = Bun.spawn(["ip", "netns", "exec", n.ns, ...agentArgs(n)], { stdout: log, stderr: log, stdin: "ignore" });
    };

    const readiness = (n: Node): { ready: boolean; reason?: string } | undefined => {
      const r = exec(n.ns, [process.execPath, "-e", "const r = await fetch('http://127.0.0.1:7947/readyz').catch(() => null); console.log(r ? await r.text() : 'null')"], { check: false });
      try {
        return JSON.parse(r.stdout.trim()) ?? undefined;
      } catch {
        return undefined;
      }
    };

    /** What weft programs on a node: routes, permanent neighbours, the VXLAN FDB. */
    const kernelState = (n: Node) =>
      JSON.stringify([
        ipJson(n.ns, "route", "show"),
        ipJson(n.ns, "neigh", "show", "nud", "permanent"),
        backend === "vxlan" ? exec(n.ns, ["bridge", "-j", "fdb", "show", "dev", "weft.1"]).stdout : "",
      ]);
    const subnetOf = (n: Node) => parseSubnetEnv(readFileSync(n.subnetFile, "utf8")).FLANNEL_SUBNET;
    const logOf = (n: Node) => (existsSync(n.logFile) ? readFileSync(n.logFile, "utf8") : "");

    beforeAll(async () => {
      topo = createTopology({ prefix: PREFIX, nodes: 3 });
      dir = mkdtempSync(join(tmpdir(), "weft-agents-"));
      const key = exec(topo.nodes[0]!.ns, [BIN, "keygen"]).stdout;
      writeFileSync(join(dir, "key"), key, { mode: 0o600 });
      writeFileSync(join(dir, "net-conf.json"), JSON.stringify({ Network: "10.244.0.0/16", Backend: { Type: backend } }));
      topo.nodes.forEach((t, i) => {
        const nd = join(dir, `n${i + 1}`);
        mkdirSync(nd, { recursive: true });
        nodes.push({ name: `node${i + 1}`, ns: t.ns, ip: t.ip, dir: nd, subnetFile: join(nd, "subnet.env"), logFile: join(nd, "agent.log") });
      });
      for (const n of nodes) startAgent(n);
      for (const n of nodes) {
        await until(`${n.name} ready (log:\n${logOf(n)})`, 30_000, () => n.agent!.exitCode === null && readiness(n)?.ready === true).catch((e) => {
          throw new Error(`${(e as Error).message}\n${logOf(n)}`);
        });
      }
      // Pods, the way flannel's CNI plugin delegates: bridge + host-local from subnet.env.
      for (const [i, n] of nodes.entries()) {
        const podNs = topo.addNamespace(`p${i}`);
        const conf = cniConfig(parseSubnetEnv(readFileSync(n.subnetFile, "utf8")), join(n.dir, "cni"));
        const r = exec(n.ns, ["env", "CNI_COMMAND=ADD", `CNI_CONTAINERID=pod${i}`, `CNI_NETNS=/run/netns/${podNs}`, "CNI_IFNAME=eth0", `CNI_PATH=${CNI_DIR}`, join(CNI_DIR, "bridge")], {
          stdin: JSON.stringify(conf),
        });
        const ip = String(JSON.parse(r.stdout).ips[0].address).split("/")[0]!;
        n.pod = { ns: podNs, ip };
      }
    }, 90_000);

    afterAll(async () => {
      for (const n of nodes) n.agent?.kill(9);
      await Promise.all(nodes.map((n) => n.agent?.exited));
      await topo?.cleanup();
      if (dir) rmSync(dir, { recursive: true, force: true });
      expect(listNamespaces(PREFIX)).toEqual([]);
    }, 30_000);

    test("three distinct leases inside the network, written to subnet.env", () => {
      const subnets = nodes.map(subnetOf);
      expect(new Set(subnets).size).toBe(3);
      for (const s of subnets) expect(s).toMatch(/^10\.244\.\d+\.1\/24$/);
      for (const n of nodes) expect(parseSubnetEnv(readFileSync(n.subnetFile, "utf8")).FLANNEL_MTU).toBe(backend === "vxlan" ? "1450" : backend === "udp" ? "1472" : "1500");
    });

    test("every pod pings every other pod", () => {
      for (const a of nodes) for (const b of nodes) if (a !== b) expect({ from: a.name, to: b.name, ok: ping(a.pod!.ns, b.pod!.ip) }).toEqual({ from: a.name, to: b.name, ok: true });
    });

    test("weft status lists all three nodes", () => {
      const r = exec(nodes[0]!.ns, [BIN, "status", "--json"]);
      const out = JSON.parse(r.stdout) as { nodes: { name: string; state: string; subnet: string }[] };
      expect(out.nodes.map((x) => x.name).sort()).toEqual(["node1", "node2", "node3"]);
      for (const x of out.nodes) expect(x.state).toBe("alive");
    });

    test("kill -9 one agent, then restart it: same subnet, ready again, reachable", async () => {
      const victim = nodes[1]!;
      const before = subnetOf(victim);
      const device = backend === "vxlan" ? "weft.1" : backend === "udp" ? "weft0" : undefined;
      const ifindex = () => (device ? ipJson<{ ifindex: number }[]>(victim.ns, "link", "show", device)[0]?.ifindex : undefined);
      const indexBefore = ifindex();
      const stateBefore = kernelState(victim);
      victim.agent!.kill(9);
      await victim.agent!.exited;
      if (backend !== "udp") {
        // The kernel keeps forwarding: pods on the other nodes still reach the victim's pod.
        expect(ping(nodes[0]!.pod!.ns, victim.pod!.ip)).toBe(true);
        expect(ping(nodes[2]!.pod!.ns, victim.pod!.ip)).toBe(true);
      }
      writeFileSync(victim.logFile, "");
      startAgent(victim);
      await until(`${victim.name} ready again`, 30_000, () => readiness(victim)?.ready === true);
      expect(subnetOf(victim)).toBe(before);
      // The restart adopted the kernel state: same device, and its first full reconcile
      // (after the join) found nothing to change.
      expect(ifindex()).toBe(indexBefore);
      await until("the restarted agent's first reconcile", 10_000, () => logOf(victim).includes("reconcile (start)"));
      expect(kernelState(victim)).toBe(stateBefore);
      // udp counts handing the peer table to its new in-process packet loop as a change.
      if (backend !== "udp") expect(logOf(victim)).toContain("reconcile (start): no changes");
      expect(ping(nodes[0]!.pod!.ns, victim.pod!.ip)).toBe(true);
      expect(ping(victim.pod!.ns, nodes[2]!.pod!.ip)).toBe(true);
    }, 60_000);

    test("a route deleted by hand is back within a second", async () => {
      const n = nodes[0]!;
      const peer = subnetOf(nodes[2]!)!.replace(/\.1\/24$/, ".0/24");
      const routeTo = (dst: string) => ipJson<{ dst: string }[]>(n.ns, "route", "show").find((r) => r.dst === dst);
      const dst = backend === "udp" ? "10.244.0.0/16" : peer;
      expect(routeTo(dst)).toBeDefined();
      // `ip route del` exits 0 only if it deleted the route; the repair may already be
      // done by the time we could look, so time from the deletion instead.
      exec(n.ns, ["ip", "route", "del", dst]);
      const t0 = Date.now();
      await until(`route ${dst} repaired`, 1000, () => routeTo(dst) !== undefined);
      const took = Date.now() - t0;
      expect(took).toBeLessThanOrEqual(1000);
      expect(ping(n.pod!.ns, nodes[2]!.pod!.ip)).toBe(true);
    }, 20_000);

    test("a reconcile when nothing changed makes no changes", async () => {
      const n = nodes[2]!;
      const snapshot = () => kernelState(n);
      const before = snapshot();
      const marks = () => (logOf(n).match(/reconcile \(netlink event\): no changes/g) ?? []).length;
      const m0 = marks();
      // An unrelated kernel change (a route weft does not own) wakes the reconciler.
      exec(n.ns, ["ip", "route", "add", "198.51.100.0/24", "via", "192.0.2.1"]);
      await until("a reconcile run triggered by the event", 5000, () => marks() > m0);
      exec(n.ns, ["ip", "route", "del", "198.51.100.0/24"]);
      expect(snapshot()).toBe(before);
      // The foreign route was left alone by weft while it existed.
      expect(logOf(n)).not.toContain("198.51.100.0");
    }, 20_000);
  });
}
