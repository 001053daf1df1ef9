/**
 * Live underlay changes on a real cluster (root): three `dist/weft agent` processes in
 * node namespaces, one pod per node attached by weft's own CNI plugin, pods pinging
 * across. A node's underlay address is replaced (deleted, then a new one added, as a
 * DHCP renewal does) without restarting any agent: traffic to and from its pod resumes
 * within 5 s and every node's /v1/nodes shows the new address; checked for each backend
 * with the kernel's own view (`ip -j`, `bridge -j`). The vxlan cluster also gets an MTU
 * change, the interface going down and up, and a pinned --public-ip removed and restored.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseSubnetEnv } from "../../src/subnet-env.ts";
import { api, logOf, nodesOf, startAgentCluster, until, type AgentCluster, type AgentNode } from "../../sim/agents.ts";
import { addPod, BIN } from "./cni-invoke.ts";
import { bridgeFdb, exec, ip, ipJson, Lines, listNamespaces, ping, requireRoot, type Topology } from "../../sim/netns.ts";

const PREFIX = "wuc-";
const skip =
  requireRoot() ?? (!existsSync(BIN) ? "dist/weft is not built (npm test builds it)" : undefined) ?? (!Bun.which("curl") ? "curl is needed to read the agents' API" : undefined) ?? (!Bun.which("ping") ? "ping (iputils-ping) is needed" : undefined);

interface Node extends AgentNode {
  pod?: { ns: string; ip: string };
}

/** A `ping -D` running in `fromNs` towards `to`: the wall-clock times (ms) of its replies. */
function pinger(topo: Topology, fromNs: string, to: string) {
  const p = topo.spawn(fromNs, ["ping", "-n", "-D", "-i", "0.2", "-W", "1", to]);
  const lines = new Lines(p.stdout);
  const replies = () => lines.seen.filter((l) => l.includes("bytes from")).map((l) => Number(/^\[(\d+\.\d+)\]/.exec(l)?.[1] ?? NaN) * 1000);
  return { label: `${fromNs} -> ${to}`, replies, stop: () => p.kill() };
}

for (const backend of ["vxlan", "host-gw", "udp"] as const) {
  describe.skipIf(!!skip)(`underlay changes under 3 running agents, ${backend} backend`, () => {
    let c: AgentCluster;
    let topo: Topology;
    let nodes: Node[] = [];
    const ready = (n: Node) => c.ready(n);

    beforeAll(async () => {
      // node3 pins its address (--public-ip): it must never move, only wait for it.
      c = await startAgentCluster({ prefix: PREFIX, nodes: 3, netConf: { Network: "10.244.0.0/16", Backend: { Type: backend } }, extra: (n) => (n.name === "node3" ? ["--public-ip", n.ip] : []) });
      topo = c.topo;
      nodes = c.nodes;
      for (const [i, n] of nodes.entries()) {
        const podNs = topo.addNamespace(`p${i}`);
        const { ip: podIp } = addPod(n.ns, { containerId: `pod${i}`, netns: `/run/netns/${podNs}`, ifname: "eth0", conf: { cniVersion: "1.0.0", name: "weft", type: "weft", subnetFile: n.subnetFile, dataDir: join(n.dir, "cni") } });
        n.pod = { ns: podNs, ip: podIp };
      }
      for (const a of nodes) for (const b of nodes) if (a !== b) expect(ping(a.pod!.ns, b.pod!.ip, { deadlineMs: 10_000 })).toBe(true);
    }, 90_000);

    afterAll(async () => {
      await c?.stop();
      expect(listNamespaces(PREFIX)).toEqual([]);
    }, 30_000);

    test("node2's underlay address is replaced: pods reach its pod again (and it theirs) within 5 s, no agent restarts, every /v1/nodes shows the new address", async () => {
      const [n1, n2, n3] = nodes as [Node, Node, Node];
      const pids = nodes.map((n) => n.proc!.pid);
      const pings = [pinger(topo, n1.pod!.ns, n2.pod!.ip), pinger(topo, n3.pod!.ns, n2.pod!.ip), pinger(topo, n2.pod!.ns, n1.pod!.ip)];
      try {
        await until("pings answered before the change", 10_000, () => pings.every((p) => p.replies().length > 0));
        const t0 = Date.now();
        ip(n2.ns, "addr", "del", "192.0.2.12/24", "dev", "eth0");
        ip(n2.ns, "addr", "add", "192.0.2.112/24", "dev", "eth0");
        const resumed = await until("pings answered after the change", 15_000, () => {
          const after = pings.map((p) => p.replies().find((t) => t > t0 + 100));
          return after.every((t) => t !== undefined) && after;
        }).catch((e) => Promise.reject(new Error(`${(e as Error).message}\n${nodes.map(logOf).join("\n")}`)));
        const worst = Math.max(...resumed.map((t) => t! - t0));
        console.log(`${backend}: traffic resumed ${worst} ms after the address change`);
        expect(worst).toBeLessThan(5_000);
        const seen = await until("every node shows node2 at 192.0.2.112", 5_000, () => nodes.every((n) => nodesOf(n)?.find((r) => r.name === "node2")?.publicIp === "192.0.2.112"));
        expect(seen).toBe(true);
      } finally {
        pings.forEach((p) => p.stop());
      }
      expect(nodes.map((n) => n.proc!.pid)).toEqual(pids);
      for (const n of nodes) expect(n.proc!.exitCode).toBeNull();
      expect(JSON.parse(api(n2, "/v1/status")!.body)).toMatchObject({ publicIp: "192.0.2.112" });
      expect(logOf(n2)).toContain("Underlay address changed");
      // The kernel, read back independently.
      const subnet2 = parseSubnetEnv(readFileSync(n2.subnetFile, "utf8")).FLANNEL_SUBNET!.replace(/\.1\/24$/, ".0/24");
      // A peer's dataplane follows a reconcile after its lease view changed: polled, not read once.
      const settled = <T>(what: string, read: () => T, want: T) => until(what, 5_000, () => JSON.stringify(read()) === JSON.stringify(want)).catch(() => expect(read()).toEqual(want));
      if (backend === "vxlan") {
        const dev = ipJson(n2.ns, "-d", "link", "show", "weft.1")[0];
        expect(dev.linkinfo.info_data.local).toBe("192.0.2.112");
        const mac = dev.address;
        for (const n of [n1, n3]) await settled(`${n.name}: FDB of node2`, () => bridgeFdb(n.ns, "weft.1").filter((f: any) => f.mac === mac).map((f: any) => f.dst), ["192.0.2.112"]);
      }
      if (backend === "host-gw") {
        for (const n of [n1, n3]) await settled(`${n.name}: route to node2's subnet`, () => ipJson(n.ns, "route", "show", subnet2).map((r: any) => r.gateway), ["192.0.2.112"]);
      }
      for (const a of nodes) for (const b of nodes) if (a !== b) expect(ping(a.pod!.ns, b.pod!.ip, { deadlineMs: 5_000 })).toBe(true);
    }, 60_000);

    if (backend !== "vxlan") return;

    test("weft.1 does not accept IPv6 router advertisements (accept_ra=0, as flannel's VXLAN device)", () => {
      for (const n of nodes) expect(exec(n.ns, ["cat", "/proc/sys/net/ipv6/conf/weft.1/accept_ra"]).stdout.trim()).toBe("0");
    });

    test("the underlay MTU changes: subnet.env, weft.1 and /v1/status follow within 5 s", async () => {
      const n1 = nodes[0]!;
      ip(n1.ns, "link", "set", "eth0", "mtu", "1400");
      await until("subnet.env with the new MTU", 5_000, () => parseSubnetEnv(readFileSync(n1.subnetFile, "utf8")).FLANNEL_MTU === "1350").catch((e) => Promise.reject(new Error(`${(e as Error).message}\n${logOf(n1)}`)));
      expect(ipJson(n1.ns, "link", "show", "weft.1")[0].mtu).toBe(1350);
      expect(JSON.parse(api(n1, "/v1/status")!.body).mtu).toBe(1350);
      await until(`${n1.name} ready`, 5_000, () => ready(n1));
      expect(ping(n1.pod!.ns, nodes[1]!.pod!.ip, { deadlineMs: 5_000 })).toBe(true);
    }, 30_000);

    test("the underlay interface down: /readyz 503 with the reason; up again: ready, pods reach each other", async () => {
      const n1 = nodes[0]!;
      ip(n1.ns, "link", "set", "eth0", "down");
      const r = await until("not ready", 5_000, () => {
        const x = api(n1, "/readyz");
        return x?.status === 503 && x;
      });
      expect(JSON.parse(r.body)).toEqual({ ready: false, reason: "underlay interface eth0 is down" });
      ip(n1.ns, "link", "set", "eth0", "up");
      await until(`${n1.name} ready`, 5_000, () => ready(n1));
      expect(ping(n1.pod!.ns, nodes[2]!.pod!.ip, { deadlineMs: 5_000 })).toBe(true);
    }, 30_000);

    test("a pinned --public-ip removed: /readyz 503 naming it (and the log), nothing moves; restored: ready, pods reach each other", async () => {
      const n3 = nodes[2]!;
      ip(n3.ns, "addr", "del", "192.0.2.13/24", "dev", "eth0");
      ip(n3.ns, "addr", "add", "192.0.2.113/24", "dev", "eth0");
      const reason = "--public-ip 192.0.2.13 is no longer on this node (underlay eth0); waiting for it to come back";
      const r = await until("not ready", 5_000, () => {
        const x = api(n3, "/readyz");
        return x?.status === 503 && x;
      });
      expect(JSON.parse(r.body)).toEqual({ ready: false, reason });
      await until("the reason in the log", 2_000, () => logOf(n3).includes(reason));
      expect(nodesOf(nodes[0]!)!.find((x) => x.name === "node3")!.publicIp).toBe("192.0.2.13");
      ip(n3.ns, "addr", "add", "192.0.2.13/24", "dev", "eth0");
      await until(`${n3.name} ready`, 5_000, () => ready(n3));
      expect(api(n3, "/readyz")!.status).toBe(200);
      for (const n of nodes.slice(0, 2)) expect(ping(n.pod!.ns, n3.pod!.ip, { deadlineMs: 5_000 })).toBe(true);
      expect(ping(n3.pod!.ns, nodes[0]!.pod!.ip, { deadlineMs: 5_000 })).toBe(true);
    }, 30_000);
  });
}
