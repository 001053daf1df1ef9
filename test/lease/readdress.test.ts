/**
 * A node's public IP moves while it runs (cluster.readdress): on the real gossip layer
 * over MemNetwork, every peer routes its lease at the new IP within 2 s. While the
 * lease's public IP and the owner's gossip address (which must agree) differ — the peer
 * takes the new address once the old one stayed silent for the probe timeout (500 ms),
 * plus a gossip hop when the news came relayed — the lease stays routed at the old IP:
 * never out of the dataplane.
 */
import { describe, expect, test } from "bun:test";
import { parseKeyFile } from "../../src/gossip/keyring.ts";
import { parseNetConf } from "../../src/net-conf.ts";
import { LeaseSim, type LeaseSimNode } from "../../sim/lease-sim.ts";

const keyring = parseKeyFile(Buffer.alloc(32, 11).toString("base64"));
const net = parseNetConf({ Network: "10.244.0.0/16", Backend: { Type: "vxlan" } });

async function cluster(seed: number, n: number) {
  const sim = new LeaseSim({ seed, net, keyring });
  const nodes = Array.from({ length: n }, (_, i) => sim.add(`n${i + 1}`, `10.0.0.${i + 1}:7946`, ["10.0.0.1:7946"]));
  for (const x of nodes) void sim.start(x.name);
  expect(await sim.runUntil(() => nodes.every((x) => x.lease && x.cluster.leases().length === n), 30_000)).toBe(true);
  return { sim, nodes };
}

const routedAt = (from: LeaseSimNode, name: string) => from.cluster.leases().find((l) => l.nodeName === name)?.publicIp;

describe("cluster.readdress", () => {
  for (const seed of [1, 2, 3]) {
    test(`seed ${seed}: 5 nodes; n2 moves to a new IP: every peer routes it there within 2 s, at the old IP until then, never unrouted`, async () => {
      const { sim, nodes } = await cluster(seed, 5);
      const mover = nodes[1]!;
      const peers = nodes.filter((x) => x !== mover);
      const gap = new Map<string, number>(peers.map((p) => [p.name, 0]));
      // What each peer's leases() said when onChange last fired: the agent reprograms only then.
      const view = (p: LeaseSimNode) => JSON.stringify(p.cluster.leases().map((l) => [l.nodeName, l.publicIp]));
      const announced = new Map(peers.map((p) => [p.name, view(p)]));
      for (const p of peers) p.cluster.onChange(() => announced.set(p.name, view(p)));
      const t0 = sim.clock.now();
      await mover.cluster.readdress("10.0.0.22", sim.network.transport("10.0.0.22:7946"));
      const step = 10;
      const moved = await sim.runUntil(() => {
        for (const p of peers) if (routedAt(p, "n2") !== "10.0.0.2" && routedAt(p, "n2") !== "10.0.0.22") gap.set(p.name, gap.get(p.name)! + step);
        return peers.every((p) => routedAt(p, "n2") === "10.0.0.22");
      }, 5_000, step);
      expect(moved).toBe(true);
      expect(sim.clock.now() - t0).toBeLessThan(2_000);
      for (const [name, ms] of gap) expect(ms, `n2 unrouted on ${name}`).toBe(0);
      for (const p of peers) expect(p.cluster.members().find((m) => m.name === "n2")).toMatchObject({ addr: "10.0.0.22:7946", state: "alive" });
      for (const p of peers) expect(announced.get(p.name), `${p.name}: the last onChange saw the routes as they are`).toBe(view(p));
      expect(mover.store.lease?.publicIp).toBe("10.0.0.22");
      expect(mover.cluster.ownLease()?.publicIp).toBe("10.0.0.22");
      expect(mover.cluster.ownLease()?.subnet).toBe(mover.lease!.subnet);
      // Steady afterwards: probes find it at the new address, nobody suspects it.
      await sim.run(15_000);
      for (const p of peers) expect(routedAt(p, "n2")).toBe("10.0.0.22");
      expect(sim.duplicates()).toEqual([]);
      await sim.stopAll();
    });
  }

  test("an address peers would reject is refused and changes nothing", async () => {
    const { sim, nodes } = await cluster(4, 3);
    const n2 = nodes[1]!;
    const t = sim.network.transport("127.0.0.5:7946");
    await expect(n2.cluster.readdress("127.0.0.5", t)).rejects.toThrow("Cannot move to public IP 127.0.0.5: publicIp 127.0.0.5 is a loopback address; peers would reject this node's lease");
    expect(n2.cluster.ownLease()?.publicIp).toBe("10.0.0.2");
    await sim.run(2_000);
    expect(routedAt(nodes[0]!, "n2")).toBe("10.0.0.2");
    await t.close();
    await sim.stopAll();
  });
});
