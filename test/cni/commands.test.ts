/**
 * The CNI verbs over fake ports: kernel operations recorded as text, IPAM in memory.
 * What each verb does in what order, and what a failure leaves behind (nothing).
 */
import { describe, expect, test } from "bun:test";
import { cmdAdd, cmdCheck, cmdDel, cmdGc, cmdStatus, hostInterfaceName } from "../../src/cni/commands.ts";
import { formatResult } from "../../src/cni/result.ts";
import { CniCode, CniError, parseNetConf, type CniEnv } from "../../src/cni/spec.ts";
import { fakeDeps, SUBNET_ENV } from "../fakes/cni.ts";

const env = (o: Partial<CniEnv> = {}): CniEnv => ({ command: "ADD", containerId: "c1", netns: "/run/netns/pod1", ifname: "eth0", ...o });
const conf = (o: Record<string, unknown> = {}) => parseNetConf(JSON.stringify({ cniVersion: "1.0.0", name: "weft", type: "weft", ...o }));
const H1 = hostInterfaceName("weft", "c1", "eth0");

function failure(fn: () => unknown): CniError {
  try {
    fn();
  } catch (e) {
    if (e instanceof CniError) return e;
    throw e;
  }
  throw new Error("did not throw");
}

describe("host interface names", () => {
  test("15 bytes, 'veth' + hex, stable, different per network, container and ifname", () => {
    expect(H1).toMatch(/^veth[0-9a-f]{11}$/);
    expect(hostInterfaceName("weft", "c1", "eth0")).toBe(H1);
    const others = [hostInterfaceName("other", "c1", "eth0"), hostInterfaceName("weft", "c2", "eth0"), hostInterfaceName("weft", "c1", "net1")];
    expect(new Set([H1, ...others]).size).toBe(4);
  });
});

describe("ADD", () => {
  test("bridge and address under the lock, then the veth; the result names all three interfaces", () => {
    const f = fakeDeps();
    const r = cmdAdd(env(), conf(), f.deps);
    expect(f.dp.ops).toEqual([`ensure bridge cni0 10.244.3.0/24 in 10.244.0.0/16 mtu 1450`, `attach ${H1} -> /run/netns/pod1 eth0 10.244.3.2/24 via 10.244.3.1 mtu 1450 hairpin`]);
    expect(formatResult(r, "1.1.0")).toEqual({
      cniVersion: "1.1.0",
      interfaces: [
        { name: "cni0", mac: "02:00:00:00:00:b0" },
        { name: H1, mac: "02:00:00:00:01:00", mtu: 1450 },
        { name: "eth0", mac: "02:00:00:00:00:01", mtu: 1450, sandbox: "/run/netns/pod1" },
      ],
      ips: [{ address: "10.244.3.2/24", gateway: "10.244.3.1", interface: 2 }],
      routes: [{ dst: "0.0.0.0/0", gw: "10.244.3.1" }],
    });
    expect(f.store().list()).toEqual([{ ip: "10.244.3.2", containerId: "c1", ifname: "eth0" }]);
    expect(f.store().lockCount).toBe(1);
  });

  test("config keys win: bridge, mtu, hairpinMode, dataDir, subnetFile, dns", () => {
    const f = fakeDeps({ "/s/subnet.env": SUBNET_ENV });
    const r = cmdAdd(env(), conf({ bridge: "pods0", mtu: 1400, hairpinMode: false, dataDir: "/d", subnetFile: "/s/subnet.env", dns: { nameservers: ["10.96.0.10"] } }), f.deps);
    expect(f.dp.ops).toEqual([`ensure bridge pods0 10.244.3.0/24 in 10.244.0.0/16 mtu 1400`, `attach ${H1} -> /run/netns/pod1 eth0 10.244.3.2/24 via 10.244.3.1 mtu 1400`]);
    expect(r.dns).toEqual({ nameservers: ["10.96.0.10"] });
    expect(f.store("weft", "/d").list().length).toBe(1);
  });

  test("a chained prevResult is passed through with ours appended", () => {
    const f = fakeDeps();
    const r = cmdAdd(env(), conf({ prevResult: { interfaces: [{ name: "lo", sandbox: "/run/netns/pod1" }], ips: [{ address: "127.0.0.1/8", interface: 0 }] } }), f.deps);
    expect(r.interfaces.map((i) => i.name)).toEqual(["lo", "cni0", H1, "eth0"]);
    expect(r.ips.map((i) => i.interface)).toEqual([0, 3]);
  });

  test("no subnet file: code 11 naming it, nothing touched", () => {
    const f = fakeDeps({});
    const e = failure(() => cmdAdd(env(), conf(), f.deps));
    expect([e.code, e.message]).toEqual([CniCode.TryAgainLater, "subnet file /run/flannel/subnet.env not found"]);
    expect(f.dp.ops).toEqual([]);
    expect(f.store().exists()).toBe(false);
  });

  test("a CNI_NETNS that is not a namespace: code 4, nothing allocated", () => {
    const f = fakeDeps();
    const e = failure(() => cmdAdd(env({ netns: "/run/netns/gone" }), conf(), f.deps));
    expect(e.code).toBe(CniCode.InvalidEnvironment);
    expect(e.message).toMatch(/^CNI_NETNS: open network namespace \/run\/netns\/gone/);
    expect([f.dp.ops, f.store().list()]).toEqual([[], []]);
  });

  test("a failing attach gives the address back and reports code 101 with the kernel's words", () => {
    const f = fakeDeps();
    f.dp.failAttach = new Error("create veth: Object exists");
    const e = failure(() => cmdAdd(env(), conf(), f.deps));
    expect(e.code).toBe(CniCode.Dataplane);
    expect(e.message).toBe("attach eth0 in /run/netns/pod1: create veth: Object exists");
    expect(f.store().list()).toEqual([]);
    // The next ADD gets the following address (host-local's round robin), not a stale record.
    expect(cmdAdd(env({ containerId: "c2" }), conf(), f.deps).ips[0]!.address).toBe("10.244.3.3/24");
  });

  test("a CNI error from attach keeps its code (interface exists: 100)", () => {
    const f = fakeDeps();
    cmdAdd(env(), conf(), f.deps);
    f.store().records.clear(); // as if the records were lost but the veth stayed
    const e = failure(() => cmdAdd(env(), conf(), f.deps));
    expect(e.code).toBe(CniCode.AlreadyExists);
    expect(f.store().list()).toEqual([]);
  });

  test("dual-stack subnet.env: both gateways on the bridge, one address of each family, both default routes; results list both (with versions in the old format)", () => {
    const f = fakeDeps({ "/run/flannel/subnet.env": SUBNET_ENV.replace("FLANNEL_MTU", "FLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:3::1/64\nFLANNEL_MTU") });
    const r = cmdAdd(env(), conf(), f.deps);
    expect(f.dp.ops).toEqual([
      `ensure bridge cni0 10.244.3.0/24 in 10.244.0.0/16 + fd00:10:244:3::/64 in fd00:10:244::/56 mtu 1450`,
      `attach ${H1} -> /run/netns/pod1 eth0 10.244.3.2/24 via 10.244.3.1 fd00:10:244:3::2/64 via fd00:10:244:3::1 mtu 1450 hairpin`,
    ]);
    expect(formatResult(r, "1.0.0")).toMatchObject({
      ips: [
        { address: "10.244.3.2/24", gateway: "10.244.3.1", interface: 2 },
        { address: "fd00:10:244:3::2/64", gateway: "fd00:10:244:3::1", interface: 2 },
      ],
      routes: [
        { dst: "0.0.0.0/0", gw: "10.244.3.1" },
        { dst: "::/0", gw: "fd00:10:244:3::1" },
      ],
    });
    expect((formatResult(r, "0.4.0").ips as { version: string }[]).map((i) => i.version)).toEqual(["4", "6"]);
    expect(f.store().list().map((x) => x.ip).sort()).toEqual(["10.244.3.2", "fd00:10:244:3::2"]);
    // CHECK finds both; a missing IPv6 default route is named.
    cmdCheck(env({ command: "CHECK" }), conf({ prevResult: formatResult(r, "1.0.0") }), f.deps);
    f.dp.droppedRoutes.add("::/0");
    expect(failure(() => cmdCheck(env({ command: "CHECK" }), conf({ prevResult: formatResult(r, "1.0.0") }), f.deps)).message).toMatch(/route ::\/0 via fd00:10:244:3::1 is missing/);
  });

  test("IPv6-only subnet.env (no IPv4 lines, as flannel writes it): one IPv6 address and route", () => {
    const f = fakeDeps({ "/run/flannel/subnet.env": "FLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:3::1/64\nFLANNEL_MTU=1430\nFLANNEL_IPMASQ=false\n" });
    const r = cmdAdd(env(), conf(), f.deps);
    expect(f.dp.ops).toEqual([`ensure bridge cni0 fd00:10:244:3::/64 in fd00:10:244::/56 mtu 1430`, `attach ${H1} -> /run/netns/pod1 eth0 fd00:10:244:3::2/64 via fd00:10:244:3::1 mtu 1430 hairpin`]);
    expect(r.routes).toEqual([{ dst: "::/0", gw: "fd00:10:244:3::1" }]);
  });

  test("exhaustion is code 11 and touches no interface", () => {
    const f = fakeDeps({ "/run/flannel/subnet.env": SUBNET_ENV.replace("10.244.3.1/24", "10.244.3.1/30") });
    cmdAdd(env(), conf(), f.deps);
    const e = failure(() => cmdAdd(env({ containerId: "c2" }), conf(), f.deps));
    expect([e.code, e.message]).toEqual([CniCode.TryAgainLater, "no free address in 10.244.3.0/30: all 1 are allocated"]);
    expect(f.dp.ops.filter((o) => o.startsWith("attach")).length).toBe(1);
  });
});

describe("DEL", () => {
  test("the veth goes first, then the records; twice is fine", () => {
    const f = fakeDeps();
    cmdAdd(env(), conf(), f.deps);
    f.dp.ops.length = 0;
    cmdDel(env({ command: "DEL" }), conf(), f.deps);
    cmdDel(env({ command: "DEL" }), conf(), f.deps);
    expect(f.dp.ops).toEqual([`detach ${H1}`, `detach ${H1}`]);
    expect(f.store().list()).toEqual([]);
  });

  test("needs neither the namespace nor the subnet file", () => {
    const f = fakeDeps();
    cmdAdd(env(), conf(), f.deps);
    delete f.files["/run/flannel/subnet.env"];
    const { netns: _, ...noNetns } = env({ command: "DEL" });
    cmdDel(noNetns, conf(), f.deps);
    expect(f.store().list()).toEqual([]);
  });

  test("an unknown container on a network never used: success, no records directory made", () => {
    const f = fakeDeps();
    cmdDel(env({ command: "DEL", containerId: "nobody" }), conf(), f.deps);
    expect(f.store().exists()).toBe(false);
  });

  test("if the veth cannot be deleted the address stays reserved (code 101)", () => {
    const f = fakeDeps();
    cmdAdd(env(), conf(), f.deps);
    f.dp.detach = () => {
      throw new Error("delete link: Operation not permitted");
    };
    expect(failure(() => cmdDel(env({ command: "DEL" }), conf(), f.deps)).code).toBe(CniCode.Dataplane);
    expect(f.store().list().length).toBe(1);
  });
});

type Fake = ReturnType<typeof fakeDeps>;

describe("CHECK", () => {
  const added = () => {
    const f = fakeDeps();
    const r = formatResult(cmdAdd(env(), conf(), f.deps), "1.0.0");
    return { f, checkConf: conf({ prevResult: r }) };
  };

  test("passes right after ADD", () => {
    const { f, checkConf } = added();
    cmdCheck(env({ command: "CHECK" }), checkConf, f.deps);
  });

  test.each([
    ["no prevResult", (_: Fake): void => {}, conf(), CniCode.InvalidConfig, /needs prevResult/],
    ["the address removed from the interface", (f: Fake): void => void (f.dp.pods.get(H1)!.addresses = []), undefined, CniCode.CheckFailed, /address 10.244.3.2\/24 is missing \(has none\)/],
    ["the IPAM record gone", (f: Fake): void => f.store().records.clear(), undefined, CniCode.CheckFailed, /address 10.244.3.2 is not reserved for this container/],
    ["the host end down", (f: Fake): void => void (f.dp.bridgeUp = false), undefined, CniCode.CheckFailed, new RegExp(`host interface ${H1} is down`)],
    ["the pod end gone", (f: Fake): void => void f.dp.pods.delete(H1), undefined, CniCode.CheckFailed, new RegExp(`host interface ${H1} is missing`)],
    ["another MAC", (f: Fake): void => void (f.dp.pods.get(H1)!.mac = "02:00:00:00:00:99"), undefined, CniCode.CheckFailed, /MAC is 02:00:00:00:00:99/],
    ["the pod end down", (f: Fake): void => void (f.dp.pods.get(H1)!.up = false), undefined, CniCode.CheckFailed, /interface is down/],
  ] as const)("fails when %s", (_, breakIt, overrideConf, code, msg) => {
    const { f, checkConf } = added();
    breakIt(f);
    const e = failure(() => cmdCheck(env({ command: "CHECK" }), overrideConf ?? checkConf, f.deps));
    expect(e.code).toBe(code);
    expect(e.message).toMatch(msg);
  });

  test("a prevResult without our interface fails naming it", () => {
    const { f } = added();
    const e = failure(() => cmdCheck(env({ command: "CHECK" }), conf({ prevResult: { interfaces: [], ips: [] } }), f.deps));
    expect(e.message).toBe("prevResult has no interface eth0 in /run/netns/pod1");
  });
});

describe("GC", () => {
  test("records and veths of attachments the runtime no longer knows go; valid ones stay", () => {
    const f = fakeDeps();
    for (const id of ["c1", "c2", "c3"]) cmdAdd(env({ containerId: id }), conf(), f.deps);
    f.dp.ops.length = 0;
    cmdGc(conf({ "cni.dev/valid-attachments": [{ containerID: "c2", ifname: "eth0" }] }), f.deps);
    expect(f.dp.ops).toEqual([`detach ${H1}`, `detach ${hostInterfaceName("weft", "c3", "eth0")}`]);
    expect(f.store().list().map((r) => r.containerId)).toEqual(["c2"]);
  });

  test("without the valid list it refuses (code 7) instead of freeing everything", () => {
    const f = fakeDeps();
    cmdAdd(env(), conf(), f.deps);
    expect(failure(() => cmdGc(conf(), f.deps)).code).toBe(CniCode.InvalidConfig);
    expect(f.store().list().length).toBe(1);
  });

  test("a veth that cannot be deleted keeps its record; the others are still collected and the error lists it", () => {
    const f = fakeDeps();
    for (const id of ["c1", "c2"]) cmdAdd(env({ containerId: id }), conf(), f.deps);
    const detach = f.dp.detach.bind(f.dp);
    f.dp.detach = (h) => {
      if (h === H1) throw new Error("busy");
      detach(h);
    };
    const e = failure(() => cmdGc(conf({ "cni.dev/valid-attachments": [] }), f.deps));
    expect(e.message).toBe("GC left 1 stale attachment(s) in place");
    expect(e.details).toBe(`delete ${H1} of c1: busy`);
    expect(f.store().list().map((r) => r.containerId)).toEqual(["c1"]);
  });

  test("a network without records: nothing to do", () => {
    const f = fakeDeps();
    cmdGc(conf({ "cni.dev/valid-attachments": [] }), f.deps);
    expect(f.store().exists()).toBe(false);
  });
});

describe("STATUS", () => {
  test("ready with a subnet file and a free address", () => {
    cmdStatus(conf(), fakeDeps().deps);
  });
  test("no subnet file: code 50 naming it", () => {
    const e = failure(() => cmdStatus(conf(), fakeDeps({}).deps));
    expect([e.code, e.message]).toEqual([CniCode.NotAvailable, "not ready: subnet file /run/flannel/subnet.env not found"]);
  });
  test("no free address: code 50", () => {
    const f = fakeDeps({ "/run/flannel/subnet.env": SUBNET_ENV.replace("10.244.3.1/24", "10.244.3.1/30") });
    cmdAdd(env(), conf(), f.deps);
    const e = failure(() => cmdStatus(conf(), f.deps));
    expect([e.code, e.message]).toEqual([CniCode.NotAvailable, "not ready: no free address in 10.244.3.0/30"]);
  });
});
