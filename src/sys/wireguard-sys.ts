/**
 * The real {@link WireguardSys}: the kernel module when the kernel has it, wireguard-go
 * otherwise. Which one drives a device is decided when the device is created (the
 * kernel refuses link kind "wireguard" without the module) and read back from the link
 * afterwards (kind "wireguard" vs a TUN with a live UAPI socket), so a restarted agent
 * adopts whichever it finds.
 */
import type { Logger } from "../log.ts";
import type { LinkInfo } from "./netlink.ts";
import { NetlinkError } from "./libnl-codec.ts";
import type { WgDeviceConfig, WgDeviceInfo, WireguardImpl, WireguardSys } from "./wireguard.ts";
import { createKernelWireguardLink, KernelWireguard, NLE_OPNOTSUPP } from "./wireguard-genl.ts";
import { findWireguardGo, startWireguardGo, UAPI_SOCKET_DIR, UserspaceWireguard } from "./wireguard-uapi.ts";

export interface WireguardSysOptions {
  logger: Logger;
  /** wireguard-go's path; found on PATH (or $WG_QUICK_USERSPACE_IMPLEMENTATION) by default. */
  wireguardGo?: string;
  /** Where wireguard-go keeps its sockets (compiled into it; /var/run/wireguard). */
  socketDir?: string;
}

export function createWireguardSys({ logger, wireguardGo, socketDir = UAPI_SOCKET_DIR }: WireguardSysOptions): WireguardSys & { close(): void } {
  const log = logger.child("wireguard");
  let kernel: KernelWireguard | undefined;
  const userspace = new UserspaceWireguard(socketDir);
  const kernelControl = () => (kernel ??= new KernelWireguard());
  const io = (impl: WireguardImpl) => (impl === "kernel" ? kernelControl() : userspace);

  return {
    createDevice(name: string): WireguardImpl {
      let why: string;
      try {
        createKernelWireguardLink(name);
        return "kernel";
      } catch (e) {
        if (!(e instanceof NetlinkError) || e.code !== NLE_OPNOTSUPP) throw e;
        why = "the kernel has no WireGuard module";
      }
      const bin = wireguardGo ?? findWireguardGo();
      if (!bin) {
        throw new Error(
          `create wireguard device ${name}: ${why} and wireguard-go is not installed; load the kernel module (modprobe wireguard, Linux 5.6 or later) or install wireguard-go (Debian/Ubuntu: apt install wireguard-go)`,
        );
      }
      log.info(`${why}; starting userspace WireGuard`, { device: name, wireguardGo: bin });
      startWireguardGo(bin, name);
      return "userspace";
    },
    implOf(link: LinkInfo): WireguardImpl | undefined {
      if (link.kind === "wireguard") return "kernel";
      if (link.kind !== "tun") return undefined;
      try {
        userspace.get(link.name);
        return "userspace";
      } catch (e) {
        log.debug(`${link.name} is a TUN without a live wireguard-go`, { error: (e as Error).message });
        return undefined;
      }
    },
    getDevice: (impl: WireguardImpl, name: string): WgDeviceInfo => io(impl).get(name),
    setDevice: (impl: WireguardImpl, name: string, cfg: WgDeviceConfig): void => io(impl).set(name, cfg),
    close() {
      kernel?.close();
      kernel = undefined;
    },
  };
}
