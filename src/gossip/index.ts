/**
 * The gossip layer's entry point: `createGossip` plus the pieces the agent wires in.
 *
 * @example
 * const transport = await createUdpTransport({ bindAddr: "192.0.2.10", port: 7946, logger });
 * const g = createGossip({ name: "node-a", advertiseAddr: transport.localAddr(), transport,
 *   config: lanConfig(), deps: { clock: realClock, logger, delegate, keyring, clusterName: "weft" } });
 * await g.start();
 * await g.join(["192.0.2.11:7946"], signal);
 */
import { type CreateGossipOptions, GossipImpl, type GossipNode } from "./gossip.ts";

export type { CreateGossipOptions, GossipNode } from "./gossip.ts";
export { type GossipConfig, lanConfig, localConfig, retransmitLimit, suspicionTimeout, pushPullScale } from "./config.ts";
export type { Transport } from "./transport.ts";
export { createUdpTransport } from "./udp-transport.ts";
export { parseKeyFile, loadKeyFile } from "./keyring.ts";
export * from "./types.ts";

/** Builds a gossip node; call start() (or join(), which starts it) to run it. */
export function createGossip(opts: CreateGossipOptions): GossipNode {
  return new GossipImpl(opts);
}
