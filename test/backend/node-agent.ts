/**
 * A minimal stand-in for `weft agent` used by the kernel tests and bench/dataplane.sh:
 * runs one backend in the current network namespace (start it with `ip netns exec`)
 * through the real libnl Netlink. Config comes as JSON in argv[2]; then it reads one JSON
 * command per stdin line and answers one JSON line on stdout:
 *   {"peers":[...]}  → apply, answers {"result":ApplyResult}
 *   {"counters":1}   → answers {"counters":UdpCounters|null}
 *   {"close":1}      → close() (dataplane stays), answers {"closed":true} and exits
 * At start it answers {"ready":true,"data":BackendData,"result":ApplyResult}.
 */
import { createBackend } from "../../src/backend/create-backend.ts";
import type { BackendConf } from "../../src/config.ts";
import { createLogger } from "../../src/log.ts";
import { openNetlink } from "../../src/sys/libnl.ts";
import type { PeerLease } from "../../src/backend/backend.ts";

interface NodeAgentConfig {
  backend: BackendConf;
  publicIp: string;
  underlayIface: string;
  underlayMtu: number;
  ownSubnet: string;
  network: string;
  vtepMac?: string;
  /** udp: force TUN offload on/off (default: try it). */
  udpOffload?: boolean;
  peers: PeerLease[];
}

const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + "\n");

const cfg = JSON.parse(process.argv[2] ?? "{}") as NodeAgentConfig;
const nl = openNetlink();
const logger = createLogger({ level: (process.env.WEFT_LOG_LEVEL as "info") ?? "warn", component: `node-agent` });
const backend = createBackend(cfg.backend, {
  nl,
  publicIp: cfg.publicIp,
  underlayIface: cfg.underlayIface,
  underlayMtu: cfg.underlayMtu,
  ownSubnet: cfg.ownSubnet,
  network: cfg.network,
  ...(cfg.vtepMac ? { vtepMac: cfg.vtepMac } : {}),
  ...(cfg.udpOffload !== undefined ? { udpOffload: cfg.udpOffload } : {}),
  logger,
});
try {
  const data = await backend.up();
  out({ ready: true, data, result: backend.apply(cfg.peers) });
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
      if (cmd.peers) out({ result: backend.apply(cmd.peers) });
      else if (cmd.counters) out({ counters: backend.counters?.() ?? null });
      else if (cmd.close) {
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
backend.close();
nl.close();
