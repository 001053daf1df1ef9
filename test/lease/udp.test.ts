/**
 * Five lease nodes on the real wire: UDP + TCP over 127.0.0.6x, real clock, localConfig(),
 * real state dirs; each record names public IP 198.51.0.6x. Waits are polls with
 * deadlines, never fixed sleeps.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { realClock } from "../../src/clock.ts";
import { parseNetConf } from "../../src/net-conf.ts";
import { localConfig } from "../../src/gossip/config.ts";
import { createUdpTransport } from "../../src/gossip/udp-transport.ts";
import type { Keyring } from "../../src/gossip/types.ts";
import { createCluster } from "../../src/lease/cluster.ts";
import type { ClusterCore } from "../../src/lease/cluster-options.ts";
import type { Lease } from "../../src/lease/types.ts";
import { silentLogger } from "../../src/log.ts";
import { poll } from "../../sim/wait.ts";

const base = mkdtempSync(join(tmpdir(), "weft-lease-udp-"));
const running = new Set<ClusterCore>();
afterAll(async () => {
  await Promise.all([...running].map((c) => c.stop({ leave: false })));
  rmSync(base, { recursive: true, force: true });
});

const net = parseNetConf({ Network: "10.244.0.0/16", Backend: { Type: "vxlan" } });
const key = (b: number): Keyring => {
  const k = new Uint8Array(32).fill(b);
  return { primary: k, keys: [k] };
};

const net6 = parseNetConf({ EnableIPv4: false, EnableIPv6: true, IPv6Network: "fd00:10:244::/56", Backend: { Type: "vxlan" } });

async function node(name: string, ip: string, seeds: string[], keyring: Keyring, port = 0, v6?: { publicIpv6: string }) {
  const transport = await createUdpTransport({ bindAddr: ip, port, logger: silentLogger });
  const cluster = createCluster({
    net: v6 ? net6 : net,
    nodeName: name,
    // Not the loopback bind address: peers refuse loopback public IPs. A member address
    // that could not be a public IP is not compared with the record's (docs/leases.md).
    ...(v6 ? v6 : { publicIp: ip.replace(/^127\.0\./, "198.51.") }),
    advertiseAddr: transport.localAddr(),
    seeds,
    backend: (nodeId) => ({ type: "vxlan", vtepMac: `0e:${nodeId.slice(0, 10).replace(/(..)(?!$)/g, "$1:")}` }),
    stateDir: join(base, name),
    transport,
    gossipConfig: localConfig(),
    keyring,
    clusterName: "lease-udp-test",
    clock: realClock,
    logger: silentLogger,
    settleMs: 300,
  });
  running.add(cluster);
  return { name, ip, cluster, addr: transport.localAddr() };
}

const table = (c: ClusterCore) => c.leases().map((l) => `${l.nodeName}=${l.subnet}`).sort().join(",");

describe("lease layer over real UDP/TCP on 127.0.0.x", () => {
  test("5 nodes agree, a killed node's lease is kept while it is dead, a restart gets the same lease", async () => {
    const k = key(9);
    const first = await node("l0", "127.0.0.60", [], k);
    const seed = first.addr;
    const nodes = [first];
    for (let i = 1; i < 5; i++) nodes.push(await node(`l${i}`, `127.0.0.${60 + i}`, [seed, "127.0.0.99:1"], k));
    const leases = await Promise.all(nodes.map((n) => n.cluster.start(AbortSignal.timeout(20_000))));
    expect(new Set(leases.map((l) => l.subnet)).size).toBe(5);
    const expected = nodes.map((n, i) => `${n.name}=${leases[i]!.subnet}`).sort().join(",");
    expect(await poll(() => nodes.every((n) => table(n.cluster) === expected), 10_000)).toBe(true);

    // Kill l4 (no leave): peers declare it dead but keep its lease (routes stay).
    const victim = nodes[4]!;
    const victimPort = Number(victim.addr.split(":")[1]);
    await victim.cluster.stop({ leave: false });
    running.delete(victim.cluster);
    const others = nodes.slice(0, 4);
    const stateOfVictim = (c: ClusterCore) => c.leases().find((l) => l.nodeName === "l4")?.state;
    expect(await poll(() => others.every((n) => stateOfVictim(n.cluster) === "dead"), 15_000)).toBe(true);
    for (const n of others) expect(table(n.cluster)).toBe(expected);

    // Restart l4 with the same state dir and address: same subnet at once, higher generation.
    const again = await node("l4", victim.ip, [seed], k, victimPort);
    const l4: Lease = await again.cluster.start(AbortSignal.timeout(10_000));
    expect(l4.subnet).toBe(leases[4]!.subnet);
    expect(l4.nodeId).toBe(leases[4]!.nodeId);
    expect(l4.generation).toBe(leases[4]!.generation + 1);
    expect(
      await poll(() => others.every((n) => stateOfVictim(n.cluster) === "alive" && n.cluster.table().get("l4")!.generation === l4.generation), 15_000),
    ).toBe(true);
    for (const n of [...others, again]) expect(table(n.cluster)).toBe(expected);
  }, 60_000);

  test("IPv6-only cluster gossiping over UDP/TCP on [::1]: 3 nodes agree on distinct IPv6 subnets, a restart gets the same one", async () => {
    const k = key(6);
    const pub = (i: number) => ({ publicIpv6: `2001:db8::6${i}` });
    const first = await node("v0", "::1", [], k, 0, pub(0));
    expect(first.addr).toMatch(/^\[::1\]:\d+$/);
    const nodes = [first, await node("v1", "::1", [first.addr], k, 0, pub(1)), await node("v2", "::1", [first.addr], k, 0, pub(2))];
    const leases = await Promise.all(nodes.map((n) => n.cluster.start(AbortSignal.timeout(20_000))));
    expect(new Set(leases.map((l) => l.ipv6Subnet)).size).toBe(3);
    for (const l of leases) expect([l.subnet, l.publicIp, l.ipv6Subnet?.startsWith("fd00:10:244:")]).toEqual([undefined, undefined, true]);
    const view = (c: ClusterCore) => c.leases().map((l) => `${l.nodeName}=${l.ipv6Subnet}@${l.publicIpv6}`).sort().join(",");
    const expected = nodes.map((n, i) => `${n.name}=${leases[i]!.ipv6Subnet}@2001:db8::6${i}`).sort().join(",");
    expect(await poll(() => nodes.every((n) => view(n.cluster) === expected), 10_000)).toBe(true);
    const victim = nodes[2]!;
    const port = Number(victim.addr.slice(victim.addr.lastIndexOf(":") + 1));
    await victim.cluster.stop({ leave: true });
    running.delete(victim.cluster);
    const again = await node("v2", "::1", [first.addr], k, port, pub(2));
    const l2 = await again.cluster.start(AbortSignal.timeout(10_000));
    expect(l2.ipv6Subnet).toBe(leases[2]!.ipv6Subnet);
    expect(await poll(() => nodes.slice(0, 2).every((n) => n.cluster.table().get("v2")?.generation === l2.generation) && view(again.cluster) === expected, 15_000)).toBe(true);
    for (const n of nodes.slice(0, 2)) expect(n.cluster.gossipMetrics().senderMismatches).toBe(0);
  }, 60_000);

  test("a node with a different key can neither join nor inject its lease", async () => {
    const honest = await node("k0", "127.0.0.70", [], key(1));
    await honest.cluster.start(AbortSignal.timeout(5_000));
    const honest2 = await node("k1", "127.0.0.71", [honest.addr], key(1));
    await honest2.cluster.start(AbortSignal.timeout(10_000));
    // The intruder has its own lease (it bootstraps alone), then tries to join.
    const intruderBoot = await node("evil", "127.0.0.72", [], key(2));
    await intruderBoot.cluster.start(AbortSignal.timeout(5_000));
    await intruderBoot.cluster.stop({ leave: false });
    const intruder = await node("evil", "127.0.0.72", [honest.addr], key(2));
    await intruder.cluster.start(AbortSignal.timeout(5_000)); // persisted lease: ready at once, joins in background
    expect(await poll(() => honest.cluster.gossipMetrics().decryptFailures > 0, 5_000)).toBe(true);
    const joined = await Promise.race([intruder.cluster.joined().then(() => true), Bun.sleep(1500).then(() => false)]);
    expect(joined).toBe(false);
    for (const h of [honest, honest2]) {
      expect(h.cluster.table().get("evil")).toBeUndefined();
      expect(h.cluster.members().map((m) => m.name).sort()).toEqual(["k0", "k1"]);
    }
  }, 30_000);
});
