/** subnet.env as the plugin reads it: pools per family, MTU, network; errors naming the key. */
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CniCode, CniError } from "../../src/cni/spec.ts";
import { parseNodeSubnet, readNodeSubnet } from "../../src/cni/subnet-file.ts";
import { formatCidr, formatIp } from "../../src/net/cidr.ts";

const env = (o: Record<string, string>) => Object.entries(o).map(([k, v]) => `${k}=${v}`).join("\n") + "\n";
const ok = { FLANNEL_NETWORK: "10.244.0.0/16", FLANNEL_SUBNET: "10.244.3.1/24", FLANNEL_MTU: "1450", FLANNEL_IPMASQ: "false" };

test("weft's (and flannel's) subnet.env: one IPv4 pool, range id 0, gateway .1", () => {
  const s = parseNodeSubnet(env(ok), "/f");
  expect([s.network, s.mtu, s.pools.length]).toEqual(["10.244.0.0/16", 1450, 1]);
  expect([formatCidr(s.pools[0]!.subnet), formatIp(s.pools[0]!.gateway), s.pools[0]!.rangeId]).toEqual(["10.244.3.0/24", "10.244.3.1", "0"]);
});

test("dual-stack file: IPv4 pool 0 then IPv6 pool 1", () => {
  const s = parseNodeSubnet(env({ ...ok, FLANNEL_IPV6_NETWORK: "fd00::/48", FLANNEL_IPV6_SUBNET: "fd00:0:0:3::1/64" }), "/f");
  expect(s.pools.map((p) => [p.family, formatCidr(p.subnet), p.rangeId])).toEqual([
    [4, "10.244.3.0/24", "0"],
    [6, "fd00:0:0:3::/64", "1"],
  ]);
});

test("the IPv6 network is read from FLANNEL_IPV6_NETWORK; an IPv6-only file (no IPv4 lines) has no IPv4 network", () => {
  const dual = parseNodeSubnet(env({ ...ok, FLANNEL_IPV6_NETWORK: "fd00:10:244::/56", FLANNEL_IPV6_SUBNET: "fd00:10:244:3::1/64" }), "/f");
  expect([dual.network, dual.ipv6Network]).toEqual(["10.244.0.0/16", "fd00:10:244::/56"]);
  const v6 = parseNodeSubnet(env({ FLANNEL_IPV6_NETWORK: "fd00:10:244::/56", FLANNEL_IPV6_SUBNET: "fd00:10:244:3::1/64", FLANNEL_MTU: "1430", FLANNEL_IPMASQ: "false" }), "/f");
  expect([v6.network, v6.ipv6Network, v6.pools.map((p) => [p.family, p.rangeId])]).toEqual([undefined, "fd00:10:244::/56", [[6, "0"]]]);
  expect(() => parseNodeSubnet(env({ ...ok, FLANNEL_IPV6_NETWORK: "10.0.0.0/8", FLANNEL_IPV6_SUBNET: "fd00:10:244:3::1/64" }), "/f")).toThrow(/FLANNEL_IPV6_NETWORK: expected the cluster network, e.g. fd00:10:244::\/56/);
});

test("without FLANNEL_NETWORK the node subnet stands in for it", () => {
  const { FLANNEL_NETWORK: _, ...rest } = ok;
  expect(parseNodeSubnet(env(rest), "/f").network).toBe("10.244.3.0/24");
});

test.each([
  [{ FLANNEL_SUBNET: "" }, /FLANNEL_SUBNET: expected the node subnet/],
  [{ FLANNEL_SUBNET: "10.244.3.1" }, /FLANNEL_SUBNET: expected an IPv4 prefix/],
  [{ FLANNEL_SUBNET: "fd00::1/64" }, /FLANNEL_SUBNET: expected an IPv4 prefix/],
  [{ FLANNEL_SUBNET: "10.244.3.1/31" }, /FLANNEL_SUBNET: expected an IPv4 prefix of length 0..30/],
  [{ FLANNEL_MTU: "" }, /FLANNEL_MTU: expected an integer in 68..65535, got ""/],
  [{ FLANNEL_MTU: "9x" }, /FLANNEL_MTU/],
  [{ FLANNEL_MTU: "20" }, /FLANNEL_MTU/],
  [{ FLANNEL_NETWORK: "nope" }, /FLANNEL_NETWORK: expected the cluster network/],
])("%j is code 7 naming the key and the file", (over, msg) => {
  let err: CniError | undefined;
  try {
    parseNodeSubnet(env({ ...ok, ...over }), "/etc/x/subnet.env");
  } catch (e) {
    err = e as CniError;
  }
  expect(err?.code).toBe(CniCode.InvalidConfig);
  expect(err?.message).toMatch(/invalid subnet file \/etc\/x\/subnet.env/);
  expect(err?.message).toMatch(msg);
});

test("a missing file is code 11, try again later, naming the file", () => {
  const d = mkdtempSync(join(tmpdir(), "weft-sf-"));
  try {
    const f = join(d, "subnet.env");
    let err: CniError | undefined;
    try {
      readNodeSubnet(f);
    } catch (e) {
      err = e as CniError;
    }
    expect(err?.code).toBe(CniCode.TryAgainLater);
    expect(err?.message).toContain(`subnet file ${f} not found`);
    writeFileSync(f, env(ok));
    expect(readNodeSubnet(f).mtu).toBe(1450);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
