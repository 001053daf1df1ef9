/**
 * The agent's port to the node: every effect the agent has outside the lease layer goes
 * through an AgentHost, so the agent's own logic (start-up order, readiness, displacement,
 * renumbering, stop) runs in tests on fakes — a RecordingNetlink, a MemNetwork transport,
 * a FakeClock — without root. `realHost` is the node: libnl, UDP/TCP sockets, /proc/sys,
 * files, nftables, the netlink event socket, WireGuard.
 *
 * Contract: calls are synchronous unless they return a Promise; each throws an Error
 * naming what failed (the agent logs it, retries through the reconciler, or exits 1).
 * The agent owns what it gets: it closes the netlink port, the transport (through the
 * lease layer), the API server, the event watcher and the WireGuard control at stop.
 */
import { rmSync } from "node:fs";
import { serveApi, type ApiServer, type ServeApiOptions } from "./api/index.ts";
import { createBackend } from "./backend/create-backend.ts";
import { loadOrCreateWireguardKeys, type WireguardKeys } from "./backend/wireguard-key.ts";
import { ensureBridge, type BridgeSpec } from "./bridge.ts";
import { createUdpTransport, type Transport } from "./gossip/index.ts";
import { createStateStore, type StateStore } from "./lease/state-store.ts";
import type { Logger } from "./log.ts";
import { writeSubnetEnv, type SubnetEnv } from "./subnet-env.ts";
import { resolveUnderlay, type Underlay, type UnderlayWant } from "./sys/iface.ts";
import { ensureIpMasq, removeIpMasq, type IpFamily, type IpMasqSpec } from "./sys/ipmasq.ts";
import { openNetlink } from "./sys/libnl.ts";
import type { Netlink } from "./sys/netlink.ts";
import { watchNetlinkEvents, type NetlinkEvent, type WatchOptions, type Watcher } from "./sys/netlink-events.ts";
import { writeSysctl } from "./sys/sysctl.ts";
import type { WireguardSys } from "./sys/wireguard.ts";
import { createWireguardSys } from "./sys/wireguard-sys.ts";

export interface AgentHost {
  /** The netlink port for the node's network namespace. */
  openNetlink(): Netlink;
  /** Underlay interface, public addresses and MTU, from the flags or the default route. */
  resolveUnderlay(nl: Netlink, want: UnderlayWant): Underlay;
  /** The gossip transport (UDP + TCP) bound to bindAddr:port. */
  createTransport(o: { bindAddr: string; port: number; logger: Logger }): Promise<Transport>;
  /** The lease layer's persistent state (node identity, own lease) under `dir`. */
  stateStore(dir: string, logger: Logger): StateStore;
  /** The status API server. */
  serveApi(o: ServeApiOptions): ApiServer;
  /** Sets a sysctl (net.ipv4.ip_forward, net.ipv6.conf.all.forwarding). */
  writeSysctl(name: string, value: number): void;
  /** Writes subnet.env for the CNI plugin; returns whether the file changed. */
  writeSubnetEnv(path: string, env: SubnetEnv): boolean;
  /** Removes subnet.env (the lease was given back); a missing file is fine. */
  removeSubnetEnv(path: string): void;
  /** Makes the bridge match `spec`; returns the number of kernel changes. */
  ensureBridge(nl: Netlink, spec: BridgeSpec): number;
  /** Keeps the masquerade rules in place for `spec` (the table of its family: ip weft or ip6 weft). */
  ensureIpMasq(spec: IpMasqSpec): { changed: boolean };
  /** Removes the masquerade rules of `family` if present. */
  removeIpMasq(family: IpFamily): { changed: boolean };
  /** Hears link/address/route/neighbour changes made by anyone. */
  watchNetlinkEvents(onEvent: (e: NetlinkEvent) => void, opts: WatchOptions): Watcher;
  /** The node's WireGuard key pair under `stateDir` (made on first use). */
  wireguardKeys(stateDir: string, logger: Logger): WireguardKeys;
  /** WireGuard device control: the kernel module, or wireguard-go. */
  wireguardSys(logger: Logger): WireguardSys & { close?(): void };
  /** The dataplane backend for net-conf's Backend. */
  createBackend: typeof createBackend;
}

/** The node itself. */
export const realHost: AgentHost = {
  openNetlink: () => openNetlink(),
  resolveUnderlay,
  createTransport: (o) => createUdpTransport(o),
  stateStore: (dir, logger) => createStateStore({ dir, logger }),
  serveApi,
  writeSysctl: (name, value) => writeSysctl(name, value),
  writeSubnetEnv,
  removeSubnetEnv: (path) => rmSync(path, { force: true }),
  ensureBridge,
  ensureIpMasq: (spec) => ensureIpMasq(spec),
  removeIpMasq: (family) => removeIpMasq({ family }),
  watchNetlinkEvents,
  wireguardKeys: loadOrCreateWireguardKeys,
  wireguardSys: (logger) => createWireguardSys({ logger }),
  createBackend,
};
