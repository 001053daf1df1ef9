/**
 * The node as the agent sees it, in memory: a RecordingNetlink with an underlay (eth0,
 * 192.0.2.10/24, default route), gossip transports on a MemNetwork, an in-memory state
 * store, and every other effect written to `log` as one line of text, in call order. The
 * backends are the real ones over the RecordingNetlink; subnet.env, sysctls, masquerade
 * rules and the API server are recorded, not made.
 */
import type { AgentHost } from "../../src/agent-host.ts";
import type { ApiServer, StatusSource } from "../../src/api/index.ts";
import { createBackend } from "../../src/backend/create-backend.ts";
import { ensureBridge } from "../../src/bridge.ts";
import type { Transport } from "../../src/gossip/transport.ts";
import type { SubnetEnv } from "../../src/subnet-env.ts";
import { resolveUnderlay } from "../../src/sys/iface.ts";
import type { NetlinkEvent } from "../../src/sys/netlink-events.ts";
import type { Notifier } from "../../src/sys/sdnotify.ts";
import { MemStore } from "../../sim/mem-store.ts";
import type { MemNetwork } from "../../sim/mem-network.ts";
import { type FakeLink, RecordingNetlink } from "./netlink.ts";

export const UNDERLAY_IP = "192.0.2.10";
export const UNDERLAY_IPV6 = "2001:db8::10";

export class FakeAgentHost implements AgentHost {
  /** Every host effect, in order, as text. */
  readonly log: string[] = [];
  readonly nl = new RecordingNetlink();
  readonly store = new MemStore();
  /** The last subnet.env written, per path. */
  readonly subnetEnv = new Map<string, SubnetEnv>();
  /** The status source handed to the API server (what /readyz, /v1/status read). */
  source: StatusSource | undefined;
  private readonly watchers = new Set<(e: NetlinkEvent) => void>();
  /** The underlay NIC as the fake kernel holds it (a test sets `up` or `mtu` as `ip link set` would). */
  readonly eth0: FakeLink;

  /** `underlay`: which address families eth0 has (an IPv4 one by default; IPv6 with a link-local address too, as the kernel gives it). */
  constructor(
    private readonly network: MemNetwork,
    underlay: { ipv4?: boolean; ipv6?: boolean } = {},
  ) {
    const { ipv4 = true, ipv6 = false } = underlay;
    this.eth0 = this.nl.addLinkRaw({ name: "eth0", mtu: 1500, up: true });
    if (ipv4) {
      this.nl.outside((nl) => nl.addAddress({ dev: "eth0", cidr: `${UNDERLAY_IP}/24` }));
      this.nl.addRouteRaw({ dst: "0.0.0.0/0", gateway: "192.0.2.1", dev: "eth0", protocol: 4 });
      this.nl.addRouteRaw({ dst: "192.0.2.0/24", dev: "eth0", protocol: 2 });
    }
    if (ipv6) {
      this.nl.outside((nl) => {
        nl.addAddress({ dev: "eth0", cidr: "fe80::10/64" });
        nl.addAddress({ dev: "eth0", cidr: `${UNDERLAY_IPV6}/64` });
      });
      this.nl.addRouteRaw({ dst: "::/0", gateway: "2001:db8::1", dev: "eth0", protocol: 4, priority: 1024 });
    }
  }

  /** Log lines since the last call (and forgets them). */
  take(): string[] {
    return this.log.splice(0);
  }

  /** Announces a kernel change to the agent's event watcher, as the netlink multicast socket would. */
  kernelEvent(e: NetlinkEvent): void {
    for (const fn of this.watchers) fn(e);
  }

  /** A new socket to the same (fake) kernel: what a restarted agent on this node opens. */
  openNetlink = () => {
    this.log.push("open netlink");
    this.nl.closed = false;
    return this.nl;
  };
  resolveUnderlay: AgentHost["resolveUnderlay"] = (nl, want) => {
    const u = resolveUnderlay(nl, want);
    this.log.push(`underlay ${u.iface} ${[u.ip, u.ipv6].filter(Boolean).join(" ")} mtu ${u.mtu}`);
    return u;
  };
  createTransport = async ({ bindAddr, port }: { bindAddr: string; port: number }): Promise<Transport> => {
    this.log.push(`bind gossip ${bindAddr}:${port}`);
    return this.network.transport(bindAddr.includes(":") ? `[${bindAddr}]:${port}` : `${bindAddr}:${port}`);
  };
  stateStore = (dir: string) => {
    this.log.push(`state store ${dir}`);
    return this.store;
  };
  serveApi: AgentHost["serveApi"] = (o): ApiServer => {
    this.log.push(`serve api ${o.host}:${o.port}`);
    this.source = o.source;
    return { url: `http://${o.host}:${o.port}/`, stop: async () => void this.log.push("stop api") };
  };
  writeSysctl = (name: string, value: number) => void this.log.push(`sysctl ${name}=${value}`);
  writeSubnetEnv = (path: string, env: SubnetEnv) => {
    this.log.push(`write ${path} subnet ${[env.subnet, env.ipv6Subnet].filter(Boolean).join(" + ")} mtu ${env.mtu}`);
    this.subnetEnv.set(path, env);
    return true;
  };
  removeSubnetEnv = (path: string) => {
    this.log.push(`remove ${path}`);
    this.subnetEnv.delete(path);
  };
  ensureBridge: AgentHost["ensureBridge"] = (nl, spec) => {
    const changes = ensureBridge(nl, spec);
    if (changes > 0) this.log.push(`bridge ${spec.name} for ${[spec.subnet, spec.ipv6Subnet].filter(Boolean).join(" + ")}`);
    return changes;
  };
  /** The masquerade rules in place per family ("network from subnet"), as the nftables tables (ip weft, ip6 weft) would hold them. */
  readonly ipMasq = new Map<4 | 6, string>();
  ensureIpMasq: AgentHost["ensureIpMasq"] = (spec) => {
    const family = spec.network.includes(":") ? 6 : 4;
    const want = `${spec.network} from ${spec.subnet}`;
    if (this.ipMasq.get(family) === want) return { changed: false };
    this.ipMasq.set(family, want);
    this.log.push(`ip-masq ${want}`);
    return { changed: true };
  };
  removeIpMasq: AgentHost["removeIpMasq"] = (family) => {
    if (!this.ipMasq.delete(family)) return { changed: false };
    this.log.push(`ip-masq removed${family === 6 ? " (ip6)" : ""}`);
    return { changed: true };
  };
  watchNetlinkEvents: AgentHost["watchNetlinkEvents"] = (fn) => {
    this.log.push("watch netlink events");
    this.watchers.add(fn);
    return {
      close: () => {
        this.log.push("unwatch netlink events");
        this.watchers.delete(fn);
      },
    };
  };
  wireguardKeys: AgentHost["wireguardKeys"] = () => {
    throw new Error("FakeAgentHost: the wireguard backend is not faked");
  };
  wireguardSys: AgentHost["wireguardSys"] = () => {
    throw new Error("FakeAgentHost: the wireguard backend is not faked");
  };
  createBackend: AgentHost["createBackend"] = (conf, deps) => {
    this.log.push(`backend ${conf.type} for ${[deps.ownSubnet, deps.ownIpv6Subnet].filter(Boolean).join(" + ")}`);
    return createBackend(conf, deps);
  };
}

/** A systemd notifier that writes what it sends into `log` ("READY=1", "STATUS=…", "STOPPING=1"). */
export function recordingNotifier(log: string[]): Notifier {
  return {
    socket: "(test)",
    notify: (s) => log.push(s) > 0,
    ready: () => log.push("READY=1") > 0,
    stopping: () => log.push("STOPPING=1") > 0,
    status: (text) => log.push(`STATUS=${text}`) > 0,
    watchdog: () => true,
    startWatchdog: () => null,
    close() {},
  };
}
