/**
 * ip-masq against the kernel: libnftables runs inside a test namespace (a child started
 * with `ip netns exec`, since setns would move only the JS thread), and the result is
 * read back independently with `nft -j list ruleset`. Then real traffic: pod → outside
 * is masqueraded, pod → pod is not. Needs root; namespaces are prefixed wop-ipmasq-.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { NftRunner } from "../../ffi/libnftables.ts";
import { ensureIpMasq, normaliseSpec, parseChainJson, removeIpMasq } from "../../src/sys/ipmasq.ts";

const isRoot = process.getuid?.() === 0;
const suffix = Math.random().toString(36).slice(2, 8);
const NS = `wop-ipmasq-${suffix}`;
const POD = `wop-ipmasq-p-${suffix}`;
const POD2 = `wop-ipmasq-q-${suffix}`;
const OUT = `wop-ipmasq-o-${suffix}`;
const ALL = [NS, POD, POD2, OUT];
const dir = mkdtempSync(join(tmpdir(), "wop-ipmasq-"));
const child = join(dir, "child.ts");
const bun = process.execPath;

const sh = (args: string[], allowFail = false) => {
  const r = Bun.spawnSync(args, { stderr: "pipe" });
  if (r.exitCode !== 0 && !allowFail) throw new Error(`${args.join(" ")}: ${r.stderr.toString()}`);
  return r.stdout.toString();
};
const inNs = (ns: string, args: string[], allowFail = false) => sh(["ip", "netns", "exec", ns, ...args], allowFail);

/** Runs one ipmasq.ts operation inside `ns` and returns its JSON result. */
function op(ns: string, name: "ensure" | "remove" | "read", arg?: object): { ok: boolean; value?: unknown; error?: string } {
  const r = Bun.spawnSync(["ip", "netns", "exec", ns, bun, child, name, JSON.stringify(arg ?? null)], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`child ${name} exited ${r.exitCode}: ${r.stderr.toString()}`);
  return JSON.parse(r.stdout.toString());
}

const ruleset = (ns: string) => JSON.parse(inNs(ns, ["nft", "-j", "list", "ruleset"])).nftables as Record<string, any>[];
const weftChain = (ns: string) => parseChainJson(inNs(ns, ["nft", "-j", "list", "chain", "ip", "weft", "postrouting"]));

describe("ip-masq spec validation", () => {
  test.each([
    [{ network: "10.244.0.0/16", subnet: "10.244.3.0/24" }, null],
    [{ network: "10.244.0.1/16", subnet: "10.244.3.7/24" }, null],
    [{ network: "nope", subnet: "10.244.3.0/24" }, /ip-masq network: expected a CIDR like 10.244.0.0\/16 or fd00:10:244::\/56/],
    [{ network: "10.244.0.0/16", subnet: "10.245.3.0/24" }, /ip-masq subnet: 10.245.3.0\/24 is not inside network 10.244.0.0\/16/],
    [{ network: "fd00:10:244::/56", subnet: "10.244.3.0/24" }, /ip-masq subnet: 10.244.3.0\/24 is not inside network fd00:10:244::\/56/],
  ] as const)("%j", (spec, err) => {
    if (err) expect(() => normaliseSpec(spec)).toThrow(err);
    else expect(normaliseSpec(spec).subnet.endsWith(".0/24")).toBe(true);
  });
  test("IPv6 specs are canonicalised", () => {
    expect(normaliseSpec({ network: "FD00:10:244::1/56", subnet: "fd00:10:244:3:0::7/64" })).toEqual({ network: "fd00:10:244::/56", subnet: "fd00:10:244:3::/64" });
  });
});

/** A fake nft: records commands, answers listings from canned JSON, fails on request. */
function recorder(listing: { tables?: string; chain?: string; fail?: RegExp; failWith?: string } = {}) {
  const ops: string[] = [];
  const nft: NftRunner = {
    run(cmd, o) {
      ops.push(o?.json ? `json: ${cmd}` : cmd);
      if (listing.fail?.test(cmd)) throw new Error(listing.failWith ?? "Error: Operation not supported");
      if (cmd.startsWith("list tables")) return listing.tables ?? '{"nftables":[]}';
      if (cmd.startsWith("list chain")) return listing.chain ?? '{"nftables":[]}';
      return "";
    },
  };
  return { nft, ops };
}

describe("ip-masq commands (fake nft)", () => {
  test("ensure on an empty ruleset writes one transaction", () => {
    const { nft, ops } = recorder();
    expect(ensureIpMasq({ network: "10.244.0.1/16", subnet: "10.244.3.0/24" }, { nft, fullyRandom: true })).toEqual({ changed: true });
    expect(ops).toEqual([
      "json: list tables ip",
      [
        "add table ip weft",
        "add chain ip weft postrouting { type nat hook postrouting priority srcnat; policy accept; }",
        "flush chain ip weft postrouting",
        "add rule ip weft postrouting meta mark & 0x4000 == 0x4000 return",
        "add rule ip weft postrouting ip saddr 10.244.0.0/16 ip daddr 10.244.0.0/16 return",
        "add rule ip weft postrouting ip saddr != 10.244.0.0/16 ip daddr 10.244.3.0/24 return",
        "add rule ip weft postrouting ip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random",
        "add rule ip weft postrouting ip saddr != 10.244.0.0/16 ip daddr 10.244.0.0/16 masquerade fully-random",
      ].join("\n"),
    ]);
  });

  test("a kernel refusing fully-random gets plain masquerade", () => {
    const { nft, ops } = recorder({ fail: /fully-random/, failWith: "Error: Could not process rule: Invalid argument" });
    expect(ensureIpMasq({ network: "10.244.0.0/16", subnet: "10.244.3.0/24" }, { nft, fullyRandom: true })).toEqual({ changed: true });
    expect(ops.at(-1)).toContain("daddr != 224.0.0.0/4 masquerade\n");
    expect(ops.at(-1)).not.toContain("fully-random");
  });

  test("IPv6: flannel's ip6 rules (multicast ff00::/8) in table ip6 weft, read and removed per family", () => {
    const { nft, ops } = recorder();
    expect(ensureIpMasq({ network: "fd00:10:244::/56", subnet: "fd00:10:244:3::/64" }, { nft, fullyRandom: true })).toEqual({ changed: true });
    expect(ops).toEqual([
      "json: list tables ip6",
      [
        "add table ip6 weft",
        "add chain ip6 weft postrouting { type nat hook postrouting priority srcnat; policy accept; }",
        "flush chain ip6 weft postrouting",
        "add rule ip6 weft postrouting meta mark & 0x4000 == 0x4000 return",
        "add rule ip6 weft postrouting ip6 saddr fd00:10:244::/56 ip6 daddr fd00:10:244::/56 return",
        "add rule ip6 weft postrouting ip6 saddr != fd00:10:244::/56 ip6 daddr fd00:10:244:3::/64 return",
        "add rule ip6 weft postrouting ip6 saddr fd00:10:244::/56 ip6 daddr != ff00::/8 masquerade fully-random",
        "add rule ip6 weft postrouting ip6 saddr != fd00:10:244::/56 ip6 daddr fd00:10:244::/56 masquerade fully-random",
      ].join("\n"),
    ]);
    const tables = '{"nftables":[{"table":{"family":"ip6","name":"weft","handle":1}}]}';
    const r = recorder({ tables });
    expect(removeIpMasq({ nft: r.nft, family: 6 })).toEqual({ changed: true });
    expect(r.ops).toEqual(["json: list tables ip6", "add table ip6 weft\ndelete table ip6 weft"]);
  });

  test("remove with nf_tables unsupported is a no-op, other failures name the operation", () => {
    expect(removeIpMasq({ nft: recorder({ fail: /list tables/ }).nft })).toEqual({ changed: false });
    expect(() => removeIpMasq({ nft: recorder({ fail: /list tables/, failWith: "Error: Operation not permitted" }).nft })).toThrow(/remove ip-masq table ip weft: Error: Operation not permitted/);
  });
});

describe.skipIf(!isRoot)("ip-masq in a namespace (root)", () => {
  beforeAll(() => {
    writeFileSync(
      child,
      `import { ensureIpMasq, readIpMasq, removeIpMasq } from ${JSON.stringify(resolve(import.meta.dir, "../../src/sys/ipmasq.ts"))};
const [name, arg] = process.argv.slice(2);
const a = JSON.parse(arg);
try {
  const value = name === "ensure" ? ensureIpMasq(a) : name === "remove" ? removeIpMasq(a ?? {}) : readIpMasq(a ?? {});
  console.log(JSON.stringify({ ok: true, value }));
} catch (e) { console.log(JSON.stringify({ ok: false, error: e.message })); }
`,
    );
    for (const ns of ALL) sh(["ip", "netns", "add", ns]);
  });
  afterAll(() => {
    for (const ns of ALL) sh(["ip", "netns", "del", ns], true);
    rmSync(dir, { recursive: true, force: true });
    const left = sh(["ip", "netns", "list"]).split("\n").filter((l) => l.includes(suffix));
    expect(left).toEqual([]);
  });

  const A = { network: "10.244.0.0/16", subnet: "10.244.3.0/24" };

  test("ensure writes flannel's rules into table ip weft; nft sees exactly them", () => {
    // Someone else's table must survive everything weft does.
    inNs(NS, ["nft", "add table ip other; add chain ip other c { type filter hook forward priority 0; }"]);
    expect(op(NS, "read")).toEqual({ ok: true, value: null });
    expect(op(NS, "ensure", A)).toEqual({ ok: true, value: { changed: true } });
    const rs = ruleset(NS);
    const chain = rs.find((i) => i.chain?.table === "weft")!.chain;
    expect([chain.family, chain.name, chain.type, chain.hook, chain.prio, chain.policy]).toEqual(["ip", "postrouting", "nat", "postrouting", 100, "accept"]);
    const text = inNs(NS, ["nft", "list", "chain", "ip", "weft", "postrouting"]);
    const lines = text.split("\n").map((l) => l.trim()).filter((l) => /return|masquerade/.test(l));
    expect(lines).toEqual([
      "meta mark & 0x00004000 == 0x00004000 return",
      "ip saddr 10.244.0.0/16 ip daddr 10.244.0.0/16 return",
      "ip saddr != 10.244.0.0/16 ip daddr 10.244.3.0/24 return",
      "ip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random",
      "ip saddr != 10.244.0.0/16 ip daddr 10.244.0.0/16 masquerade fully-random",
    ]);
    expect(rs.some((i) => i.table?.name === "other")).toBe(true);
  });

  test("ensure again changes nothing (same rule handles)", () => {
    const handles = () => ruleset(NS).filter((i) => i.rule?.table === "weft").map((i) => i.rule.handle);
    const before = handles();
    expect(op(NS, "ensure", A)).toEqual({ ok: true, value: { changed: false } });
    expect(handles()).toEqual(before);
    expect((op(NS, "read").value as { spec: unknown }).spec).toEqual(A);
  });

  test("a new subnet rewrites the chain", () => {
    expect(op(NS, "ensure", { ...A, subnet: "10.244.9.0/24" })).toEqual({ ok: true, value: { changed: true } });
    expect(weftChain(NS)!.spec).toEqual({ ...A, subnet: "10.244.9.0/24" });
    expect(op(NS, "ensure", A)).toEqual({ ok: true, value: { changed: true } });
  });

  test("a tampered chain (rule deleted, rule added) is restored", () => {
    const handle = ruleset(NS).find((i) => i.rule?.table === "weft" && JSON.stringify(i.rule.expr).includes("224.0.0.0"))!.rule.handle;
    inNs(NS, ["nft", "delete", "rule", "ip", "weft", "postrouting", "handle", String(handle)]);
    inNs(NS, ["nft", "add", "rule", "ip", "weft", "postrouting", "ip", "daddr", "8.8.8.8", "accept"]);
    expect(weftChain(NS)!.spec).toBeNull();
    expect(op(NS, "ensure", A)).toEqual({ ok: true, value: { changed: true } });
    expect(weftChain(NS)!.spec).toEqual(A);
    expect(weftChain(NS)!.rules.length).toBe(5);
  });

  test("bad input is an error naming the field, not a crash", () => {
    const r = op(NS, "ensure", { network: "10.244.0.0/16", subnet: "banana" });
    expect(r.ok).toBe(false);
    expect(r.error).toContain("ip-masq subnet");
  });

  test("remove deletes only weft's table; a second remove is a no-op", () => {
    expect(op(NS, "remove")).toEqual({ ok: true, value: { changed: true } });
    const rs = ruleset(NS);
    expect(rs.some((i) => i.table?.name === "weft")).toBe(false);
    expect(rs.some((i) => i.table?.name === "other")).toBe(true);
    expect(op(NS, "remove")).toEqual({ ok: true, value: { changed: false } });
    expect(op(NS, "read")).toEqual({ ok: true, value: null });
  });

  test("real traffic: pod → outside is masqueraded, pod → pod keeps its address", async () => {
    // POD (10.244.3.2) ─ NS (router: 10.244.3.1, 10.244.5.1, 192.0.2.1) ─ POD2 (10.244.5.2), OUT (192.0.2.2)
    const link = (a: string, b: string, ifA: string, ifB: string, addrA: string, addrB: string) => {
      sh(["ip", "-n", a, "link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", b]);
      sh(["ip", "-n", a, "addr", "add", addrA, "dev", ifA]);
      sh(["ip", "-n", b, "addr", "add", addrB, "dev", ifB]);
      sh(["ip", "-n", a, "link", "set", ifA, "up"]);
      sh(["ip", "-n", b, "link", "set", ifB, "up"]);
    };
    link(NS, POD, "p0", "eth0", "10.244.3.1/24", "10.244.3.2/24");
    link(NS, POD2, "q0", "eth0", "10.244.5.1/24", "10.244.5.2/24");
    link(NS, OUT, "o0", "eth0", "192.0.2.1/24", "192.0.2.2/24");
    sh(["ip", "-n", POD, "route", "add", "default", "via", "10.244.3.1"]);
    sh(["ip", "-n", POD2, "route", "add", "default", "via", "10.244.5.1"]);
    // OUT deliberately has no route back to 10.244.0.0/16: only a masqueraded reply can return.
    inNs(NS, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    expect(op(NS, "ensure", A)).toEqual({ ok: true, value: { changed: true } });

    expect(await sourceSeenBy(OUT, "192.0.2.2", POD)).toBe("192.0.2.1");
    expect(await sourceSeenBy(POD2, "10.244.5.2", POD)).toBe("10.244.3.2");
    // And the reply path works: a ping from the pod to outside gets answers.
    const ping = Bun.spawnSync(["ip", "netns", "exec", POD, "ping", "-c", "1", "-W", "2", "192.0.2.2"]);
    expect(ping.exitCode).toBe(0);
  });

  test("IPv6: table ip6 weft beside ip weft, read back with nft; pod → outside is masqueraded, pod → pod is not; removed alone", async () => {
    // The links of the test above get IPv6 addresses (no duplicate address detection: usable at once).
    for (const [ns, dev, addr] of [
      [NS, "p0", "fd00:10:244:3::1/64"], [POD, "eth0", "fd00:10:244:3::2/64"],
      [NS, "q0", "fd00:10:244:5::1/64"], [POD2, "eth0", "fd00:10:244:5::2/64"],
      [NS, "o0", "2001:db8:9::1/64"], [OUT, "eth0", "2001:db8:9::2/64"],
    ] as const) sh(["ip", "-n", ns, "addr", "add", addr, "dev", dev, "nodad"]);
    sh(["ip", "-n", POD, "-6", "route", "add", "default", "via", "fd00:10:244:3::1"]);
    sh(["ip", "-n", POD2, "-6", "route", "add", "default", "via", "fd00:10:244:5::1"]);
    inNs(NS, ["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
    const A6 = { network: "fd00:10:244::/56", subnet: "fd00:10:244:3::/64" };
    expect(op(NS, "ensure", A6)).toEqual({ ok: true, value: { changed: true } });
    expect(op(NS, "ensure", A6)).toEqual({ ok: true, value: { changed: false } });
    const text = inNs(NS, ["nft", "list", "chain", "ip6", "weft", "postrouting"]);
    expect(text.split("\n").map((l) => l.trim()).filter((l) => /return|masquerade/.test(l))).toEqual([
      "meta mark & 0x00004000 == 0x00004000 return",
      "ip6 saddr fd00:10:244::/56 ip6 daddr fd00:10:244::/56 return",
      "ip6 saddr != fd00:10:244::/56 ip6 daddr fd00:10:244:3::/64 return",
      "ip6 saddr fd00:10:244::/56 ip6 daddr != ff00::/8 masquerade fully-random",
      "ip6 saddr != fd00:10:244::/56 ip6 daddr fd00:10:244::/56 masquerade fully-random",
    ]);
    expect((op(NS, "read", { family: 6 }).value as { spec: unknown }).spec).toEqual(A6);
    expect(await sourceSeenBy(OUT, "2001:db8:9::2", POD)).toBe("2001:db8:9::1");
    expect(await sourceSeenBy(POD2, "fd00:10:244:5::2", POD)).toBe("fd00:10:244:3::2");
    // Each family's table goes on its own.
    expect(op(NS, "remove", { family: 6 })).toEqual({ ok: true, value: { changed: true } });
    const rs = ruleset(NS);
    expect(rs.filter((i) => i.table?.name === "weft").map((i) => i.table.family)).toEqual(["ip"]);
  });
});

/** Starts a UDP receiver in `rxNs` on `rxIp`:9999, sends from `txNs` until it reports, returns the source address it saw. */
async function sourceSeenBy(rxNs: string, rxIp: string, txNs: string): Promise<string> {
  const rx = Bun.spawn(
    ["ip", "netns", "exec", rxNs, process.execPath, "-e",
      `const s = await Bun.udpSocket({ hostname: ${JSON.stringify(rxIp.includes(":") ? "::" : "0.0.0.0")}, port: 9999, socket: { data(_s, _b, _p, addr) { console.log(addr); process.exit(0); } } }); console.log("ready");`],
    { stdout: "pipe", stderr: "pipe" },
  );
  const reader = rx.stdout.getReader();
  let buf = "";
  const deadline = Date.now() + 10_000;
  try {
    while (!buf.includes("ready\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`receiver in ${rxNs} exited: ${await new Response(rx.stderr).text()}`);
      buf += new TextDecoder().decode(value);
    }
    const sender = `const s = await Bun.udpSocket(${rxIp.includes(":") ? '{ hostname: "::" }' : "{}"}); for (let i = 0; i < 50; i++) { s.send("x", 9999, ${JSON.stringify(rxIp)}); await Bun.sleep(100); } process.exit(0);`;
    const tx = Bun.spawn(["ip", "netns", "exec", txNs, process.execPath, "-e", sender], { stdout: "ignore", stderr: "ignore" });
    try {
      while (!/ready\n\S+\n/.test(buf)) {
        if (Date.now() > deadline) throw new Error(`no datagram reached ${rxIp} in ${rxNs}`);
        const { value, done } = await reader.read();
        if (done) break;
        buf += new TextDecoder().decode(value);
      }
    } finally {
      tx.kill();
    }
    return buf.split("\n")[1]!.trim();
  } finally {
    rx.kill();
  }
}
