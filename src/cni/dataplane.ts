/**
 * The port between the plugin's commands and the kernel: what attaching a pod to the
 * node bridge means, as a small interface. The real implementation is
 * kernel-dataplane.ts (libnl through bun:ffi, namespaces through setns); command tests
 * use a fake.
 *
 * Contract: every method is synchronous. `attach` is all or nothing: when it throws, the
 * veth it created is gone. `detach` of an interface that does not exist succeeds.
 */
export interface BridgeWant {
  name: string;
  /** IPv4 node subnet, e.g. "10.244.3.0/24" (the bridge carries its first address), and the cluster network (stale gateway addresses inside it are removed). */
  subnet?: string;
  network?: string;
  /** The same for IPv6: "fd00:10:244:3::/64" (gateway fd00:10:244:3::1) and the IPv6 cluster network. */
  ipv6Subnet?: string;
  ipv6Network?: string;
  /** MTU when the bridge has to be created. */
  mtu: number;
}

export interface AttachRequest {
  bridge: string;
  /** Host end of the veth pair. */
  hostIf: string;
  /** CNI_NETNS. */
  netns: string;
  /** CNI_IFNAME: the pod end's name inside the namespace. */
  ifname: string;
  mtu: number;
  hairpin: boolean;
  /** Pod addresses with prefix, each with its subnet's gateway (the default route of its family). */
  addresses: { cidr: string; gateway: string }[];
}

export interface LinkRef {
  name: string;
  mac?: string;
}

export interface Attachment {
  bridge: LinkRef;
  host: LinkRef;
  pod: LinkRef;
}

/** What CHECK compares with the previous result. */
export interface ObservedPod {
  /** The host end, if it exists. */
  host?: { kind?: string; up: boolean; onBridge: boolean };
  /** The pod end, if the namespace and the interface exist. */
  pod?: { mac?: string; up: boolean; addresses: string[]; routes: { dst: string; gateway?: string }[] };
  /** Why `pod` is missing, when it is. */
  podProblem?: string;
}

export interface PodDataplane {
  /** Throws a NetnsError (src/sys/netns.ts) when `path` is not a network namespace. */
  checkNetns(path: string): void;
  /** Creates or fixes the bridge (see src/bridge.ts). */
  ensureBridge(want: BridgeWant): void;
  attach(req: AttachRequest): Attachment;
  /** Deletes the host end (the pod end goes with it); a missing one is fine. */
  detach(hostIf: string): void;
  inspect(req: { bridge: string; hostIf: string; netns: string; ifname: string }): ObservedPod;
  close(): void;
}
