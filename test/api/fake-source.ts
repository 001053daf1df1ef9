/** A StatusSource with settable answers, for API and `weft status` tests. */
import type { AgentStatus, MetricsSnapshot, NodeStatus, Readiness, StatusSource } from "../../src/api/status.ts";

export interface FakeSourceState {
  status: AgentStatus;
  nodes: NodeStatus[];
  readiness: Readiness;
  metrics: MetricsSnapshot;
  healthy: boolean;
  /** When set, every method throws this. */
  throwWith?: Error;
}

export function sampleState(): FakeSourceState {
  return {
    status: {
      node: "wop-a",
      publicIp: "192.0.2.11",
      network: "10.244.0.0/16",
      subnet: "10.244.1.0/24",
      backend: "vxlan",
      mtu: 1450,
      members: { alive: 2, suspect: 1, dead: 0, left: 0 },
      version: "0.1.0",
      uptimeSeconds: 42,
      problems: [],
    },
    nodes: [
      { name: "wop-a", publicIp: "192.0.2.11", subnet: "10.244.1.0/24", backend: "vxlan", state: "alive", lastSeen: "2026-11-24T12:00:00.000Z", vtepMac: "aa:bb:cc:00:00:01" },
      { name: "wop-b", publicIp: "192.0.2.12", subnet: "10.244.2.0/24", backend: "vxlan", state: "suspect", lastSeen: "2026-11-24T11:59:30.000Z" },
      { name: "wop-c", publicIp: "192.0.2.13", subnet: "10.244.3.0/24", backend: "vxlan", state: "alive", lastSeen: null },
    ],
    readiness: { ready: true },
    metrics: {
      membersByState: { alive: 2, suspect: 1, dead: 0, left: 0 },
      leases: 3,
      gossip: { packetsIn: 10, packetsOut: 11, bytesIn: 1200, bytesOut: 1300, messagesIn: 20, messagesOut: 21, decryptFailures: 2, decodeFailures: 1, duplicatesSkipped: 3, replaysRejected: 4, staleRejected: 5, senderMismatches: 6 },
      reconcile: { runs: 5, errors: 1, lastDurationSeconds: 0.004, durationSecondsSum: 0.02 },
      conflictsResolved: 1,
      udp: { packetsForwarded: 100, packetsDropped: 3, droppedSpoofedSource: 2, droppedBadOffloadHeader: 1 },
    },
    healthy: true,
  };
}

export function fakeSource(state: FakeSourceState = sampleState()): StatusSource & { state: FakeSourceState } {
  const guard = <T>(v: () => T): T => {
    if (state.throwWith) throw state.throwWith;
    return v();
  };
  return {
    state,
    status: () => guard(() => state.status),
    nodes: () => guard(() => state.nodes),
    readiness: () => guard(() => state.readiness),
    metrics: () => guard(() => state.metrics),
    healthy: () => guard(() => state.healthy),
  };
}
