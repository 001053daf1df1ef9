/**
 * In-memory stand-ins for the CNI plugin's ports: an allocation store (no lock needed in
 * one process) and a dataplane that records operations as text and keeps the pods it
 * attached, so command tests read like "attach veth… then detach veth…".
 */
import type { PluginDeps, PluginStore } from "../../src/cni/commands.ts";
import type { AttachRequest, Attachment, BridgeWant, ObservedPod, PodDataplane } from "../../src/cni/dataplane.ts";
import type { Allocation } from "../../src/cni/ipam.ts";
import { parseNodeSubnet, type NodeSubnet } from "../../src/cni/subnet-file.ts";
import { CniCode, CniError } from "../../src/cni/spec.ts";
import { NetnsError } from "../../src/sys/netns.ts";

export class MemStore implements PluginStore {
  readonly records = new Map<string, Allocation>();
  readonly last = new Map<string, string>();
  /** How many times `locked` ran, and whether a call is inside it now. */
  lockCount = 0;
  inLock = false;
  made = false;

  exists(): boolean {
    return this.made;
  }
  locked<T>(fn: () => T): T {
    if (this.inLock) throw new Error("MemStore: nested lock");
    this.made = true;
    this.lockCount++;
    this.inLock = true;
    try {
      return fn();
    } finally {
      this.inLock = false;
    }
  }
  list(): Allocation[] {
    return [...this.records.values()].map((r) => ({ ...r }));
  }
  reserve(a: Required<Allocation>, rangeId: string): boolean {
    if (!this.inLock) throw new Error("MemStore: reserve outside the lock");
    if (this.records.has(a.ip)) return false;
    this.records.set(a.ip, { ...a });
    this.last.set(rangeId, a.ip);
    return true;
  }
  lastReserved(rangeId: string): string | undefined {
    return this.last.get(rangeId);
  }
  remove(ip: string): void {
    if (!this.inLock) throw new Error("MemStore: remove outside the lock");
    this.records.delete(ip);
  }
}

interface FakePod {
  req: AttachRequest;
  mac: string;
  addresses: string[];
  up: boolean;
}

export class FakeDataplane implements PodDataplane {
  readonly ops: string[] = [];
  readonly pods = new Map<string, FakePod>();
  /** Namespaces that exist. */
  readonly namespaces = new Set<string>(["/run/netns/pod1", "/run/netns/pod2"]);
  /** Set to make the next attach fail after "creating" its veth. */
  failAttach: Error | undefined;
  bridgeUp = true;
  /** Default routes (by destination) that inspect() no longer finds in pods. */
  readonly droppedRoutes = new Set<string>();
  closed = false;

  checkNetns(path: string): void {
    if (!this.namespaces.has(path)) throw new NetnsError(`open network namespace ${path}: No such file or directory`, "missing");
  }
  ensureBridge(w: BridgeWant): void {
    const families = [w.subnet ? `${w.subnet} in ${w.network}` : "", w.ipv6Subnet ? `${w.ipv6Subnet} in ${w.ipv6Network}` : ""].filter(Boolean);
    this.ops.push(`ensure bridge ${w.name} ${families.join(" + ")} mtu ${w.mtu}`);
  }
  attach(req: AttachRequest): Attachment {
    if (this.pods.has(req.hostIf)) throw new CniError(CniCode.AlreadyExists, `host interface ${req.hostIf} exists already`);
    this.ops.push(`attach ${req.hostIf} -> ${req.netns} ${req.ifname} ${req.addresses.map((a) => `${a.cidr} via ${a.gateway}`).join(" ")} mtu ${req.mtu}${req.hairpin ? " hairpin" : ""}`);
    if (this.failAttach) {
      const e = this.failAttach;
      this.failAttach = undefined;
      this.ops.push(`undo ${req.hostIf}`);
      throw e;
    }
    const mac = `02:00:00:00:00:${(this.pods.size + 1).toString(16).padStart(2, "0")}`;
    this.pods.set(req.hostIf, { req, mac, addresses: req.addresses.map((a) => a.cidr), up: true });
    return { bridge: { name: req.bridge, mac: "02:00:00:00:00:b0" }, host: { name: req.hostIf, mac: "02:00:00:00:01:00" }, pod: { name: req.ifname, mac } };
  }
  detach(hostIf: string): void {
    this.ops.push(`detach ${hostIf}`);
    this.pods.delete(hostIf);
  }
  inspect(req: { bridge: string; hostIf: string; netns: string; ifname: string }): ObservedPod {
    const p = this.pods.get(req.hostIf);
    if (!p) return { podProblem: `interface ${req.ifname} not found in ${req.netns}` };
    const routes = p.req.addresses.map((a) => ({ dst: a.cidr.includes(":") ? "::/0" : "0.0.0.0/0", gateway: a.gateway }));
    return {
      host: { kind: "veth", up: this.bridgeUp, onBridge: true },
      pod: { mac: p.mac, up: p.up, addresses: p.addresses, routes: routes.filter((r) => !this.droppedRoutes.has(r.dst)) },
    };
  }
  close(): void {
    this.closed = true;
  }
}

export const SUBNET_ENV = "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n";

/** Ports over one fake dataplane, one store per network, and subnet files from a map. */
export function fakeDeps(files: Record<string, string> = { "/run/flannel/subnet.env": SUBNET_ENV }) {
  const dp = new FakeDataplane();
  const stores = new Map<string, MemStore>();
  const deps: PluginDeps = {
    dataplane: () => dp,
    store: (dataDir, network) => {
      const key = `${dataDir}/${network}`;
      let s = stores.get(key);
      if (!s) stores.set(key, (s = new MemStore()));
      return s;
    },
    readSubnet: (file): NodeSubnet => {
      const text = files[file];
      if (text === undefined) throw new CniError(CniCode.TryAgainLater, `subnet file ${file} not found`);
      return parseNodeSubnet(text, file);
    },
  };
  const store = (network = "weft", dataDir = "/var/lib/cni/networks") => deps.store(dataDir, network) as MemStore;
  return { deps, dp, store, files };
}
