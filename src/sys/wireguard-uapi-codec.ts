/**
 * The text protocol of userspace WireGuard implementations (wireguard-go), from
 * wireguard.com/xplatform: a request is `get=1` or `set=1` then `key=value` lines and a
 * blank line; the answer ends with `errno=N` and a blank line. Keys travel as hex there,
 * as base64 everywhere else in weft. Pure, so the exact text is unit-tested.
 */
import type { WgDeviceConfig, WgDeviceInfo, WgPeerInfo } from "./wireguard.ts";

const ZERO_KEY_HEX = "0".repeat(64);

/** base64 key → 64 hex digits; throws naming `what` only (the value may be a secret). */
export function keyHex(key: string, what: string): string {
  const b = Buffer.from(key, "base64");
  if (b.length !== 32 || b.toString("base64") !== key) throw new Error(`${what}: expected base64 of 32 bytes`);
  return b.toString("hex");
}

const hexKey = (hex: string): string => Buffer.from(hex, "hex").toString("base64");

export const UAPI_GET = "get=1\n\n";

/** A `set=1` request for `cfg`: peers are removed, or set whole (allowed IPs replaced). */
export function encodeUapiSet(cfg: WgDeviceConfig): string {
  const lines = ["set=1"];
  if (cfg.privateKey !== undefined) lines.push(`private_key=${keyHex(cfg.privateKey, "private key")}`);
  if (cfg.listenPort !== undefined) lines.push(`listen_port=${cfg.listenPort}`);
  for (const p of cfg.peers) {
    lines.push(`public_key=${keyHex(p.publicKey, "peer public key")}`);
    if (p.remove) {
      lines.push("remove=true");
      continue;
    }
    lines.push(`preshared_key=${p.presharedKey ? keyHex(p.presharedKey, "preshared key") : ZERO_KEY_HEX}`);
    lines.push(`endpoint=${p.endpoint}`);
    lines.push(`persistent_keepalive_interval=${p.persistentKeepaliveInterval}`);
    lines.push("replace_allowed_ips=true");
    for (const ip of p.allowedIps) lines.push(`allowed_ip=${ip}`);
  }
  return `${lines.join("\n")}\n\n`;
}

/** The errno of an answer (0 = success); throws when there is none. */
export function uapiErrno(answer: string): number {
  const m = /(?:^|\n)errno=(-?\d+)\n/.exec(answer);
  if (!m) throw new Error(`no errno line in the answer (${answer.length} bytes)`);
  return Number(m[1]);
}

/** The device in a `get=1` answer; throws on a non-zero errno. */
export function parseUapiGet(answer: string): WgDeviceInfo {
  const errno = uapiErrno(answer);
  if (errno !== 0) throw new Error(`errno ${errno}`);
  const dev: WgDeviceInfo = { listenPort: 0, fwmark: 0, peers: [] };
  let peer: WgPeerInfo | undefined;
  let sec = 0;
  for (const line of answer.split("\n")) {
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === "public_key") {
      peer = { publicKey: hexKey(value), allowedIps: [], persistentKeepaliveInterval: 0, lastHandshakeMs: 0, rxBytes: 0, txBytes: 0 };
      dev.peers.push(peer);
      continue;
    }
    if (!peer) {
      if (key === "private_key" && value !== ZERO_KEY_HEX) dev.privateKey = hexKey(value);
      else if (key === "listen_port") dev.listenPort = Number(value);
      else if (key === "fwmark") dev.fwmark = Number(value);
      continue;
    }
    switch (key) {
      case "preshared_key":
        if (value !== ZERO_KEY_HEX) peer.presharedKey = hexKey(value);
        break;
      case "endpoint":
        peer.endpoint = value;
        break;
      case "persistent_keepalive_interval":
        peer.persistentKeepaliveInterval = Number(value);
        break;
      case "allowed_ip":
        peer.allowedIps.push(value);
        break;
      case "last_handshake_time_sec":
        sec = Number(value);
        break;
      case "last_handshake_time_nsec":
        peer.lastHandshakeMs = sec * 1000 + Math.floor(Number(value) / 1e6);
        break;
      case "rx_bytes":
        peer.rxBytes = Number(value);
        break;
      case "tx_bytes":
        peer.txBytes = Number(value);
        break;
    }
  }
  return dev;
}
