/**
 * createCluster: the lease layer wired to the real gossip layer and the on-disk state
 * store. Tests and the bench inject a MemNetwork transport and a FakeClock; the agent
 * passes a UDP transport and the real clock.
 *
 * @example
 * const transport = await createUdpTransport({ bindAddr: "192.0.2.10", port: 7946, logger });
 * const cluster = createCluster({ net, nodeName: "node-a", publicIp: "192.0.2.10",
 *   advertiseAddr: transport.localAddr(), seeds: ["192.0.2.11:7946"],
 *   backend: (nodeId) => ({ type: "vxlan", vtepMac: stableMac(nodeId) }),
 *   stateDir: "/var/lib/weft", transport, gossipConfig: lanConfig(), keyring,
 *   clock: realClock, logger });
 * const lease = await cluster.start(signal);
 */
import { CLOCK_SKEW_MS } from "../clock.ts";
import { createGossip, type GossipConfig, type Transport } from "../gossip/index.ts";
import type { Keyring } from "../gossip/types.ts";
import { createClusterCore } from "./cluster-core.ts";
import type { ClusterCore, ClusterCoreOptions } from "./cluster-options.ts";
import { createStateStore, type StateStore } from "./state-store.ts";

export interface ClusterOptions extends Omit<ClusterCoreOptions, "store" | "maxClockSkewMs"> {
  /** Directory of identity.json and lease.json (created 0700 on first write). */
  stateDir: string;
  /** Overrides the on-disk store (tests). */
  store?: StateStore;
  transport: Transport;
  /** Gossip timings; its maxClockSkewMs is replaced by clockSkewMs. */
  gossipConfig: GossipConfig;
  /**
   * The largest disagreement between two nodes' clocks the cluster tolerates, ms
   * (CLOCK_SKEW_MS, 30 s). Both layers' bounds derive from it: gossip's maxClockSkewMs is
   * this, the lease layer's is twice this (src/clock.ts says why).
   */
  clockSkewMs?: number;
  /** null = no encryption (--insecure). */
  keyring: Keyring | null;
  /** Bound into every sealed packet: two clusters sharing a key still cannot mix. Default "weft". */
  clusterName?: string;
  /** Gossip metadata (≤ 256 bytes). */
  meta?: Uint8Array;
  /** Gossip PRNG seed (deterministic simulations). */
  seed?: number;
}

export function createCluster(opts: ClusterOptions): ClusterCore {
  const { stateDir, transport, gossipConfig, keyring, clusterName = "weft", meta, seed, store, clockSkewMs = CLOCK_SKEW_MS, ...core } = opts;
  const st = store ?? createStateStore({ dir: stateDir, logger: opts.logger.child("state") });
  let cluster: ClusterCore | undefined;
  cluster = createClusterCore({ ...core, store: st, maxClockSkewMs: 2 * clockSkewMs }, (delegate) =>
    createGossip({
      name: opts.nodeName,
      advertiseAddr: opts.advertiseAddr,
      ...(meta ? { meta } : {}),
      ...(seed !== undefined ? { seed } : {}),
      transport,
      config: { ...gossipConfig, maxClockSkewMs: clockSkewMs },
      deps: {
        clock: opts.clock,
        logger: opts.logger,
        delegate,
        listener: {
          onJoin: (m) => cluster?.memberEvent("join", m),
          onUpdate: (m) => cluster?.memberEvent("update", m),
          onLeave: (m) => cluster?.memberEvent("leave", m),
        },
        keyring,
        clusterName,
      },
    }),
  );
  return cluster;
}
