/**
 * {@link PodDataplane} on the real kernel: the bridge through src/bridge.ts, the veth
 * pair through libnl (the pod end created directly inside the pod's namespace under
 * CNI_IFNAME), hairpin mode through rtnetlink, and the pod side (address, link up,
 * default route) from a netlink socket opened inside the pod's namespace — setns moves
 * only the JS thread, so everything on the pod side runs synchronously inside
 * {@link inNetns}.
 */
import { ensureBridge } from "../bridge.ts";
import { ipToBytes, nthAddress, parseCidr } from "../net/cidr.ts";
import { isIpv6LinkLocal } from "../net/ipv6.ts";
import { hex } from "../net/mac.ts";
import { setHairpin } from "../sys/bridge-port.ts";
import { openNetlink, type LibnlNetlink } from "../sys/libnl.ts";
import { inNetns, NetnsError, openNetns, type Netns } from "../sys/netns.ts";
import type { AttachRequest, Attachment, BridgeWant, ObservedPod, PodDataplane } from "./dataplane.ts";
import { CniCode, CniError } from "./spec.ts";

/** The default route of an address's family. */
const defaultRoute = (cidr: string): string => (cidr.includes(":") ? "::/0" : "0.0.0.0/0");
/** rtnetlink RTPROT_BOOT: how `ip route add` marks a route, so the pod's route reads as usual. */
const RTPROT_BOOT = 3;

const ZERO_MAC = "00:00:00:00:00:00";

/**
 * 0a:58 followed by the gateway's IPv4 bytes (10.244.3.1 → 0a:58:0a:f4:03:01): locally
 * administered, unique per node subnet, the same every time the bridge is made. For an
 * IPv6 subnet (IPv6-only pods) the 32 bits above its prefix boundary, which tell the
 * node subnets apart (fd00:10:244:3::/64 → 0a:58:02:44:00:03).
 */
export function gatewayMac(subnet: string): string {
  const c = parseCidr(subnet);
  if (c.family === 4) return hex(Uint8Array.from([0x0a, 0x58, ...ipToBytes(nthAddress(c, 1))]), ":");
  const bits = Number((c.addr >> BigInt(128 - c.prefix)) & 0xffffffffn);
  return hex(Uint8Array.from([0x0a, 0x58, bits >>> 24, (bits >>> 16) & 255, (bits >>> 8) & 255, bits & 255]), ":");
}

/** Runs `fn` with a netlink socket opened inside `ns`, closed afterwards. */
function withPodNetlink<T>(ns: Netns, fn: (nl: LibnlNetlink) => T): T {
  return inNetns(ns, () => {
    const nl = openNetlink();
    try {
      return fn(nl);
    } finally {
      nl.close();
    }
  });
}

export class KernelDataplane implements PodDataplane {
  private host: LibnlNetlink | undefined;

  /** The host-side socket, opened on first use in the calling thread's namespace. */
  private nl(): LibnlNetlink {
    this.host ??= openNetlink();
    return this.host;
  }

  checkNetns(path: string): void {
    openNetns(path).close();
  }

  ensureBridge(want: BridgeWant): void {
    const nl = this.nl();
    try {
      ensureBridge(nl, want);
    } catch {
      // The agent may be fixing the same bridge right now; a second pass sees its result.
      ensureBridge(nl, want);
    }
    // Pin the bridge's MAC where it is (a bridge without ports has none: derive one from
    // the gateway), so deleting a pod never changes the gateway MAC the others cached.
    const mac = nl.getLink(want.name)?.mac;
    nl.setLinkMac(want.name, mac && mac !== ZERO_MAC ? mac : gatewayMac((want.subnet ?? want.ipv6Subnet)!));
  }

  attach(req: AttachRequest): Attachment {
    const nl = this.nl();
    const ns = openNetns(req.netns);
    let created = false;
    try {
      if (nl.getLink(req.hostIf)) {
        throw new CniError(CniCode.AlreadyExists, `host interface ${req.hostIf} exists already`, "an earlier ADD of this container and interface was not deleted (DEL)");
      }
      if (withPodNetlink(ns, (pnl) => pnl.getLink(req.ifname))) {
        throw new CniError(CniCode.AlreadyExists, `interface ${req.ifname} exists already in ${req.netns}`);
      }
      nl.createVeth({ name: req.hostIf, peer: req.ifname, peerNetnsFd: ns.fd, mtu: req.mtu, master: req.bridge });
      created = true;
      if (req.hairpin) setHairpin(req.hostIf, true);
      const pod = withPodNetlink(ns, (pnl) => {
        for (const a of req.addresses) pnl.addAddress({ dev: req.ifname, cidr: a.cidr });
        pnl.setLinkUp(req.ifname);
        for (const a of req.addresses) pnl.replaceRoute({ dst: defaultRoute(a.cidr), gateway: a.gateway, dev: req.ifname, protocol: RTPROT_BOOT });
        return pnl.getLink(req.ifname);
      });
      const host = nl.getLink(req.hostIf);
      const bridge = nl.getLink(req.bridge);
      return {
        bridge: { name: req.bridge, ...(bridge?.mac ? { mac: bridge.mac } : {}) },
        host: { name: req.hostIf, ...(host?.mac ? { mac: host.mac } : {}) },
        pod: { name: req.ifname, ...(pod?.mac ? { mac: pod.mac } : {}) },
      };
    } catch (e) {
      if (created) {
        try {
          nl.deleteLink(req.hostIf);
        } catch {
          // Already gone with its namespace; nothing is left either way.
        }
      }
      throw e;
    } finally {
      ns.close();
    }
  }

  detach(hostIf: string): void {
    const nl = this.nl();
    const link = nl.getLink(hostIf);
    if (!link || link.kind !== "veth") return;
    try {
      nl.deleteLink(hostIf);
    } catch (e) {
      if (nl.getLink(hostIf)) throw e; // gone meanwhile (its namespace was deleted) is fine
    }
  }

  inspect(req: { bridge: string; hostIf: string; netns: string; ifname: string }): ObservedPod {
    const nl = this.nl();
    const out: ObservedPod = {};
    const host = nl.getLink(req.hostIf);
    if (host) {
      const bridge = nl.getLink(req.bridge);
      out.host = { up: host.up, onBridge: bridge !== undefined && host.master === bridge.index, ...(host.kind ? { kind: host.kind } : {}) };
    }
    let ns: Netns;
    try {
      ns = openNetns(req.netns);
    } catch (e) {
      out.podProblem = e instanceof NetnsError ? e.message : String(e);
      return out;
    }
    try {
      withPodNetlink(ns, (pnl) => {
        const link = pnl.getLink(req.ifname);
        if (!link) {
          out.podProblem = `interface ${req.ifname} not found in ${req.netns}`;
          return;
        }
        out.pod = {
          up: link.up,
          // The kernel's own link-local address is nothing weft made.
          addresses: pnl.listAddresses(req.ifname).map((a) => a.cidr).filter((c) => !isIpv6LinkLocal(c)),
          routes: pnl.listRoutes({ dev: req.ifname }).map((r) => ({ dst: r.dst, ...(r.gateway ? { gateway: r.gateway } : {}) })),
          ...(link.mac ? { mac: link.mac } : {}),
        };
      });
    } finally {
      ns.close();
    }
    return out;
  }

  close(): void {
    this.host?.close();
    this.host = undefined;
  }
}
