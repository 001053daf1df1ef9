/**
 * The CNI config flannel's own plugin delegates for a subnet.env: bridge cni0 as gateway,
 * host-local IPAM over FLANNEL_SUBNET, a route to FLANNEL_NETWORK, FLANNEL_MTU (needs the
 * containernetworking-plugins package). Tests use it to prove that path keeps working on
 * the subnet.env weft writes. ipMasq stays off: masquerading is weft's job (--ip-masq).
 */
import { canonicalCidr } from "../../src/net/cidr.ts";

export function cniConfig(env: Record<string, string>, dataDir: string): Record<string, unknown> {
  const need = (k: string) => {
    const v = env[k];
    if (!v) throw new Error(`subnet.env: ${k} missing`);
    return v;
  };
  const mtu = Number(need("FLANNEL_MTU"));
  if (!Number.isInteger(mtu) || mtu < 576) throw new Error(`subnet.env: FLANNEL_MTU must be an integer >= 576, got ${env.FLANNEL_MTU}`);
  return {
    cniVersion: "0.4.0",
    name: "weft",
    type: "bridge",
    bridge: "cni0",
    mtu,
    isGateway: true,
    ipMasq: false,
    hairpinMode: true,
    ipam: { type: "host-local", subnet: canonicalCidr(need("FLANNEL_SUBNET")), routes: [{ dst: need("FLANNEL_NETWORK") }], dataDir },
  };
}
