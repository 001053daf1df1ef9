/**
 * A minimal stand-in for `weft agent` used by the kernel tests and bench/dataplane.sh:
 * runs one backend in the current network namespace (start it with `ip netns exec`)
 * through the real libnl Netlink. Config comes as JSON in argv[2]; then it reads one JSON
 * command per stdin line and answers one JSON line on stdout:
 *   {"peers":[...]}  → apply, answers {"result":ApplyResult}
 *   {"counters":1}   → answers {"counters":UdpCounters|null}
 *   {"close":1}      → close() (dataplane stays), answers {"closed":true} and exits
 *   {"metrics":1}    → answers {"metrics":ReconcilerMetrics|null}
 * At start it answers {"ready":true,"data":BackendData,"result":ApplyResult}.
 * With "reconcile" in the config a Reconciler drives the backend (real clock, kernel
 * events from watchNetlinkEvents) and {"peers"} updates its lease source instead.
 * wireguard takes the node's keys in "wireguardKeys" (so a caller can hand each node its
 * peers' public keys) and answers {"stats":1} with {"stats":WireguardStats|null}.
 */
import { createBackend } from "../../src/backend/create-backend.ts";
import type { BackendConf } from "../../src/net-conf.ts";
import { createLogger } from "../../src/log.ts";
import { openNetlink } from "../../src/sys/libnl.ts";
import type { PeerLease } from "../../src/backend/backend.ts";
import { createReconciler, type Reconciler } from "../../src/backend/reconciler.ts";
import { realClock } from "../../src/clock.ts";
import { watchNetlinkEvents } from "../../src/sys/netlink-events.ts";
import { createWireguardSys } from "../../src/sys/wireguard-sys.ts";

interface NodeAgentConfig {
  backend: BackendConf;
  publicIp?: string;
  underlayIface: string;
  underlayMtu: number;
  ownSubnet?: string;
  network?: string;
  /** IPv6: the node's underlay address, its pod subnet and IPv6Network (each optional). */
  publicIpv6?: string;
  ownIpv6Subnet?: string;
  ipv6Network?: string;
  vtepMac?: string;
  /** udp: force TUN offload on/off (default: try it). */
  udpOffload?: boolean;
  peers: PeerLease[];
  reconcile?: { periodMs?: number };
  wireguardKeys?: { privateKey: string; publicKey: string };
}

const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + "\n");

const cfg = JSON.parse(process.argv[2] ?? "{}") as NodeAgentConfig;
const nl = openNetlink();
const logger = createLogger({ level: (process.env.WEFT_LOG_LEVEL as "info") ?? "warn", component: `node-agent` });
const given = <K extends "publicIp" | "ownSubnet" | "network" | "publicIpv6" | "ownIpv6Subnet" | "ipv6Network">(k: K) => (cfg[k] !== undefined ? { [k]: cfg[k] } : {});
const backend = createBackend(cfg.backend, {
  nl,
  ...given("publicIp"),
  ...given("ownSubnet"),
  ...given("network"),
  ...given("publicIpv6"),
  ...given("ownIpv6Subnet"),
  ...given("ipv6Network"),
  underlayIface: cfg.underlayIface,
  underlayMtu: cfg.underlayMtu,
  ...(cfg.vtepMac ? { vtepMac: cfg.vtepMac } : {}),
  ...(cfg.udpOffload !== undefined ? { udpOffload: cfg.udpOffload } : {}),
  ...(cfg.wireguardKeys ? { wireguard: { keys: cfg.wireguardKeys, sys: createWireguardSys({ logger }) } } : {}),
  logger,
});
let peers = cfg.peers;
const leaseListeners = new Set<() => void>();
let reconciler: Reconciler | undefined;
try {
  const data = await backend.up();
  if (cfg.reconcile) {
    reconciler = createReconciler({
      backend,
      peers: () => peers,
      clock: realClock,
      logger,
      onLeasesChange: (fn) => (leaseListeners.add(fn), () => void leaseListeners.delete(fn)),
      watchEvents: (fn) => watchNetlinkEvents(fn),
      ...(cfg.reconcile.periodMs ? { periodMs: cfg.reconcile.periodMs } : {}),
    });
    out({ ready: true, data, result: reconciler.start() });
  } else out({ ready: true, data, result: backend.apply(peers) });
} catch (e) {
  out({ ready: false, error: (e as Error).message });
  process.exit(1);
}

let buf = "";
for await (const chunk of Bun.stdin.stream()) {
  buf += new TextDecoder().decode(chunk);
  let nlAt: number;
  while ((nlAt = buf.indexOf("\n")) >= 0) {
    const line = buf.slice(0, nlAt).trim();
    buf = buf.slice(nlAt + 1);
    if (!line) continue;
    try {
      const cmd = JSON.parse(line) as { peers?: PeerLease[]; counters?: unknown; close?: unknown };
      if (cmd.peers && reconciler) {
        peers = cmd.peers;
        for (const l of leaseListeners) l();
        out({ ok: true });
      } else if (cmd.peers) out({ result: backend.apply(cmd.peers) });
      else if ((cmd as { metrics?: unknown }).metrics) out({ metrics: reconciler?.metrics() ?? null });
      else if (cmd.counters) out({ counters: backend.counters?.() ?? null });
      else if ((cmd as { stats?: unknown }).stats) out({ stats: backend.stats?.() ?? null });
      else if (cmd.close) {
        reconciler?.stop();
        backend.close();
        nl.close();
        out({ closed: true });
        process.exit(0);
      } else out({ error: `unknown command ${line}` });
    } catch (e) {
      out({ error: (e as Error).message });
    }
  }
}
reconciler?.stop();
backend.close();
nl.close();
