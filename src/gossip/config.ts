/**
 * One typed gossip configuration, every knob with its meaning and unit beside its
 * default (memberlist config.go). `lanConfig()` suits a datacenter LAN; `localConfig()`
 * uses faster timings for loopback tests. Derived quantities (retransmit limit,
 * suspicion timeout, push-pull scaling) are small pure functions below.
 */
import { CLOCK_SKEW_MS } from "../clock.ts";

export interface GossipConfig {
  /** Time between failure-detector probes of one member, ms. Scaled up by local health. */
  probeIntervalMs: number;
  /** How long a direct probe waits for an ack before asking peers to probe indirectly, ms. */
  probeTimeoutMs: number;
  /** Peers asked to probe a silent member on our behalf (SWIM's k). */
  indirectChecks: number;
  /** Also probe over TCP when a UDP probe goes unanswered, so a UDP-lossy path alone does not raise suspicion (memberlist's TCP fallback ping). */
  tcpFallbackPing: boolean;
  /** Time between gossip rounds that push queued broadcasts, ms. */
  gossipIntervalMs: number;
  /** Random members each gossip round sends to. */
  gossipNodes: number;
  /** Most packets per gossip target per round (no broadcast twice to one target in a round), so a backlog, e.g. a join storm, drains faster; with a short queue it is one packet. */
  gossipBurstPackets: number;
  /** How long dead/left members are still gossiped to and kept in the list before being reaped, ms. */
  gossipToTheDeadMs: number;
  /** Retransmit limit of a broadcast we originate = retransmitMult · ⌈log10(N+1)⌉. */
  retransmitMult: number;
  /** Retransmit limit of news we re-gossip for another node = this · ⌈log10(N+1)⌉ (see docs/gossip.md, "Relay limit"). */
  relayRetransmitMult: number;
  /** Minimum suspicion timeout = suspicionMult · max(1, log10(N)) · probeInterval. */
  suspicionMult: number;
  /** Maximum suspicion timeout (no confirmations) = this · the minimum. */
  suspicionMaxTimeoutMult: number;
  /** Time between periodic TCP push-pull anti-entropy exchanges, ms; scaled up above 32 members. 0 disables. */
  pushPullIntervalMs: number;
  /** Local-health multiplier cap: a starved node probes and times out up to this many times slower. */
  awarenessMaxMultiplier: number;
  /** Time between attempts to push-pull with one random failed (dead, not left) member, ms; heals partitions after the dead were reaped. 0 disables. */
  reconnectIntervalMs: number;
  /** How long a failed member's address is kept for reconnect attempts, ms. */
  reconnectTimeoutMs: number;
  /** A dead member's name may be re-taken by a node at another address after it has been dead this long, ms. */
  deadNodeReclaimMs: number;
  /** Largest UDP datagram we send or accept, bytes (sealed size; several messages share one). */
  udpBufferSize: number;
  /** Largest push-pull stream message we send or accept, bytes. */
  maxStreamBytes: number;
  /** A push-pull exchange (connect, send, reply) must finish within this, ms. */
  streamTimeoutMs: number;
  /** First delay between join attempts when no seed answered, ms; doubles each attempt. */
  joinRetryMinMs: number;
  /** Cap of the join retry delay, ms. */
  joinRetryMaxMs: number;
  /** Most broadcasts kept queued; beyond it the most-retransmitted are dropped. */
  broadcastQueueMax: number;
  /** Most members accepted from one push-pull message. */
  maxMembers: number;
  /**
   * Largest difference between a sealed message's sent-at time (the sender's clock) and
   * our clock at which it is still accepted, ms (CLOCK_SKEW_MS, 30 s; createCluster sets
   * it together with the lease layer's bound). Bounds how long a captured message can be
   * replayed at all; message ids are remembered for as long (see docs/gossip.md,
   * "Anti-replay"). Clocks of all nodes must agree within this.
   */
  maxClockSkewMs: number;
  /**
   * Most message ids remembered to refuse replays inside the clock-skew window (32 bytes
   * each, grown on demand). When full, the oldest is forgotten and nothing sealed at or
   * before its sent-at time is accepted any more.
   */
  replayCacheMax: number;
  /**
   * The sealed wire format during a rolling upgrade (memberlist's GossipVerifyIncoming/
   * Outgoing): "off" sends and accepts only the current format; "accept" sends it and
   * also accepts the legacy one; "send" sends the legacy one and accepts both. Legacy
   * messages carry no time, id or sender, so they get no replay protection.
   */
  legacyWire: LegacyWire;
}

/** See GossipConfig.legacyWire. */
export type LegacyWire = "off" | "accept" | "send";
export const LEGACY_WIRE_MODES: readonly LegacyWire[] = ["off", "accept", "send"];

/** Defaults for a LAN, after memberlist's DefaultLANConfig. */
export function lanConfig(overrides: Partial<GossipConfig> = {}): GossipConfig {
  return validate({
    probeIntervalMs: 1000,
    probeTimeoutMs: 500,
    indirectChecks: 3,
    tcpFallbackPing: true,
    gossipIntervalMs: 200,
    gossipNodes: 3,
    gossipBurstPackets: 8,
    gossipToTheDeadMs: 30_000,
    retransmitMult: 4,
    relayRetransmitMult: 2,
    suspicionMult: 4,
    suspicionMaxTimeoutMult: 6,
    pushPullIntervalMs: 30_000,
    awarenessMaxMultiplier: 8,
    deadNodeReclaimMs: 10_000,
    reconnectIntervalMs: 10_000,
    reconnectTimeoutMs: 24 * 3600_000,
    udpBufferSize: 1400,
    maxStreamBytes: 8 * 1024 * 1024,
    streamTimeoutMs: 10_000,
    joinRetryMinMs: 1000,
    joinRetryMaxMs: 30_000,
    broadcastQueueMax: 4096,
    maxMembers: 16_384,
    maxClockSkewMs: CLOCK_SKEW_MS,
    replayCacheMax: 65_536,
    legacyWire: "off",
    ...overrides,
  });
}

/** Faster timings for tests on loopback (memberlist's DefaultLocalConfig, tightened). */
export function localConfig(overrides: Partial<GossipConfig> = {}): GossipConfig {
  return lanConfig({
    probeIntervalMs: 200,
    probeTimeoutMs: 100,
    gossipIntervalMs: 50,
    suspicionMult: 3,
    suspicionMaxTimeoutMult: 4,
    gossipToTheDeadMs: 5_000,
    pushPullIntervalMs: 5_000,
    deadNodeReclaimMs: 1_000,
    reconnectIntervalMs: 1_000,
    reconnectTimeoutMs: 300_000,
    streamTimeoutMs: 2_000,
    joinRetryMinMs: 100,
    joinRetryMaxMs: 1_000,
    ...overrides,
  });
}

function validate(c: GossipConfig): GossipConfig {
  type NumericKey = { [K in keyof GossipConfig]: GossipConfig[K] extends number ? K : never }[keyof GossipConfig];
  const positive: NumericKey[] = [
    "probeIntervalMs", "probeTimeoutMs", "gossipIntervalMs", "retransmitMult", "relayRetransmitMult", "suspicionMult",
    "suspicionMaxTimeoutMult", "awarenessMaxMultiplier", "udpBufferSize", "maxStreamBytes",
    "streamTimeoutMs", "gossipBurstPackets", "joinRetryMinMs", "joinRetryMaxMs", "broadcastQueueMax", "maxMembers",
    "maxClockSkewMs", "replayCacheMax",
  ];
  for (const k of positive) {
    if (!(Number.isFinite(c[k]) && c[k] > 0)) throw new RangeError(`gossip config ${k}: must be a positive number, got ${c[k]}`);
  }
  for (const k of ["indirectChecks", "gossipNodes", "gossipToTheDeadMs", "pushPullIntervalMs", "deadNodeReclaimMs", "reconnectIntervalMs", "reconnectTimeoutMs"] as const) {
    if (!(Number.isFinite(c[k]) && c[k] >= 0)) throw new RangeError(`gossip config ${k}: must be a number ≥ 0, got ${c[k]}`);
  }
  if (typeof c.tcpFallbackPing !== "boolean") throw new RangeError(`gossip config tcpFallbackPing: must be true or false, got ${c.tcpFallbackPing}`);
  if (!Number.isInteger(c.replayCacheMax) || c.replayCacheMax < 16) throw new RangeError(`gossip config replayCacheMax: must be an integer ≥ 16, got ${c.replayCacheMax}`);
  if (!LEGACY_WIRE_MODES.includes(c.legacyWire)) throw new RangeError(`gossip config legacyWire: must be one of ${LEGACY_WIRE_MODES.join(", ")}, got ${JSON.stringify(c.legacyWire)}`);
  if (c.probeTimeoutMs > c.probeIntervalMs) throw new RangeError(`gossip config probeTimeoutMs: must not exceed probeIntervalMs (${c.probeIntervalMs})`);
  if (c.udpBufferSize < 512 || c.udpBufferSize > 65_000) throw new RangeError(`gossip config udpBufferSize: must be within 512..65000 bytes, got ${c.udpBufferSize}`);
  return c;
}

/** How many times each broadcast is sent: mult · ⌈log10(n+1)⌉ (memberlist retransmitLimit). */
export function retransmitLimit(mult: number, n: number): number {
  return mult * Math.ceil(Math.log10(Math.max(0, n) + 1));
}

/** Minimum suspicion timeout, ms: mult · max(1, log10(n)) · interval (memberlist suspicionTimeout). */
export function suspicionTimeout(mult: number, n: number, intervalMs: number): number {
  const scale = Math.max(1, Math.log10(Math.max(1, n)));
  return Math.floor(mult * scale * intervalMs);
}

/** Push-pull interval for n members: unchanged up to 32, then +1× per doubling (memberlist pushPullScale). */
export function pushPullScale(intervalMs: number, n: number): number {
  const threshold = 32;
  if (n <= threshold) return intervalMs;
  const mult = Math.ceil(Math.log2(n) - Math.log2(threshold)) + 1;
  return mult * intervalMs;
}
