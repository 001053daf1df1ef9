/**
 * The compiled plugin against the kernel (root), called as a runtime calls it (see
 * cni-invoke.ts) inside a node namespace with a hand-written subnet.env — no agent
 * needed for the plugin's own contract. State is read back with `ip -j` / `bridge -j`
 * and the IPAM directory; connectivity with real pings.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hostInterfaceName } from "../../src/cni/commands.ts";
import { addPod, BIN, cni, cniAsync } from "./cni-invoke.ts";
import { exec, ip, ipJson, listNamespaces, NamespaceGroup, ping, requireRoot } from "../../sim/netns.ts";

const PREFIX = "wcni-";
const skip = requireRoot() ?? (!existsSync(BIN) ? "dist/weft is not built (npm test builds it)" : undefined);

const SUBNET = "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1400\nFLANNEL_IPMASQ=false\n";

describe.skipIf(!!skip)("weft CNI plugin on one node (dist/weft, root)", () => {
  let group: NamespaceGroup;
  let node: string;
  let dir: string;
  let subnetFile: string;
  let dataDir: string;
  let pods = 0;
  const conf = (o: object = {}) => ({ cniVersion: "1.0.0", name: "weft", type: "weft", subnetFile, dataDir, ...o });
  const newPod = () => group.add(`p${pods++}`);
  const records = () => (existsSync(join(dataDir, "weft")) ? readdirSync(join(dataDir, "weft")).filter((f) => /^\d/.test(f)).sort() : []);
  const vethsOnBridge = () => ipJson<{ ifname: string; master?: string }[]>(node, "link", "show", "type", "veth").filter((l) => l.master === "cni0").map((l) => l.ifname.split("@")[0]);
  const hostVeths = () => ipJson<{ ifname: string }[]>(node, "link", "show", "type", "veth").map((l) => l.ifname.split("@")[0]);

  beforeAll(() => {
    group = new NamespaceGroup(PREFIX);
    node = group.add("n");
    dir = mkdtempSync(join(tmpdir(), "weft-cni-"));
    subnetFile = join(dir, "subnet.env");
    dataDir = join(dir, "ipam");
    writeFileSync(subnetFile, SUBNET);
  });

  afterAll(async () => {
    await group?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
    expect(listNamespaces(PREFIX)).toEqual([]);
  });

  test("ADD plumbs the pod: veth on cni0 (created with the gateway), hairpin, address, default route, MTU; record on disk", () => {
    const pod = newPod();
    const netns = `/run/netns/${pod}`;
    const r = cni(node, { command: "ADD", containerId: "ctr-a", netns, ifname: "eth0", conf: conf() });
    expect([r.code, r.stderr]).toEqual([0, ""]);
    const host = hostInterfaceName("weft", "ctr-a", "eth0");
    expect(r.json.cniVersion).toBe("1.0.0");
    expect(r.json.interfaces.map((i: { name: string }) => i.name)).toEqual(["cni0", host, "eth0"]);
    expect(r.json.interfaces[2].sandbox).toBe(netns);
    expect(r.json.ips).toEqual([{ address: "10.244.3.2/24", gateway: "10.244.3.1", interface: 2 }]);
    expect(r.json.routes).toEqual([{ dst: "0.0.0.0/0", gw: "10.244.3.1" }]);

    const bridgeAddrs = ipJson(node, "-4", "addr", "show", "dev", "cni0")[0].addr_info.map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`);
    expect(bridgeAddrs).toEqual(["10.244.3.1/24"]);
    const hostLink = ipJson(node, "-d", "link", "show", "dev", host)[0];
    expect([hostLink.master, hostLink.mtu, hostLink.operstate, hostLink.linkinfo.info_kind]).toEqual(["cni0", 1400, "UP", "veth"]);
    expect(JSON.parse(exec(node, ["bridge", "-j", "-d", "link", "show", "dev", host]).stdout)[0].hairpin).toBe(true);

    const podLink = ipJson(pod, "-d", "addr", "show", "dev", "eth0")[0];
    expect([podLink.mtu, podLink.operstate, podLink.address]).toEqual([1400, "UP", r.json.interfaces[2].mac]);
    expect(podLink.addr_info.filter((a: { family: string }) => a.family === "inet").map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`)).toEqual(["10.244.3.2/24"]);
    expect(ipJson(pod, "route", "show", "default")).toEqual([expect.objectContaining({ dst: "default", gateway: "10.244.3.1", dev: "eth0" })]);

    // The bridge's MAC is pinned (NET_ADDR_SET): removing a port never changes it.
    expect(exec(node, ["cat", "/sys/class/net/cni0/addr_assign_type"]).stdout.trim()).toBe("3");
    expect(r.json.interfaces[0].mac).toBe(ipJson(node, "link", "show", "dev", "cni0")[0].address);

    expect(records()).toEqual(["10.244.3.2"]);
    expect(readFileSync(join(dataDir, "weft", "10.244.3.2"), "utf8")).toBe("ctr-a\r\neth0");
    expect(readFileSync(join(dataDir, "weft", "last_reserved_ip.0"), "utf8")).toBe("10.244.3.2");
    expect(ping(pod, "10.244.3.1")).toBe(true);
  });

  test("two pods on the node reach each other; results follow the requested spec version", () => {
    const a = newPod();
    const b = newPod();
    const ra = cni(node, { command: "ADD", containerId: "ctr-b", netns: `/run/netns/${a}`, ifname: "eth0", conf: conf({ cniVersion: "0.3.1" }) });
    const rb = cni(node, { command: "ADD", containerId: "ctr-c", netns: `/run/netns/${b}`, ifname: "eth0", conf: conf({ cniVersion: "1.1.0" }) });
    expect(ra.json.ips[0].version).toBe("4");
    expect(rb.json.interfaces[2].mtu).toBe(1400);
    const ipB = rb.json.ips[0].address.split("/")[0];
    expect(ping(a, ipB)).toBe(true);
  });

  test("DEL removes veth and record; a second DEL succeeds; DEL of an unknown container succeeds", () => {
    const pod = newPod();
    const netns = `/run/netns/${pod}`;
    const { ip: addr } = addPod(node, { containerId: "ctr-del", netns, ifname: "eth0", conf: conf() });
    const host = hostInterfaceName("weft", "ctr-del", "eth0");
    expect(hostVeths()).toContain(host);
    const bridgeMac = ipJson(node, "link", "show", "dev", "cni0")[0].address;
    for (let i = 0; i < 2; i++) {
      const r = cni(node, { command: "DEL", containerId: "ctr-del", netns, ifname: "eth0", conf: conf() });
      expect([r.code, r.stdout, r.stderr]).toEqual([0, "", ""]);
    }
    expect(hostVeths()).not.toContain(host);
    expect(records()).not.toContain(addr);
    expect(ipJson(pod, "link", "show").map((l: { ifname: string }) => l.ifname)).toEqual(["lo"]);
    expect(ipJson(node, "link", "show", "dev", "cni0")[0].address).toBe(bridgeMac);
    expect(cni(node, { command: "DEL", containerId: "never-added", ifname: "eth0", conf: conf() }).code).toBe(0);
  });

  test("DEL after the pod's namespace is gone (and without CNI_NETNS) frees the address", () => {
    const pod = newPod();
    const { ip: addr } = addPod(node, { containerId: "ctr-gone", netns: `/run/netns/${pod}`, ifname: "eth0", conf: conf() });
    Bun.spawnSync(["ip", "netns", "del", pod]);
    const r = cni(node, { command: "DEL", containerId: "ctr-gone", netns: `/run/netns/${pod}`, ifname: "eth0", conf: conf() });
    expect(r.code).toBe(0);
    expect(records()).not.toContain(addr);
    expect(hostVeths()).not.toContain(hostInterfaceName("weft", "ctr-gone", "eth0"));
  });

  test("CHECK passes after ADD and fails (code 102) once the address is removed by hand", () => {
    const pod = newPod();
    const netns = `/run/netns/${pod}`;
    const { result } = addPod(node, { containerId: "ctr-chk", netns, ifname: "eth0", conf: conf() });
    const check = () => cni(node, { command: "CHECK", containerId: "ctr-chk", netns, ifname: "eth0", conf: conf({ prevResult: result }) });
    const ok = check();
    expect([ok.code, ok.stdout, ok.stderr]).toEqual([0, "", ""]);
    ip(pod, "addr", "del", result.ips[0].address, "dev", "eth0");
    const bad = check();
    expect(bad.code).toBe(1);
    expect(bad.json.code).toBe(102);
    expect(bad.json.msg).toBe(`check eth0 in ${netns}: address ${result.ips[0].address} is missing (has none)`);
    ip(pod, "link", "set", "eth0", "down");
    expect(check().json.msg).toMatch(/interface is down/);
  });

  test("GC frees allocations (and veths) of containers the runtime no longer lists", () => {
    const keep = newPod();
    const stale = newPod();
    const k = addPod(node, { containerId: "gc-keep", netns: `/run/netns/${keep}`, ifname: "eth0", conf: conf() });
    const s = addPod(node, { containerId: "gc-stale", netns: `/run/netns/${stale}`, ifname: "eth0", conf: conf() });
    const valid = records().map((ip) => {
      const [id, ifname] = readFileSync(join(dataDir, "weft", ip), "utf8").split("\r\n");
      return { containerID: id!, ifname: ifname! };
    }).filter((a) => a.containerID !== "gc-stale");
    const r = cni(node, { command: "GC", conf: conf({ cniVersion: "1.1.0", "cni.dev/valid-attachments": valid }) });
    expect([r.code, r.stdout]).toEqual([0, ""]);
    expect(records()).toContain(k.ip);
    expect(records()).not.toContain(s.ip);
    expect(hostVeths()).not.toContain(hostInterfaceName("weft", "gc-stale", "eth0"));
    expect(hostVeths()).toContain(hostInterfaceName("weft", "gc-keep", "eth0"));
    expect(ipJson(stale, "link", "show").map((l: { ifname: string }) => l.ifname)).toEqual(["lo"]);
  });

  test("STATUS is ready; VERSION lists the supported versions", () => {
    expect(cni(node, { command: "STATUS", conf: conf({ cniVersion: "1.1.0" }) }).code).toBe(0);
    const v = cni(node, { command: "VERSION", conf: { cniVersion: "1.0.0" } });
    expect(v.json).toEqual({ cniVersion: "1.0.0", supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] });
  });

  describe("a failed ADD leaves no veth and no record", () => {
    test.each([
      ["garbled stdin", {}, "{\"cniVersion\":", 6, /not valid JSON/],
      ["missing stdin", {}, "", 6, /no network configuration/],
      ["unknown cniVersion", {}, { cniVersion: "0.2.0", name: "weft", type: "weft" }, 1, /incompatible CNI version "0.2.0"/],
      ["missing CNI_NETNS", { netns: undefined }, undefined, 4, /missing CNI_NETNS/],
      ["CNI_NETNS that is not a namespace", { netns: "/etc/hostname" }, undefined, 4, /CNI_NETNS: open network namespace \/etc\/hostname: not a namespace file/],
      ["CNI_NETNS that does not exist", { netns: "/run/netns/wcni-none" }, undefined, 4, /No such file or directory/],
      ["interface name too long", { ifname: "eth0-too-long-xx" }, undefined, 4, /longer than 15 bytes/],
      ["subnet.env absent", {}, "nosubnet", 11, /subnet file .*nosubnet\/subnet.env not found/],
    ] as const)("%s", (_, over, stdin, code, msg) => {
      const pod = newPod();
      const before = [hostVeths(), records()];
      const c = stdin === "nosubnet" ? conf({ subnetFile: join(dir, "nosubnet", "subnet.env") }) : stdin ?? conf();
      const r = cni(node, { command: "ADD", containerId: "ctr-bad", netns: `/run/netns/${pod}`, ifname: "eth0", conf: c, ...over });
      expect(r.code).toBe(1);
      expect(r.json.code).toBe(code);
      expect(r.json.msg).toMatch(msg);
      expect([hostVeths(), records()]).toEqual(before);
      expect(ipJson(pod, "link", "show").map((l: { ifname: string }) => l.ifname)).toEqual(["lo"]);
    });

    test("the interface name exists in the pod already (code 100)", () => {
      const pod = newPod();
      ip(pod, "link", "add", "eth0", "type", "veth", "peer", "name", "other0");
      const before = [hostVeths(), records()];
      const r = cni(node, { command: "ADD", containerId: "ctr-dup", netns: `/run/netns/${pod}`, ifname: "eth0", conf: conf() });
      expect([r.code, r.json.code, r.json.msg]).toEqual([1, 100, `interface eth0 exists already in /run/netns/${pod}`]);
      expect([hostVeths(), records()]).toEqual(before);
    });

    test("the address range is exhausted (code 11)", () => {
      const small = join(dir, "small");
      mkdirSync(small);
      writeFileSync(join(small, "subnet.env"), SUBNET.replace("10.244.3.1/24", "10.244.9.1/30"));
      const c = conf({ name: "tiny", subnetFile: join(small, "subnet.env"), bridge: "cni1" });
      addPod(node, { containerId: "t1", netns: `/run/netns/${newPod()}`, ifname: "eth0", conf: c });
      const pod = newPod();
      const before = [hostVeths(), readdirSync(join(dataDir, "tiny")).sort()];
      const r = cni(node, { command: "ADD", containerId: "t2", netns: `/run/netns/${pod}`, ifname: "eth0", conf: c });
      expect([r.code, r.json.code, r.json.msg]).toEqual([1, 11, "no free address in 10.244.9.0/30: all 1 are allocated"]);
      expect([hostVeths(), readdirSync(join(dataDir, "tiny")).sort()]).toEqual(before);
    });
  });

  test("a renumbered node hands out only its new subnet; the bridge follows; the old pod's DEL frees its old address", () => {
    const old = addPod(node, { containerId: "rn-old", netns: `/run/netns/${newPod()}`, ifname: "eth0", conf: conf() });
    expect(old.ip.startsWith("10.244.3.")).toBe(true);
    writeFileSync(subnetFile, SUBNET.replace("10.244.3.1/24", "10.244.42.1/24"));
    try {
      const fresh = addPod(node, { containerId: "rn-new", netns: `/run/netns/${newPod()}`, ifname: "eth0", conf: conf() });
      expect(fresh.ip).toBe("10.244.42.2");
      const bridgeAddrs = ipJson(node, "-4", "addr", "show", "dev", "cni0")[0].addr_info.map((a: { local: string }) => a.local);
      expect(bridgeAddrs).toEqual(["10.244.42.1"]);
      expect(cni(node, { command: "DEL", containerId: "rn-old", ifname: "eth0", conf: conf() }).code).toBe(0);
      expect(records()).not.toContain(old.ip);
    } finally {
      writeFileSync(subnetFile, SUBNET);
    }
  });
});

describe.skipIf(!!skip)("weft CNI plugin under concurrency (dist/weft, root)", () => {
  let group: NamespaceGroup;
  let node: string;
  let dir: string;
  const N = 50;

  beforeAll(() => {
    group = new NamespaceGroup("wcnic-");
    node = group.add("n");
    dir = mkdtempSync(join(tmpdir(), "weft-cni-conc-"));
    writeFileSync(join(dir, "subnet.env"), SUBNET);
  });

  afterAll(async () => {
    await group?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
    expect(listNamespaces("wcnic-")).toEqual([]);
  });

  test(`${N} concurrent ADDs get ${N} distinct addresses; ${N} concurrent DELs free them all`, async () => {
    const conf = { cniVersion: "1.0.0", name: "conc", type: "weft", subnetFile: join(dir, "subnet.env"), dataDir: join(dir, "ipam") };
    // 2000 records left from a former subnet: every plugin reads them all while it holds the
    // lock, which widens the window in which unserialised processes would collide.
    mkdirSync(join(dir, "ipam", "conc"), { recursive: true });
    for (let i = 0; i < 2000; i++) writeFileSync(join(dir, "ipam", "conc", `10.250.${i >> 8}.${i & 255}`), `old${i}\r\neth0`);
    const pods = Array.from({ length: N }, (_, i) => group.add(`p${i}`));
    const adds = await Promise.all(pods.map((p, i) => cniAsync(node, { command: "ADD", containerId: `c${i}`, netns: `/run/netns/${p}`, ifname: "eth0", conf })));
    for (const a of adds) expect([a.code, a.stderr]).toEqual([0, ""]);
    const ips = adds.map((a) => a.json.ips[0].address);
    expect(new Set(ips).size).toBe(N);
    expect(readdirSync(join(dir, "ipam", "conc")).filter((f) => f.startsWith("10.244.")).length).toBe(N);
    const onBridge = ipJson<{ master?: string }[]>(node, "link", "show", "type", "veth").filter((l) => l.master === "cni0");
    expect(onBridge.length).toBe(N);
    // Every pod answers from the node (its address really is configured).
    expect(ping(pods[N - 1]!, "10.244.3.1")).toBe(true);

    const dels = await Promise.all(pods.map((p, i) => cniAsync(node, { command: "DEL", containerId: `c${i}`, netns: `/run/netns/${p}`, ifname: "eth0", conf })));
    for (const d of dels) expect([d.code, d.stdout, d.stderr]).toEqual([0, "", ""]);
    expect(readdirSync(join(dir, "ipam", "conc")).filter((f) => f.startsWith("10.244."))).toEqual([]);
    expect(ipJson(node, "link", "show", "type", "veth")).toEqual([]);
  }, 120_000);
});

describe.skipIf(!!skip)("weft CNI plugin with a dual-stack and an IPv6-only subnet.env (dist/weft, root)", () => {
  const DUAL = "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:3::1/64\nFLANNEL_MTU=1400\nFLANNEL_IPMASQ=false\n";
  const V6 = "FLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:5::1/64\nFLANNEL_MTU=1400\nFLANNEL_IPMASQ=false\n";
  let group: NamespaceGroup;
  let dir: string;
  beforeAll(() => {
    group = new NamespaceGroup("wcni6-");
    dir = mkdtempSync(join(tmpdir(), "weft-cni6-"));
  });
  afterAll(async () => {
    await group?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
    expect(listNamespaces("wcni6-")).toEqual([]);
  });

  test("dual-stack: an address of each family (usable at once, no duplicate address detection), both gateways on cni0, both default routes; pods reach each other over both; CHECK passes; DEL frees both", () => {
    const node = group.add("n");
    const subnetFile = join(dir, "dual.env");
    writeFileSync(subnetFile, DUAL);
    const conf = { cniVersion: "1.0.0", name: "weft", type: "weft", subnetFile, dataDir: join(dir, "ipam-dual") };
    const [a, b] = [group.add("a"), group.add("b")];
    const ra = cni(node, { command: "ADD", containerId: "d-a", netns: `/run/netns/${a}`, ifname: "eth0", conf });
    const rb = cni(node, { command: "ADD", containerId: "d-b", netns: `/run/netns/${b}`, ifname: "eth0", conf });
    expect([ra.code, ra.stderr, rb.code]).toEqual([0, "", 0]);
    expect(ra.json.ips).toEqual([
      { address: "10.244.3.2/24", gateway: "10.244.3.1", interface: 2 },
      { address: "fd00:10:244:3::2/64", gateway: "fd00:10:244:3::1", interface: 2 },
    ]);
    expect(ra.json.routes).toEqual([
      { dst: "0.0.0.0/0", gw: "10.244.3.1" },
      { dst: "::/0", gw: "fd00:10:244:3::1" },
    ]);
    const v6 = (ns: string, dev: string) => ipJson(ns, "-6", "addr", "show", "dev", dev)[0].addr_info.filter((x: { scope: string }) => x.scope === "global");
    expect(v6(node, "cni0").map((x: { local: string; prefixlen: number }) => `${x.local}/${x.prefixlen}`)).toEqual(["fd00:10:244:3::1/64"]);
    const podAddr = v6(a, "eth0")[0];
    expect([podAddr.local, podAddr.prefixlen, podAddr.nodad, podAddr.tentative]).toEqual(["fd00:10:244:3::2", 64, true, undefined]);
    expect(ipJson(a, "-6", "route", "show", "default")).toEqual([expect.objectContaining({ dst: "default", gateway: "fd00:10:244:3::1", dev: "eth0" })]);
    expect(readFileSync(join(dir, "ipam-dual", "weft", "fd00:10:244:3::2"), "utf8")).toBe("d-a\r\neth0");
    expect(readFileSync(join(dir, "ipam-dual", "weft", "last_reserved_ip.1"), "utf8")).toBe("fd00:10:244:3::3");
    expect(ping(a, "fd00:10:244:3::3")).toBe(true);
    expect(ping(b, "fd00:10:244:3::1")).toBe(true);
    expect(ping(a, "10.244.3.3")).toBe(true);
    const check = cni(node, { command: "CHECK", containerId: "d-a", netns: `/run/netns/${a}`, ifname: "eth0", conf: { ...conf, prevResult: ra.json } });
    expect([check.code, check.stdout, check.stderr]).toEqual([0, "", ""]);
    const del = cni(node, { command: "DEL", containerId: "d-a", netns: `/run/netns/${a}`, ifname: "eth0", conf });
    expect(del.code).toBe(0);
    expect(readdirSync(join(dir, "ipam-dual", "weft")).filter((f) => /^[0-9a-f]+[.:]/.test(f)).sort()).toEqual(["10.244.3.3", "fd00:10:244:3::3"]);
  });

  test("IPv6-only: one IPv6 address and the IPv6 default route", () => {
    const node = group.add("m");
    const subnetFile = join(dir, "v6.env");
    writeFileSync(subnetFile, V6);
    const conf = { cniVersion: "0.4.0", name: "weft", type: "weft", subnetFile, dataDir: join(dir, "ipam-v6") };
    const pod = group.add("c");
    const r = cni(node, { command: "ADD", containerId: "v-a", netns: `/run/netns/${pod}`, ifname: "eth0", conf });
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(r.json.ips).toEqual([{ version: "6", address: "fd00:10:244:5::2/64", gateway: "fd00:10:244:5::1", interface: 2 }]);
    expect(r.json.routes).toEqual([{ dst: "::/0", gw: "fd00:10:244:5::1" }]);
    expect(exec(node, ["cat", "/sys/class/net/cni0/addr_assign_type"]).stdout.trim()).toBe("3");
    expect(ipJson(pod, "-4", "addr", "show", "dev", "eth0")[0]?.addr_info ?? []).toEqual([]);
    expect(ping(pod, "fd00:10:244:5::1")).toBe(true);
  });
});
