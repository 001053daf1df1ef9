/**
 * The WireGuard port: what the wireguard backend asks of the machine besides rtnetlink.
 * Two implementations stand behind it (wireguard-sys.ts): the kernel module, configured
 * through generic netlink (wireguard-genl.ts), and the userspace daemon wireguard-go,
 * configured through its UAPI socket (wireguard-uapi.ts). The backend's diff does not
 * know which one runs; tests use a recorder (test/fakes/wireguard.ts).
 *
 * Contract: every method is synchronous (a netlink or UAPI round trip), throws an Error
 * naming the operation and the device, and never logs or puts a private key into an
 * error message. Keys are base64 of 32 bytes, as `wg` prints them.
 */
import type { LinkInfo } from "./netlink.ts";

/** Which WireGuard drives a device. */
export type WireguardImpl = "kernel" | "userspace";

export interface WgPeerInfo {
  publicKey: string;
  /** Absent when the peer has none (the device reports all zeros). */
  presharedKey?: string;
  /** "192.0.2.12:51820"; absent before any is set or learned. */
  endpoint?: string;
  /** Canonical CIDRs, e.g. ["10.244.2.0/24"]. */
  allowedIps: string[];
  /** Seconds, 0 = off. */
  persistentKeepaliveInterval: number;
  /** Wall-clock ms of the latest handshake; 0 = never. */
  lastHandshakeMs: number;
  rxBytes: number;
  txBytes: number;
}

export interface WgDeviceInfo {
  /** Absent when the device has no private key yet. */
  privateKey?: string;
  listenPort: number;
  fwmark: number;
  peers: WgPeerInfo[];
}

/** One peer change: a removal, or the peer's whole desired configuration. */
export type WgPeerConfig =
  | { publicKey: string; remove: true }
  | {
      publicKey: string;
      remove?: false;
      /** null = remove the PSK (all zeros on the wire). */
      presharedKey: string | null;
      endpoint: string;
      persistentKeepaliveInterval: number;
      /** Replaces the peer's allowed IPs with exactly these. */
      allowedIps: string[];
    };

/** A change to a device; fields left out stay as they are. */
export interface WgDeviceConfig {
  privateKey?: string;
  listenPort?: number;
  peers: WgPeerConfig[];
}

export interface WireguardSys {
  /**
   * Creates `name`, down and unconfigured: a kernel WireGuard link when the kernel has the
   * module, otherwise wireguard-go's TUN. Throws naming both options when neither exists.
   */
  createDevice(name: string): WireguardImpl;
  /**
   * What drives an existing link: "kernel" for kind wireguard, "userspace" for a TUN whose
   * wireguard-go answers on its UAPI socket; undefined for anything else (e.g. a TUN left
   * behind by a dead daemon), which the backend replaces.
   */
  implOf(link: LinkInfo): WireguardImpl | undefined;
  getDevice(impl: WireguardImpl, name: string): WgDeviceInfo;
  setDevice(impl: WireguardImpl, name: string, cfg: WgDeviceConfig): void;
}
