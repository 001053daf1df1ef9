/**
 * The node's pod bridge (cni0): exists, is up, and carries exactly one address from each
 * pod network — the gateway of this node's subnet of that family (10.244.3.1/24,
 * fd00:10:244:3::1/64), as flannel's CNI bridge does. Addresses outside the pod networks
 * (an operator's, the kernel's IPv6 link-local one) are never touched.
 */
import { contains, formatIp, nthAddress, parseCidr } from "./net/cidr.ts";
import type { Netlink } from "./sys/netlink.ts";

export interface BridgeSpec {
  name: string;
  /** This node's IPv4 lease, e.g. "10.244.3.0/24", and the IPv4 pod network (stale gateway addresses inside it are removed). */
  subnet?: string;
  network?: string;
  /** The same for IPv6, when IPv6 is enabled. */
  ipv6Subnet?: string;
  ipv6Network?: string;
  /** MTU used only when the bridge is created (ports decide it afterwards). */
  mtu: number;
}

/** Makes the bridge match the spec; returns the number of kernel changes made. */
export function ensureBridge(nl: Netlink, spec: BridgeSpec): number {
  const { name, mtu } = spec;
  let changes = 0;
  let link = nl.getLink(name);
  if (!link) {
    link = nl.createBridge(name, { mtu });
    changes++;
  } else if (link.kind !== "bridge") {
    throw new Error(`ensure bridge ${name}: a ${link.kind ?? "non-bridge"} device of that name exists`);
  }
  if (!link.up) {
    nl.setLinkUp(name);
    changes++;
  }
  const families = [
    [spec.subnet, spec.network],
    [spec.ipv6Subnet, spec.ipv6Network],
  ] as const;
  const addrs = nl.listAddresses(name);
  for (const [subnet, network] of families) {
    if (subnet === undefined || network === undefined) continue;
    const sub = parseCidr(subnet);
    const want = `${formatIp(nthAddress(sub, 1))}/${sub.prefix}`;
    const net = parseCidr(network);
    let have = false;
    for (const a of addrs) {
      if (a.cidr === want) have = true;
      else if (contains(net, parseCidr(a.cidr))) {
        nl.deleteAddress(a);
        changes++;
      }
    }
    if (!have) {
      nl.addAddress({ dev: name, cidr: want });
      changes++;
    }
  }
  return changes;
}
