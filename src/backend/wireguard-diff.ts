/**
 * The wireguard backend's diff: the device as read back versus the device the leases
 * ask for, as one WgDeviceConfig that changes only the difference. Peers are keyed by
 * public key; a peer whose endpoint, allowed IPs, keepalive or PSK differ is sent whole
 * (allowed IPs replaced). Additions and updates come before removals, so a re-keyed node
 * (new key, same subnet) moves its subnet to the new peer before the old one goes and
 * traffic to it never has no peer. Pure: the same engine serves the kernel and wireguard-go.
 */
import type { WgDeviceConfig, WgDeviceInfo, WgPeerConfig } from "../sys/wireguard.ts";

export interface WantPeer {
  nodeName: string;
  publicKey: string;
  endpoint: string;
  allowedIps: string[];
  persistentKeepaliveInterval: number;
  presharedKey?: string;
}

export interface WantDevice {
  privateKey: string;
  listenPort: number;
  /** Left out: the device's peers stay as they are (only key and port are checked). */
  peers?: WantPeer[];
  /** Send every wanted peer's endpoint even where it is unchanged (drops its cached source address). */
  resendEndpoints?: boolean;
}

export interface DeviceDiff {
  /** undefined when the device already matches. */
  config: WgDeviceConfig | undefined;
  /** One readable line per change (keys abbreviated, no secrets), for logs and counting. */
  changes: string[];
}

export const shortKey = (k: string): string => `${k.slice(0, 8)}…`;
const sameSet = (a: string[], b: string[]) => a.length === b.length && [...a].sort().join() === [...b].sort().join();

export function diffDevice(cur: WgDeviceInfo, want: WantDevice): DeviceDiff {
  const changes: string[] = [];
  const config: WgDeviceConfig = { peers: [] };
  if (cur.privateKey !== want.privateKey) {
    config.privateKey = want.privateKey;
    changes.push("set private key");
  }
  if (cur.listenPort !== want.listenPort) {
    config.listenPort = want.listenPort;
    changes.push(`set listen-port ${want.listenPort}`);
  }
  const have = new Map(cur.peers.map((p) => [p.publicKey, p]));
  const wanted = new Set<string>();
  for (const w of want.peers ?? []) {
    wanted.add(w.publicKey);
    const c = have.get(w.publicKey);
    const differs: string[] = [];
    if (c) {
      if (c.endpoint !== w.endpoint) differs.push(`endpoint ${c.endpoint ?? "none"} -> ${w.endpoint}`);
      if (!sameSet(c.allowedIps, w.allowedIps)) differs.push(`allowed-ips ${c.allowedIps.join(",") || "none"} -> ${w.allowedIps.join(",")}`);
      if (c.persistentKeepaliveInterval !== w.persistentKeepaliveInterval) differs.push(`persistent-keepalive ${c.persistentKeepaliveInterval} -> ${w.persistentKeepaliveInterval}`);
      if (c.presharedKey !== w.presharedKey) differs.push(w.presharedKey ? "preshared-key set" : "preshared-key removed");
      if (differs.length === 0 && !want.resendEndpoints) continue;
      if (differs.length === 0) differs.push(`endpoint ${w.endpoint} sent again (this node's address moved)`);
    }
    const peer: WgPeerConfig = { publicKey: w.publicKey, presharedKey: w.presharedKey ?? null, endpoint: w.endpoint, persistentKeepaliveInterval: w.persistentKeepaliveInterval, allowedIps: w.allowedIps };
    config.peers.push(peer);
    changes.push(c ? `update peer ${w.nodeName} ${shortKey(w.publicKey)}: ${differs.join(", ")}` : `add peer ${w.nodeName} ${shortKey(w.publicKey)} endpoint ${w.endpoint} allowed-ips ${w.allowedIps.join(",")}`);
  }
  for (const c of want.peers ? cur.peers : []) {
    if (wanted.has(c.publicKey)) continue;
    config.peers.push({ publicKey: c.publicKey, remove: true });
    changes.push(`remove peer ${shortKey(c.publicKey)}${c.allowedIps.length ? ` (allowed-ips ${c.allowedIps.join(",")})` : ""}`);
  }
  return { config: changes.length ? config : undefined, changes };
}
