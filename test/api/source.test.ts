/** createStatusSource: the agent's parts mapped to the API's status types. */
import { expect, test } from "bun:test";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { createApp } from "../../src/api/app.ts";
import { countMembers, createStatusSource, type StatusParts } from "../../src/api/source.ts";
import { renderMetrics } from "../../src/api/metrics.ts";
import type { StatusSource } from "../../src/api/status.ts";

const renderMetricsOf = (s: StatusSource) => renderMetrics(s.metrics());

const T0 = Date.parse("2026-11-24T12:00:00.000Z");

function parts(over: Partial<StatusParts> = {}): StatusParts {
  return {
    node: "b",
    publicIp: "192.0.2.12",
    network: "10.244.0.0/16",
    backend: "vxlan",
    mtu: 1450,
    version: "0.1.0",
    startedAt: T0,
    now: () => T0 + 90_500,
    subnet: () => "10.244.2.0/24",
    members: () => [{ state: "alive" }, { state: "alive" }, { state: "suspect" }, { state: "left" }],
    leases: () => [
      { nodeName: "b", publicIp: "192.0.2.12", subnet: "10.244.2.0/24", backend: { type: "vxlan", vtepMac: "aa:00:00:00:00:02" }, state: "alive", lastSeen: T0 + 90_000 },
      { nodeName: "a", publicIp: "192.0.2.11", subnet: "10.244.1.0/24", backend: { type: "vxlan" }, state: "suspect", lastSeen: T0 },
      { nodeName: "c", publicIp: "192.0.2.13", subnet: "10.244.3.0/24", backend: { type: "vxlan" }, state: "unknown", lastSeen: 0 },
      { nodeName: "d", publicIp: "192.0.2.14", subnet: "10.244.4.0/24", backend: { type: "vxlan" }, state: "left", lastSeen: T0, deleted: true },
    ],
    readiness: () => ({ ready: false, reason: "waiting for lease commit" }),
    healthy: () => true,
    ...over,
  };
}

test("status: identity, subnet, member counts, uptime in whole seconds", () => {
  expect(createStatusSource(parts()).status()).toEqual({
    node: "b",
    publicIp: "192.0.2.12",
    network: "10.244.0.0/16",
    subnet: "10.244.2.0/24",
    backend: "vxlan",
    mtu: 1450,
    members: { alive: 2, suspect: 1, dead: 0, left: 1 },
    version: "0.1.0",
    uptimeSeconds: 90,
    problems: [],
  });
  expect(createStatusSource(parts({ subnet: () => null })).status().subnet).toBeNull();
  expect(createStatusSource(parts({ problems: () => ["host-gw: peer n3 (192.0.2.99) is not on-link"] })).status().problems).toEqual(["host-gw: peer n3 (192.0.2.99) is not on-link"]);
});

test("nodes: sorted by name, tombstones dropped, lastSeen as ISO or null, vtepMac only when known", () => {
  expect(createStatusSource(parts()).nodes()).toEqual([
    { name: "a", publicIp: "192.0.2.11", subnet: "10.244.1.0/24", backend: "vxlan", state: "suspect", lastSeen: "2026-11-24T12:00:00.000Z" },
    { name: "b", publicIp: "192.0.2.12", subnet: "10.244.2.0/24", backend: "vxlan", state: "alive", lastSeen: "2026-11-24T12:01:30.000Z", vtepMac: "aa:00:00:00:00:02" },
    { name: "c", publicIp: "192.0.2.13", subnet: "10.244.3.0/24", backend: "vxlan", state: "unknown", lastSeen: null },
  ]);
});

test("metrics: zeros for parts not given; given parts copied; renders through /metrics", async () => {
  const bare = createStatusSource(parts()).metrics();
  expect(bare.gossip.packetsIn).toBe(0);
  expect(bare.leases).toBe(4);
  expect(bare.reconcile.runs).toBe(0);
  const full = createStatusSource(
    parts({
      gossip: () => ({ packetsIn: 1, packetsOut: 2, bytesIn: 3, bytesOut: 4, messagesIn: 5, messagesOut: 6, decryptFailures: 7, decodeFailures: 8, duplicatesSkipped: 9, replaysRejected: 10, staleRejected: 11, senderMismatches: 12 }),
      cluster: () => ({ leases: 3, conflictsResolved: 2 }),
      reconcile: () => ({ runs: 9, errors: 1, lastDurationSeconds: 0.5, durationSecondsSum: 2 }),
      udp: () => ({ packetsForwarded: 11, packetsDropped: 12, droppedSpoofedSource: 5, droppedBadOffloadHeader: 6 }),
    }),
  );
  const m = full.metrics();
  expect(m).toEqual({
    membersByState: { alive: 2, suspect: 1, dead: 0, left: 1 },
    leases: 3,
    gossip: { packetsIn: 1, packetsOut: 2, bytesIn: 3, bytesOut: 4, messagesIn: 5, messagesOut: 6, decryptFailures: 7, decodeFailures: 8, duplicatesSkipped: 9, replaysRejected: 10, staleRejected: 11, senderMismatches: 12 },
    reconcile: { runs: 9, errors: 1, lastDurationSeconds: 0.5, durationSecondsSum: 2 },
    conflictsResolved: 2,
    udp: { packetsForwarded: 11, packetsDropped: 12, droppedSpoofedSource: 5, droppedBadOffloadHeader: 6 },
  });
  const text = await (await createApp(full).request("/metrics")).text();
  const ready = parsePrometheusTextFormat(text).find((f) => f.name === "weft_ready")!;
  expect(ready.metrics[0]!.value).toBe("0");
  expect((await createApp(full).request("/readyz")).status).toBe(503);
});

test("countMembers ignores unknown states", () => {
  expect(countMembers([{ state: "alive" }, { state: "bogus" as never }, { state: "dead" }])).toEqual({ alive: 1, suspect: 0, dead: 1, left: 0 });
});

// Compile-time: the agent's real parts fit StatusParts as they are (tsc checks this file).
import type { Gossip } from "../../src/gossip/types.ts";
import type { Cluster } from "../../src/lease/types.ts";
import type { Reconciler } from "../../src/backend/reconciler.ts";
import type { UdpBackend } from "../../src/backend/udp.ts";
export const wiring = (c: Cluster, g: Gossip, r: Reconciler, u: UdpBackend): Partial<StatusParts> => ({
  members: () => c.members(),
  leases: () => c.leases(),
  subnet: () => c.ownLease()?.subnet ?? null,
  gossip: () => g.metrics(),
  cluster: () => c.metrics(),
  reconcile: () => r.metrics(),
  udp: () => u.counters(),
});

test("wireguard: each node's public key; peers' latest handshake age in seconds (null = none yet); peer and byte metrics", () => {
  const key = (n: number) => Buffer.alloc(32, n).toString("base64");
  const wgLeases = () => [
    { nodeName: "b", publicIp: "192.0.2.12", subnet: "10.244.2.0/24", backend: { type: "wireguard", publicKey: key(2) }, state: "alive" as const, lastSeen: T0 },
    { nodeName: "a", publicIp: "192.0.2.11", subnet: "10.244.1.0/24", backend: { type: "wireguard", publicKey: key(1) }, state: "alive" as const, lastSeen: T0 },
    { nodeName: "c", publicIp: "192.0.2.13", subnet: "10.244.3.0/24", backend: { type: "wireguard", publicKey: key(3) }, state: "alive" as const, lastSeen: T0 },
  ];
  const wireguard = () => ({ peers: [{ publicKey: key(1), lastHandshakeMs: T0 + 60_000 }, { publicKey: key(3), lastHandshakeMs: 0 }], rxBytesTotal: 1234, txBytesTotal: 5678 });
  const source = createStatusSource(parts({ backend: "wireguard", leases: wgLeases, wireguard }));
  expect(source.nodes().map((n) => [n.name, n.publicKey, n.latestHandshakeAgeSeconds])).toEqual([
    ["a", key(1), 30],
    ["b", key(2), undefined],
    ["c", key(3), null],
  ]);
  expect(source.metrics().wireguard).toEqual({ peers: 2, rxBytes: 1234, txBytes: 5678 });
  const fams = parsePrometheusTextFormat(renderMetricsOf(source));
  expect(fams.find((f) => f.name === "weft_wireguard_peers")?.metrics).toEqual([{ value: "2" }]);
  expect(fams.find((f) => f.name === "weft_wireguard_bytes_total")?.metrics).toEqual([
    { labels: { direction: "in" }, value: "1234" },
    { labels: { direction: "out" }, value: "5678" },
  ]);
  // Other backends have no WireGuard figures.
  expect(createStatusSource(parts()).metrics().wireguard).toBeUndefined();
  expect(renderMetricsOf(createStatusSource(parts()))).not.toContain("weft_wireguard");
});

test("cluster keys: status and metrics show the count and the sealing key's fingerprint, never a key; --insecure shows none", () => {
  const key = Buffer.alloc(32, 1);
  const source = createStatusSource(parts({ clusterKeys: () => ({ count: 2, primary: "0123456789abcdef" }) }));
  expect(source.status().clusterKeys).toEqual({ count: 2, primary: "0123456789abcdef" });
  const text = renderMetricsOf(source);
  const fams = parsePrometheusTextFormat(text);
  expect(fams.find((f) => f.name === "weft_cluster_keys")?.metrics).toEqual([{ value: "2" }]);
  expect(fams.find((f) => f.name === "weft_cluster_key_info")?.metrics).toEqual([{ labels: { primary: "0123456789abcdef" }, value: "1" }]);
  expect(text).not.toContain(key.toString("base64"));
  const insecure = createStatusSource(parts({ clusterKeys: () => null }));
  expect(insecure.status().clusterKeys).toBeNull();
  expect(renderMetricsOf(insecure)).not.toContain("weft_cluster_key");
});

test("publicIp and mtu given as functions are read at every request (they follow the underlay)", () => {
  let ip = "192.0.2.12";
  let mtu = 1450;
  const source = createStatusSource(parts({ publicIp: () => ip, mtu: () => mtu }));
  expect(source.status()).toMatchObject({ publicIp: "192.0.2.12", mtu: 1450 });
  ip = "192.0.2.112";
  mtu = 1350;
  expect(source.status()).toMatchObject({ publicIp: "192.0.2.112", mtu: 1350 });
});

test("wireguard, Mode separate: a node that is a peer on both devices shows its latest handshake on either", () => {
  const key = (n: number) => Buffer.alloc(32, n).toString("base64");
  const leases = () => [{ nodeName: "a", publicIp: "192.0.2.11", subnet: "10.244.1.0/24", ipv6Subnet: "fd00:10:244:1::/64", publicIpv6: "2001:db8::11", backend: { type: "wireguard", publicKey: key(1) }, state: "alive" as const, lastSeen: T0 }];
  const wireguard = () => ({ peers: [{ publicKey: key(1), lastHandshakeMs: T0 + 60_000 }, { publicKey: key(1), lastHandshakeMs: 0 }], rxBytesTotal: 0, txBytesTotal: 0 });
  const source = createStatusSource(parts({ backend: "wireguard", leases, wireguard }));
  expect(source.nodes().map((n) => [n.name, n.latestHandshakeAgeSeconds])).toEqual([["a", 30]]);
});
