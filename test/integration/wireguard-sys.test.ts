/**
 * The WireGuard device I/O against the real kernel (root only), in namespaces:
 *  - the libnl-genl-3 transport, proven on the generic netlink controller every kernel
 *    has (the WireGuard family itself needs the module, which this suite reports);
 *  - a kernel without the module: the family is unknown and link kind "wireguard" is
 *    refused with "Operation not supported", which is what sends weft to wireguard-go;
 *  - wireguard-go through the UAPI socket, read back with `wg show`;
 *  - the backend under a reconciler (test/backend/node-agent.ts) on two nodes: traffic
 *    through the tunnel, a lease gone / back applied within a second.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Lines, NamespaceGroup, REPO, createTopology, ip, ping, requireRoot, tempScript, type Topology } from "../../sim/netns.ts";
import { killNamespaceProcesses, parseWgDump, WireguardMountNs } from "./wireguard-mountns.ts";
import { until } from "../../sim/wait.ts";

const skip = requireRoot() ?? (!Bun.which("wg") ? "wg missing (apt install wireguard-tools)" : undefined);
const kernelHasWireguard = existsSync("/sys/module/wireguard");
const key = (n: number) => Buffer.alloc(32, n).toString("base64");

/** Runs a TypeScript snippet with Bun in `ns` (and mount namespace `mnt`, if given); returns its last JSON line. */
function runIn(ns: string, source: string, mnt?: WireguardMountNs, env: Record<string, string> = {}): unknown {
  const s = tempScript(source);
  try {
    const argv = mnt ? mnt.argv(ns, [process.execPath, s.file]) : ["ip", "netns", "exec", ns, process.execPath, s.file];
    const p = Bun.spawnSync(argv, { env: { ...process.env, ...env }, timeout: 20_000 });
    const out = p.stdout.toString().trim();
    if (p.exitCode !== 0) throw new Error(`script exited ${p.exitCode}: ${p.stderr.toString()}${out}`);
    return JSON.parse(out.split("\n").pop()!);
  } finally {
    s.remove();
  }
}

describe.skipIf(!!skip)("WireGuard device I/O on this kernel", () => {
  const group = new NamespaceGroup("wgs-");
  let ns: string;
  beforeAll(() => {
    ns = group.add("a");
  });
  afterAll(async () => {
    killNamespaceProcesses(ns);
    await group.cleanup();
  });

  test("the libnl-genl transport: resolves a family and reads a multi-message dump to its end", () => {
    const r = runIn(
      ns,
      `import { GenlSocket } from ${JSON.stringify(join(REPO, "src/sys/wireguard-genl.ts"))};
       import { genlMessage, parseAttrs } from ${JSON.stringify(join(REPO, "src/sys/wireguard-genl-codec.ts"))};
       const s = new GenlSocket();
       const id = s.family("nlctrl");
       // CTRL_CMD_GETFAMILY (3) as a dump (NLM_F_REQUEST | NLM_F_DUMP): one message per family.
       const bodies = s.exchange("dump families", [genlMessage({ familyId: id, flags: 0x301, seq: 0, cmd: 3, attrs: [] })]);
       const names = bodies.map((b) => new TextDecoder().decode(parseAttrs(b, 4).find((a) => a.type === 2)?.payload ?? new Uint8Array()).replace(/\\0$/, ""));
       s.close();
       console.log(JSON.stringify({ id, names }));`,
    ) as { id: number; names: string[] };
    expect(r.id).toBe(16);
    expect(r.names).toContain("nlctrl");
    expect(r.names.length).toBeGreaterThan(1);
  });

  test.skipIf(kernelHasWireguard)("without the module: family unknown, link kind wireguard refused as not supported", () => {
    const r = runIn(
      ns,
      `import { GenlSocket, createKernelWireguardLink } from ${JSON.stringify(join(REPO, "src/sys/wireguard-genl.ts"))};
       const out = {};
       try { new GenlSocket().family("wireguard"); } catch (e) { out.family = e.message; }
       try { createKernelWireguardLink("weft-wg"); } catch (e) { out.link = e.message; out.code = e.code; }
       console.log(JSON.stringify(out));`,
    );
    expect(r).toEqual({ family: "resolve generic netlink family wireguard: Object not found", link: "create wireguard link weft-wg: Operation not supported", code: 10 });
  });

  test.skipIf(kernelHasWireguard)("neither the module nor wireguard-go: one error naming both", () => {
    const r = runIn(
      ns,
      `import { createWireguardSys } from ${JSON.stringify(join(REPO, "src/sys/wireguard-sys.ts"))};
       import { silentLogger } from ${JSON.stringify(join(REPO, "src/log.ts"))};
       try { createWireguardSys({ logger: silentLogger }).createDevice("weft-wg"); console.log(JSON.stringify("created")); }
       catch (e) { console.log(JSON.stringify(e.message)); }`,
      undefined,
      { WG_QUICK_USERSPACE_IMPLEMENTATION: "no-such-wireguard-go" },
    );
    expect(r).toMatch(/^create wireguard device weft-wg: the kernel has no WireGuard module and wireguard-go is not installed; load the kernel module \(modprobe wireguard.*\) or install wireguard-go/);
  });

  test.skipIf(!Bun.which("wireguard-go"))("wireguard-go over its UAPI socket: set, read back by weft and by `wg show`", async () => {
    const mnt = await WireguardMountNs.create();
    try {
      const r = runIn(
        ns,
        `import { createWireguardSys } from ${JSON.stringify(join(REPO, "src/sys/wireguard-sys.ts"))};
         import { openNetlink } from ${JSON.stringify(join(REPO, "src/sys/libnl.ts"))};
         import { silentLogger } from ${JSON.stringify(join(REPO, "src/log.ts"))};
         const sys = createWireguardSys({ logger: silentLogger });
         const impl = ${kernelHasWireguard ? '"kernel-present"' : 'sys.createDevice("weft-wg")'};
         const link = openNetlink().getLink("weft-wg");
         sys.setDevice("userspace", "weft-wg", { privateKey: ${JSON.stringify(key(8))}, listenPort: 51999, peers: [
           { publicKey: ${JSON.stringify(key(2))}, presharedKey: ${JSON.stringify(key(3))}, endpoint: "192.0.2.12:51999", persistentKeepaliveInterval: 25, allowedIps: ["10.244.2.0/24"] },
           { publicKey: ${JSON.stringify(key(4))}, presharedKey: null, endpoint: "192.0.2.13:51999", persistentKeepaliveInterval: 0, allowedIps: ["10.244.3.0/24"] }] });
         sys.setDevice("userspace", "weft-wg", { peers: [{ publicKey: ${JSON.stringify(key(4))}, remove: true }] });
         console.log(JSON.stringify({ impl, kind: link?.kind, implOf: sys.implOf(link), dev: sys.getDevice("userspace", "weft-wg") }));`,
        mnt,
      ) as { impl: string; kind: string; implOf: string; dev: { privateKey: string; listenPort: number; peers: unknown[] } };
      expect(r.impl).toBe("userspace");
      expect(r.kind).toBe("tun");
      expect(r.implOf).toBe("userspace");
      expect(r.dev.listenPort).toBe(51999);
      expect(r.dev.peers).toEqual([{ publicKey: key(2), presharedKey: key(3), endpoint: "192.0.2.12:51999", allowedIps: ["10.244.2.0/24"], persistentKeepaliveInterval: 25, lastHandshakeMs: 0, rxBytes: 0, txBytes: 0 }]);
      const dump = parseWgDump(mnt.exec(ns, ["wg", "show", "weft-wg", "dump"]).stdout);
      expect(dump.listenPort).toBe(51999);
      expect(dump.peers.map((p) => [p.publicKey, p.endpoint, p.allowedIps, p.keepalive])).toEqual([[key(2), "192.0.2.12:51999", "10.244.2.0/24", "25"]]);
      // The private key WireGuard holds is the clamped form of what was sent.
      expect(mnt.exec(ns, ["wg", "show", "weft-wg", "private-key"]).stdout.trim()).toBe(r.dev.privateKey);
    } finally {
      killNamespaceProcesses(ns);
      mnt.close();
    }
  });
});

describe.skipIf(!!skip || !Bun.which("wireguard-go"))("wireguard backend under a reconciler, two nodes", () => {
  let topo: Topology;
  const mnts: WireguardMountNs[] = [];
  const agents: { send(o: unknown): void; lines: Lines }[] = [];
  const keys = [
    { privateKey: "", publicKey: "" },
    { privateKey: "", publicKey: "" },
  ];
  const peers = () => [0, 1].map((i) => ({ nodeName: `node${i}`, subnet: `10.244.${i + 1}.0/24`, publicIp: `192.0.2.${11 + i}`, publicKey: keys[i]!.publicKey }));
  const wg = (i: number) => parseWgDump(mnts[i]!.exec(topo.nodes[i]!.ns, ["wg", "show", "weft-wg", "dump"]).stdout);

  beforeAll(async () => {
    const { generateWireguardKeys } = await import("../../src/backend/wireguard-key.ts");
    keys.splice(0, 2, generateWireguardKeys(), generateWireguardKeys());
    topo = createTopology({ prefix: "wgr-", nodes: 2 });
    for (const [i, n] of topo.nodes.entries()) {
      const mnt = await WireguardMountNs.create();
      mnts.push(mnt);
      const conf = {
        backend: { type: "wireguard", listenPort: 51820, listenPortV6: 51821, persistentKeepaliveInterval: 0, mode: "separate" },
        publicIp: n.ip,
        underlayIface: "eth0",
        underlayMtu: 1500,
        ownSubnet: `10.244.${i + 1}.0/24`,
        network: "10.244.0.0/16",
        wireguardKeys: keys[i],
        peers: peers(),
        reconcile: {},
      };
      const p = Bun.spawn(mnt.argv(n.ns, [process.execPath, join(REPO, "test/backend/node-agent.ts"), JSON.stringify(conf)]), { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
      const lines = new Lines(p.stdout);
      agents.push({ send: (o) => void (p.stdin.write(JSON.stringify(o) + "\n"), p.stdin.flush()), lines });
      const readyLine = await lines.waitFor((l) => l.includes('"ready"'), 20_000);
      expect(JSON.parse(readyLine)).toMatchObject({ ready: true, data: { type: "wireguard", publicKey: keys[i]!.publicKey } });
    }
  }, 60_000);

  afterAll(async () => {
    for (const n of topo?.nodes ?? []) killNamespaceProcesses(n.ns);
    for (const m of mnts) m.close();
    await topo?.cleanup();
  });

  test("the nodes reach each other's overlay address through the tunnel", () => {
    expect(ping(topo.nodes[0]!.ns, "10.244.2.0")).toBe(true);
    expect(ip(topo.nodes[0]!.ns, "-j", "route", "show", "dev", "weft-wg").stdout).toContain('"protocol":"87"');
    expect(wg(0).peers.map((p) => p.publicKey)).toEqual([keys[1]!.publicKey]);
    expect(wg(0).peers[0]!.latestHandshake).toBeGreaterThan(0);
  });

  test("a lease gone removes the peer within a second; back, it returns within a second", async () => {
    let t0 = Date.now();
    agents[0]!.send({ peers: [peers()[0]] });
    await until("peer removed", 1000, () => wg(0).peers.length === 0, 20);
    expect(Date.now() - t0).toBeLessThanOrEqual(1000);
    expect(ping(topo.nodes[0]!.ns, "10.244.2.0", { deadlineMs: 1500 })).toBe(false);
    t0 = Date.now();
    agents[0]!.send({ peers: peers() });
    await until("peer back", 1000, () => wg(0).peers.length === 1, 20);
    expect(Date.now() - t0).toBeLessThanOrEqual(1000);
    expect(ping(topo.nodes[0]!.ns, "10.244.2.0")).toBe(true);
  }, 20_000);
});
