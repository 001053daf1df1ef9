/**
 * The node's pod bridge (cni0): exists, is up, and carries exactly one address from the
 * pod network — the gateway of this node's subnet (10.244.3.1/24), as flannel's CNI
 * bridge does. Addresses outside the pod network (an operator's) are never touched.
 */
import { contains, formatIp, nthAddress, parseCidr } from "./net/cidr.ts";
import type { Netlink } from "./sys/netlink.ts";

export interface BridgeSpec {
  name: string;
  /** This node's lease, e.g. "10.244.3.0/24". */
  subnet: string;
  /** The cluster pod network; stale gateway addresses inside it are removed. */
  network: string;
  /** MTU used only when the bridge is created (ports decide it afterwards). */
  mtu: number;
}

/** Makes the bridge match the spec; returns the number of kernel changes made. */
export function ensureBridge(nl: Netlink, { name, subnet, network, mtu }: BridgeSpec): number {
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
  const sub = parseCidr(subnet);
  const want = `${formatIp(nthAddress(sub, 1))}/${sub.prefix}`;
  const net = parseCidr(network);
  let have = false;
  for (const a of nl.listAddresses(name)) {
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
  return changes;
}
