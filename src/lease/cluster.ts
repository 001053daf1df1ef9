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
import { createGossip, type GossipConfig, type Transport } from "../gossip/index.ts";
import type { Keyring } from "../gossip/types.ts";
import { createClusterCore, type ClusterCore, type ClusterCoreOptions } from "./cluster-core.ts";
import { createStateStore, type StateStore } from "./state-store.ts";

export type { ClusterCore } from "./cluster-core.ts";

export interface ClusterOptions extends Omit<ClusterCoreOptions, "store"> {
  /** Directory of identity.json and lease.json (created 0700 on first write). */
  stateDir: string;
  /** Overrides the on-disk store (tests). */
  store?: StateStore;
  transport: Transport;
  gossipConfig: GossipConfig;
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
  const { stateDir, transport, gossipConfig, keyring, clusterName = "weft", meta, seed, store, ...core } = opts;
  const st = store ?? createStateStore({ dir: stateDir, logger: opts.logger.child("state") });
  let cluster: ClusterCore | undefined;
  cluster = createClusterCore({ ...core, store: st }, (delegate) =>
    createGossip({
      name: opts.nodeName,
      advertiseAddr: opts.advertiseAddr,
      ...(meta ? { meta } : {}),
      ...(seed !== undefined ? { seed } : {}),
      transport,
      config: gossipConfig,
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
