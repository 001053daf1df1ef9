/**
 * Retiring nodes on a real cluster (root): three `dist/weft agent` processes (vxlan).
 * `weft forget` is refused for a live node and from another host; for a killed node its
 * routes, ARP and FDB entries disappear on every node within 5 s of the command. The
 * forgotten node, restarted with its state, comes back without a duplicate subnet. An
 * agent run with --release-on-stop gives its subnet back when stopped: its routes go
 * everywhere and its subnet.env is removed.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { BIN, logOf, nodesOf, startAgentCluster, stopAgent, subnetOf, networkOfGateway, until, type AgentCluster, type AgentNode } from "../../sim/agents.ts";
import { bridgeFdb, exec, ipJson, listNamespaces, requireRoot } from "../../sim/netns.ts";

const PREFIX = "wfg-";
const skip = requireRoot() ?? (!existsSync(BIN) ? "dist/weft is not built (npm test builds it)" : undefined) ?? (!Bun.which("curl") ? "curl is needed to call the agents' API" : undefined);

describe.skipIf(!!skip)("forget and --release-on-stop on 3 agents (vxlan)", () => {
  let c: AgentCluster;
  let nodes: AgentNode[] = [];
  const start = (n: AgentNode) => c.start(n);
  const ready = (n: AgentNode) => c.ready(n);
  const forget = (from: AgentNode, name: string) => exec(from.ns, [BIN, "forget", name], { check: false });
  /** What `n`'s kernel holds for a peer: its route, and the FDB entries of its VTEP MAC. */
  const kernelFor = (n: AgentNode, subnet: string, mac: string) => ({
    routes: ipJson(n.ns, "route", "show", subnet).length,
    fdb: bridgeFdb(n.ns, "weft.1").filter((f: { mac: string }) => f.mac === mac).length,
  });

  beforeAll(async () => {
    // node1's API listens on every address (the forget route must still refuse other hosts); node2 releases on stop.
    c = await startAgentCluster({
      prefix: PREFIX,
      nodes: 3,
      netConf: { Network: "10.244.0.0/16", Backend: { Type: "vxlan" } },
      extra: (n) => (n.name === "node1" ? ["--api-listen", "0.0.0.0:7947"] : n.name === "node2" ? ["--release-on-stop"] : []),
    });
    nodes = c.nodes;
    await until("every node routes the other two", 10_000, () => nodes.every((n) => nodesOf(n)?.length === 3));
  }, 60_000);

  afterAll(async () => {
    await c?.stop();
    expect(listNamespaces(PREFIX)).toEqual([]);
  }, 30_000);

  test("refused for a live node (exit 1, 409 with the reason), and from another host even where the API listens on every address (403)", () => {
    const [n1, n2] = nodes as [AgentNode, AgentNode];
    const r = forget(n1, "node3");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("weft forget: node3 not forgotten (409): node node3 is alive (gossiping from 192.0.2.13:7946)");
    const remote = exec(n2.ns, ["curl", "-s", "-m", "3", "-X", "POST", "-w", "\n%{http_code}", "http://192.0.2.11:7947/v1/nodes/node3/forget"], { check: false });
    expect(remote.stdout.trim().split("\n")).toEqual([JSON.stringify({ error: "forget is accepted only from this host (loopback), not from 192.0.2.12" }), "403"]);
    expect(nodesOf(n1)!.map((x) => x.name)).toContain("node3");
  });

  test("a killed node forgotten: its route and FDB entry go on every node within 5 s; it is gone from /v1/nodes", async () => {
    const [n1, n2, n3] = nodes as [AgentNode, AgentNode, AgentNode];
    const subnet = networkOfGateway(subnetOf(n3)!);
    const mac = ipJson(n3.ns, "link", "show", "weft.1")[0].address as string;
    await stopAgent(n3, "SIGKILL");
    await until("node3 dead on node1 and node2", 30_000, () => [n1, n2].every((n) => nodesOf(n)?.find((x) => x.name === "node3")?.state === "dead"));
    for (const n of [n1, n2]) expect(kernelFor(n, subnet, mac)).toEqual({ routes: 1, fdb: 1 }); // dead, still routed for the lease TTL
    const t0 = Date.now();
    const r = forget(n1, "node3");
    expect({ code: r.code, out: r.stdout }).toEqual({ code: 0, out: `forgot node3: its lease of ${subnet} is tombstoned on every node; their routes to it go within seconds, and the subnet is free\n` });
    await until("node3's route and FDB entry gone on node1 and node2", 5_000, () => [n1, n2].every((n) => {
      const k = kernelFor(n, subnet, mac);
      return k.routes === 0 && k.fdb === 0;
    }));
    expect(Date.now() - t0).toBeLessThan(5_000);
    for (const n of [n1, n2]) expect(nodesOf(n)!.map((x) => x.name)).not.toContain("node3");
    expect(logOf(n1)).toContain("Forgot a node");
  }, 60_000);

  test("the forgotten node restarted with its state comes back by the normal rules: every node routes it, no subnet twice", async () => {
    const n3 = nodes[2]!;
    start(n3);
    await until("node3 ready again", 30_000, () => ready(n3)).catch((e) => Promise.reject(new Error(`${(e as Error).message}\n${logOf(n3)}`)));
    await until("every node sees all three", 10_000, () => nodes.every((n) => nodesOf(n)?.length === 3));
    const subnets = nodes.map((n) => networkOfGateway(subnetOf(n)!));
    expect(new Set(subnets).size).toBe(3);
    for (const n of nodes) expect(nodesOf(n)!.map((x) => x.subnet).sort()).toEqual([...subnets].sort());
  }, 60_000);

  test("--release-on-stop: a clean stop gives the subnet back (routes go on every node within 5 s) and removes subnet.env", async () => {
    const [n1, n2, n3] = nodes as [AgentNode, AgentNode, AgentNode];
    const subnet = networkOfGateway(subnetOf(n2)!);
    await stopAgent(n2, "SIGTERM");
    expect(n2.proc!.exitCode).toBe(0);
    expect(existsSync(n2.subnetFile)).toBe(false);
    expect(logOf(n2)).toContain("Released the lease");
    await until("node2's route gone on node1 and node3", 5_000, () => [n1, n3].every((n) => ipJson(n.ns, "route", "show", subnet).length === 0));
    for (const n of [n1, n3]) expect(nodesOf(n)!.map((x) => x.name)).not.toContain("node2");
  }, 30_000);
});
