/**
 * The CNI verbs over three ports: the kernel ({@link PodDataplane}), the IPAM records
 * ({@link AllocationStore}) and the node's subnet file. Orchestration only: which step
 * comes first and what is undone when a later one fails.
 *
 * ADD: subnet file → netns check → (locked) bridge + addresses → veth, pod side. A failure
 *      after the allocation gives the addresses back; `attach` removes its own veth.
 * DEL: host veth (the pod end goes with it) → (locked) records of the attachment. Missing
 *      namespace, veth or records are success, and the subnet file is not needed.
 * CHECK: every resource prevResult names that weft made must be there as it was.
 * GC:  records (and veths) of attachments not in cni.dev/valid-attachments are removed.
 * STATUS: ready when the subnet file is there and its pools have a free address.
 */
import { createHash } from "node:crypto";
import { formatCidr, formatIp, parseCidr } from "../net/cidr.ts";
import { NetnsError } from "../sys/netns.ts";
import type { BridgeWant, PodDataplane } from "./dataplane.ts";
import { allocate, freeCount, release, staleAllocations, type Allocation, type AllocationStore } from "./ipam.ts";
import { fromPrevResult, mergeResults } from "./result.ts";
import { CniCode, CniError, type CniEnv, type CniResult, type NetConf } from "./spec.ts";
import type { NodeSubnet } from "./subnet-file.ts";

export interface PluginStore extends AllocationStore {
  /** False when the network has no records directory yet. */
  exists(): boolean;
}

export interface PluginDeps {
  /** The kernel, opened on first use (VERSION, STATUS and GC without stale entries never need it). */
  dataplane(): PodDataplane;
  store(dataDir: string, network: string): PluginStore;
  readSubnet(file: string): NodeSubnet;
}

/**
 * The host end's name: "veth" + 11 hex digits of a hash of (network, container, ifname),
 * so DEL and GC find it without the pod's namespace (15 bytes, the kernel's limit).
 */
export function hostInterfaceName(network: string, containerId: string, ifname: string): string {
  return "veth" + createHash("sha256").update(`${network}\n${containerId}\n${ifname}`).digest("hex").slice(0, 11);
}

/** Any non-CNI failure from the kernel side as code 101, the operation in details. */
function dataplaneError(what: string, e: unknown): CniError {
  if (e instanceof CniError) return e;
  return new CniError(CniCode.Dataplane, `${what}: ${(e as Error).message}`, (e as Error).message, { cause: e });
}

function requireNetns(dp: PodDataplane, path: string): void {
  try {
    dp.checkNetns(path);
  } catch (e) {
    if (e instanceof NetnsError) throw new CniError(CniCode.InvalidEnvironment, `CNI_NETNS: ${e.message}`);
    throw dataplaneError("open CNI_NETNS", e);
  }
}

/** The bridge for the node's pools: the gateway of each family's pool, stale gateways of each network removed. */
function bridgeFor(name: string, subnet: NodeSubnet, mtu: number): BridgeWant {
  const v4 = subnet.pools.find((p) => p.family === 4);
  const v6 = subnet.pools.find((p) => p.family === 6);
  return {
    name,
    ...(v4 && subnet.network ? { subnet: formatCidr(v4.subnet), network: subnet.network } : {}),
    ...(v6 && subnet.ipv6Network ? { ipv6Subnet: formatCidr(v6.subnet), ipv6Network: subnet.ipv6Network } : {}),
    mtu,
  };
}

export function cmdAdd(env: CniEnv, conf: NetConf, deps: PluginDeps): CniResult {
  const containerId = env.containerId!;
  const ifname = env.ifname!;
  const netns = env.netns!;
  const subnet = deps.readSubnet(conf.subnetFile);
  const mtu = conf.mtu ?? subnet.mtu;
  const dp = deps.dataplane();
  requireNetns(dp, netns);
  const hostIf = hostInterfaceName(conf.name, containerId, ifname);
  const store = deps.store(conf.dataDir, conf.name);
  const allocated = store.locked(() => {
    try {
      dp.ensureBridge(bridgeFor(conf.bridge, subnet, mtu));
    } catch (e) {
      throw dataplaneError(`ensure bridge ${conf.bridge}`, e);
    }
    return allocate(store, subnet.pools, containerId, ifname);
  });
  const addresses = allocated.map((a, i) => {
    const pool = subnet.pools[i]!;
    return { cidr: `${a.ip}/${pool.subnet.prefix}`, gateway: formatIp(pool.gateway) };
  });
  let att;
  try {
    att = dp.attach({ bridge: conf.bridge, hostIf, netns, ifname, mtu, hairpin: conf.hairpinMode, addresses });
  } catch (e) {
    store.locked(() => {
      for (const a of allocated) store.remove(a.ip);
    });
    throw dataplaneError(`attach ${ifname} in ${netns}`, e);
  }
  const ours: CniResult = {
    interfaces: [
      { name: att.bridge.name, ...(att.bridge.mac ? { mac: att.bridge.mac } : {}) },
      { name: att.host.name, ...(att.host.mac ? { mac: att.host.mac } : {}), mtu },
      { name: att.pod.name, ...(att.pod.mac ? { mac: att.pod.mac } : {}), mtu, sandbox: netns },
    ],
    ips: addresses.map((a) => ({ address: a.cidr, gateway: a.gateway, interface: 2 })),
    routes: addresses.map((a) => ({ dst: a.cidr.includes(":") ? "::/0" : "0.0.0.0/0", gw: a.gateway })),
    ...(conf.dns ? { dns: conf.dns } : {}),
  };
  return conf.prevResult ? mergeResults(fromPrevResult(conf.prevResult), ours) : ours;
}

export function cmdDel(env: CniEnv, conf: NetConf, deps: PluginDeps): void {
  const containerId = env.containerId!;
  const ifname = env.ifname!;
  const hostIf = hostInterfaceName(conf.name, containerId, ifname);
  try {
    deps.dataplane().detach(hostIf);
  } catch (e) {
    throw dataplaneError(`delete ${hostIf}`, e);
  }
  const store = deps.store(conf.dataDir, conf.name);
  if (!store.exists()) return;
  store.locked(() => release(store, containerId, ifname));
}

export function cmdCheck(env: CniEnv, conf: NetConf, deps: PluginDeps): void {
  const containerId = env.containerId!;
  const ifname = env.ifname!;
  const netns = env.netns!;
  if (!conf.prevResult) throw new CniError(CniCode.InvalidConfig, "CHECK needs prevResult in the network configuration", "the runtime passes the result of the ADD it checks");
  const prev = fromPrevResult(conf.prevResult);
  const podIndex = prev.interfaces.findIndex((i) => i.name === ifname && i.sandbox === netns);
  if (podIndex < 0) throw new CniError(CniCode.CheckFailed, `prevResult has no interface ${ifname} in ${netns}`);
  const podIps = prev.ips.filter((ip) => ip.interface === podIndex);
  const fail = (msg: string) => new CniError(CniCode.CheckFailed, `check ${ifname} in ${netns}: ${msg}`);

  const store = deps.store(conf.dataDir, conf.name);
  const records = store.list();
  for (const ip of podIps) {
    const addr = ip.address.slice(0, ip.address.indexOf("/"));
    const r = records.find((x) => x.ip === addr);
    if (!r || r.containerId !== containerId || (r.ifname !== undefined && r.ifname !== ifname)) {
      throw fail(`address ${addr} is not reserved for this container in ${store.exists() ? "the IPAM records" : "IPAM (no records directory)"}`);
    }
  }

  const hostIf = hostInterfaceName(conf.name, containerId, ifname);
  let seen;
  try {
    seen = deps.dataplane().inspect({ bridge: conf.bridge, hostIf, netns, ifname });
  } catch (e) {
    throw dataplaneError(`inspect ${ifname} in ${netns}`, e);
  }
  if (!seen.host) throw fail(`host interface ${hostIf} is missing`);
  if (seen.host.kind !== "veth") throw fail(`host interface ${hostIf} is a ${seen.host.kind ?? "plain"} device, not a veth`);
  if (!seen.host.onBridge) throw fail(`host interface ${hostIf} is not attached to bridge ${conf.bridge}`);
  if (!seen.host.up) throw fail(`host interface ${hostIf} is down`);
  if (!seen.pod) throw fail(seen.podProblem ?? "interface not found");
  const want = prev.interfaces[podIndex]!;
  if (want.mac && seen.pod.mac && want.mac.toLowerCase() !== seen.pod.mac) throw fail(`MAC is ${seen.pod.mac}, prevResult says ${want.mac}`);
  if (!seen.pod.up) throw fail("interface is down");
  for (const ip of podIps) {
    if (!seen.pod.addresses.includes(ip.address)) throw fail(`address ${ip.address} is missing (has ${seen.pod.addresses.join(", ") || "none"})`);
  }
  for (const r of prev.routes) {
    if (!podIps.some((ip) => ip.gateway === r.gw && parseCidr(ip.address).family === parseCidr(r.dst).family)) continue; // a route of another plugin
    if (!seen.pod.routes.some((x) => x.dst === r.dst && x.gateway === r.gw)) throw fail(`route ${r.dst} via ${r.gw} is missing`);
  }
}

/**
 * Removes records of attachments the runtime no longer knows, and their host veths if a
 * namespace still holds them. Keeps going past failures and reports them together.
 */
export function cmdGc(conf: NetConf, deps: PluginDeps): void {
  if (!conf.validAttachments) throw new CniError(CniCode.InvalidConfig, "GC needs cni.dev/valid-attachments in the network configuration");
  const valid = conf.validAttachments;
  const store = deps.store(conf.dataDir, conf.name);
  if (!store.exists()) return;
  const stale: Allocation[] = store.locked(() => staleAllocations(store.list(), valid));
  const problems: string[] = [];
  const gone: Allocation[] = [];
  for (const a of stale) {
    if (a.ifname !== undefined) {
      const hostIf = hostInterfaceName(conf.name, a.containerId, a.ifname);
      try {
        deps.dataplane().detach(hostIf);
      } catch (e) {
        problems.push(`delete ${hostIf} of ${a.containerId}: ${(e as Error).message}`);
        continue;
      }
    }
    gone.push(a);
  }
  store.locked(() => {
    // Between the two locks a DEL may have freed an address and an ADD taken it again:
    // only a record still held by the same attachment goes.
    const now = new Map(store.list().map((r) => [r.ip, r]));
    for (const a of gone) {
      const r = now.get(a.ip);
      if (!r || r.containerId !== a.containerId || r.ifname !== a.ifname) continue;
      try {
        store.remove(a.ip);
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
  });
  if (problems.length) throw new CniError(CniCode.IoFailure, `GC left ${problems.length} stale attachment(s) in place`, problems.join("; "));
}

export function cmdStatus(conf: NetConf, deps: PluginDeps): void {
  let subnet: NodeSubnet;
  try {
    subnet = deps.readSubnet(conf.subnetFile);
  } catch (e) {
    const err = e as CniError;
    throw new CniError(CniCode.NotAvailable, `not ready: ${err.message}`, err.details);
  }
  const records = deps.store(conf.dataDir, conf.name).list();
  for (const p of subnet.pools) {
    if (freeCount(p, records) <= 0n) throw new CniError(CniCode.NotAvailable, `not ready: no free address in ${formatCidr(p.subnet)}`, "addresses come back when pods are deleted");
  }
}
