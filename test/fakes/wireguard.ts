/**
 * An in-memory WireGuard behind the WireguardSys port, paired with a RecordingNetlink:
 * creating a device adds the link there (kind "wireguard" for the kernel, "tun" for
 * wireguard-go), deleting the link there kills the device. Every change made through the
 * port is recorded as `wg`-like text; private and preshared keys show as "(hidden)".
 * `outside` changes (an operator with `wg`) are not recorded.
 */
import type { WgDeviceConfig, WgDeviceInfo, WireguardImpl, WireguardSys } from "../../src/sys/wireguard.ts";
import type { LinkInfo } from "../../src/sys/netlink.ts";
import type { RecordingNetlink } from "./netlink.ts";

export class RecordingWireguard implements WireguardSys {
  readonly ops: string[] = [];
  /** What createDevice can use: the kernel module, wireguard-go, both or neither. */
  kernel = false;
  userspace = true;
  private devices = new Map<string, { impl: WireguardImpl; info: WgDeviceInfo; ifindex: number }>();
  private failures: { match: RegExp; message: string }[] = [];

  constructor(private readonly nl: RecordingNetlink) {}

  takeOps(): string[] {
    return this.ops.splice(0);
  }

  /** The next operation whose text matches throws `message`. */
  failOn(match: RegExp, message: string): void {
    this.failures.push({ match, message });
  }

  /** The device as the kernel/daemon holds it (a copy), or undefined. */
  device(name: string): WgDeviceInfo | undefined {
    const d = this.live(name);
    return d ? structuredClone(d.info) : undefined;
  }

  /** Changes made by somebody else (an operator with `wg`). */
  outside(name: string, fn: (info: WgDeviceInfo) => void): void {
    const d = this.live(name);
    if (!d) throw new Error(`outside: no device ${name}`);
    fn(d.info);
  }

  /** wireguard-go dies, its TUN stays (as if the link outlived the daemon). */
  killDaemon(name: string): void {
    this.devices.delete(name);
  }

  private live(name: string) {
    const d = this.devices.get(name);
    const link = this.nl.getLink(name);
    // A device deleted with `ip link del` (or recreated by someone else) is gone.
    if (!d || !link || link.index !== d.ifindex) return undefined;
    return d;
  }

  private begin(op: string): void {
    const i = this.failures.findIndex((f) => f.match.test(op));
    if (i >= 0) {
      const [f] = this.failures.splice(i, 1);
      throw new Error(`${op}: ${f!.message}`);
    }
  }

  createDevice(name: string): WireguardImpl {
    const impl: WireguardImpl | undefined = this.kernel ? "kernel" : this.userspace ? "userspace" : undefined;
    const op = `wg create ${name} (${impl ?? "none"})`;
    this.begin(op);
    if (!impl) throw new Error(`create wireguard device ${name}: the kernel has no WireGuard module and wireguard-go is not installed; load the kernel module or install wireguard-go`);
    if (this.nl.getLink(name)) throw new Error(`${op}: Object exists`);
    const link = this.nl.outside((n) => n.addLinkRaw({ name, kind: impl === "kernel" ? "wireguard" : "tun", mtu: 1420, up: false }));
    this.devices.set(name, { impl, info: { listenPort: 0, fwmark: 0, peers: [] }, ifindex: link.index });
    this.ops.push(op);
    return impl;
  }

  implOf(link: LinkInfo): WireguardImpl | undefined {
    return this.live(link.name)?.impl;
  }

  getDevice(impl: WireguardImpl, name: string): WgDeviceInfo {
    const d = this.live(name);
    if (!d || d.impl !== impl) throw new Error(`get wireguard device ${name}: No such device`);
    return structuredClone(d.info);
  }

  setDevice(impl: WireguardImpl, name: string, cfg: WgDeviceConfig): void {
    const parts = [`wg set ${name}`];
    if (cfg.privateKey !== undefined) parts.push("private-key (hidden)");
    if (cfg.listenPort !== undefined) parts.push(`listen-port ${cfg.listenPort}`);
    for (const p of cfg.peers) {
      if (p.remove) parts.push(`peer ${p.publicKey} remove`);
      else parts.push(`peer ${p.publicKey}${p.presharedKey ? " preshared-key (hidden)" : ""} endpoint ${p.endpoint} persistent-keepalive ${p.persistentKeepaliveInterval} allowed-ips ${p.allowedIps.join(",")}`);
    }
    const op = parts.join(" ");
    this.begin(op);
    const d = this.live(name);
    if (!d || d.impl !== impl) throw new Error(`${op}: No such device`);
    const info = d.info;
    if (cfg.privateKey !== undefined) info.privateKey = cfg.privateKey;
    if (cfg.listenPort !== undefined) info.listenPort = cfg.listenPort;
    for (const p of cfg.peers) {
      info.peers = info.peers.filter((x) => x.publicKey !== p.publicKey || !p.remove);
      if (p.remove) continue;
      // Like WireGuard: an allowed IP belongs to one peer; giving it to another takes it away.
      for (const x of info.peers) x.allowedIps = x.allowedIps.filter((ip) => !p.allowedIps.includes(ip));
      const cur = info.peers.find((x) => x.publicKey === p.publicKey);
      const next = { publicKey: p.publicKey, ...(p.presharedKey ? { presharedKey: p.presharedKey } : {}), endpoint: p.endpoint, allowedIps: [...p.allowedIps], persistentKeepaliveInterval: p.persistentKeepaliveInterval, lastHandshakeMs: cur?.lastHandshakeMs ?? 0, rxBytes: cur?.rxBytes ?? 0, txBytes: cur?.txBytes ?? 0 };
      if (cur) Object.assign(cur, next);
      else info.peers.push(next);
    }
    this.ops.push(op);
  }
}
