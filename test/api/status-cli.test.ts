/** `weft status` against a real served API with a fake source, and with nobody listening. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { serveApi, type ApiServer } from "../../src/api/serve.ts";
import { formatStatus, relativeTime, statusCommand } from "../../src/cli/status.ts";
import { silentLogger } from "../../src/log.ts";
import { fakeSource, sampleState } from "./fake-source.ts";

const NOW = Date.parse("2026-11-24T12:00:05.000Z");

function capture() {
  const o = { out: "", err: "" };
  return { o, io: { out: (s: string) => void (o.out += s), err: (s: string) => void (o.err += s), now: () => NOW, timeoutMs: 2000 } };
}

let api: ApiServer;
const src = fakeSource();
beforeAll(() => {
  api = serveApi({ host: "127.0.0.1", port: 0, source: src, logger: silentLogger });
});
afterAll(async () => {
  await api.stop();
});

describe("weft status", () => {
  test("prints this node and a table of all nodes", async () => {
    const { o, io } = capture();
    expect(await statusCommand(["--api", api.url], io)).toBe(0);
    expect(o.err).toBe("");
    const lines = o.out.split("\n");
    expect(o.out).toContain("node:       wop-a");
    expect(o.out).toContain("10.244.1.0/24");
    expect(o.out).toContain("2 alive, 1 suspect, 0 dead, 0 left");
    expect(o.out).toContain("ready:      yes");
    const header = lines.find((l) => l.includes("NAME"))!;
    expect(header).toMatch(/NAME\s+PUBLIC IP\s+SUBNET\s+BACKEND\s+STATE\s+LAST SEEN/);
    const row = (name: string) => lines.find((l) => l.includes(` ${name} `))!.trim().split(/\s+/);
    expect(row("wop-a")).toEqual(["*", "wop-a", "192.0.2.11", "10.244.1.0/24", "vxlan", "alive", "self"]);
    expect(row("wop-b")).toEqual(["wop-b", "192.0.2.12", "10.244.2.0/24", "vxlan", "suspect", "35s", "ago"]);
    expect(row("wop-c")).toEqual(["wop-c", "192.0.2.13", "10.244.3.0/24", "vxlan", "alive", "never"]);
  });

  test("--json prints {status, nodes}", async () => {
    const { o, io } = capture();
    expect(await statusCommand(["--api", api.url, "--json"], io)).toBe(0);
    expect(JSON.parse(o.out)).toEqual({ status: sampleState().status, nodes: sampleState().nodes });
  });

  test("a node that is not ready says why", async () => {
    const { o, io } = capture();
    src.state.readiness = { ready: false, reason: "waiting for lease commit" };
    try {
      expect(await statusCommand(["--api", api.url], io)).toBe(0);
    } finally {
      src.state.readiness = { ready: true };
    }
    expect(o.out).toContain("ready:      no (waiting for lease commit)");
  });

  test("an agent answering 500 exits 1 with its (generic) error", async () => {
    const { o, io } = capture();
    src.state.throwWith = new Error("boom");
    try {
      expect(await statusCommand(["--api", api.url], io)).toBe(1);
    } finally {
      delete src.state.throwWith;
    }
    expect(o.err).toContain("answered 500: internal error (details in the agent's log)");
    expect(o.err).not.toContain("boom");
  });

  test("no agent: a message naming the URL, exit 1", async () => {
    // A port that was free a moment ago: bind, note it, release.
    const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = l.port;
    l.stop(true);
    const url = `http://127.0.0.1:${port}`;
    const { o, io } = capture();
    expect(await statusCommand(["--api", url], io)).toBe(1);
    expect(o.out).toBe("");
    expect(o.err).toBe(`no weft agent answering at ${url}: connection refused — is \`weft agent\` running?\n`);
  });

  test.each([[["--bogus"]], [["--api"]], [["extra"]], [["--api", "not a url"]], [["--api", "ftp://x"]]])("bad flags %j exit 2", async (argv) => {
    const { o, io } = capture();
    expect(await statusCommand(argv, io)).toBe(2);
    expect(o.err).toContain("weft status:");
  });
});

const bin = resolve(import.meta.dir, "../../dist/weft");
describe.skipIf(!existsSync(bin))("dist/weft status (compiled)", () => {
  test("prints the table from a live API, and the no-agent message with exit 1", async () => {
    const ok = Bun.spawn([bin, "status", "--api", api.url], { stdout: "pipe", stderr: "pipe" });
    const [out, code] = await Promise.all([new Response(ok.stdout).text(), ok.exited]);
    expect(code).toBe(0);
    expect(out).toMatch(/\*\s+wop-a\s+192\.0\.2\.11\s+10\.244\.1\.0\/24\s+vxlan\s+alive\s+self/);
    const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const url = `http://127.0.0.1:${l.port}`;
    l.stop(true);
    const r = Bun.spawnSync([bin, "status", "--api", url], { stdout: "pipe", stderr: "pipe" });
    expect(r.exitCode).toBe(1);
    expect(r.stderr.toString()).toBe(`no weft agent answering at ${url}: connection refused — is \`weft agent\` running?\n`);
  });

  test("an HTTP proxy in the environment is not used for the local agent (a dead proxy would make it look down)", async () => {
    const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const deadProxy = `http://127.0.0.1:${l.port}`;
    l.stop(true);
    const env = { ...process.env, HTTP_PROXY: deadProxy, http_proxy: deadProxy, NO_PROXY: "example.internal", no_proxy: "example.internal" };
    const p = Bun.spawn([bin, "status", "--api", api.url], { stdout: "pipe", stderr: "pipe", env });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    expect({ code, err }).toEqual({ code: 0, err: "" });
    expect(out).toContain("node:       wop-a");
  });
});

describe("formatting", () => {
  test.each([
    [null, "never"],
    ["2026-11-24T12:00:05.000Z", "just now"],
    ["2026-11-24T12:00:00.000Z", "5s ago"],
    ["2026-11-24T11:55:05.000Z", "5m ago"],
    ["2026-11-24T09:00:05.000Z", "3h ago"],
    ["2026-11-20T12:00:05.000Z", "4d ago"],
    ["garbage", "?"],
  ] as const)("relativeTime(%p) = %p", (iso, want) => expect(relativeTime(iso, NOW)).toBe(want));

  test("a node without a lease says so", () => {
    const st = sampleState();
    st.status.subnet = null;
    expect(formatStatus(st.status, [], NOW)).toContain("(no lease yet)");
  });

  test("dataplane problems are listed, one per line", () => {
    const st = sampleState();
    expect(formatStatus(st.status, [], NOW)).not.toContain("problem:");
    st.status.problems = ["host-gw: peer n3 (198.51.100.7) is not on-link", "second"];
    const out = formatStatus(st.status, [], NOW);
    expect(out).toContain("problem: host-gw: peer n3 (198.51.100.7) is not on-link\nproblem: second\n");
  });
});

describe("weft status with IPv6 pod networks", () => {
  const base = sampleState().status;
  test("dual-stack: IPv6 lines under the IPv4 ones, IPv6 columns in the table", () => {
    const s = { ...base, ipv6Network: "fd00:10:244::/56", ipv6Subnet: "fd00:10:244:1::/64", publicIpv6: "2001:db8::11" };
    const nodes = [
      { name: "wop-a", publicIp: "192.0.2.11", subnet: "10.244.1.0/24", publicIpv6: "2001:db8::11", ipv6Subnet: "fd00:10:244:1::/64", backend: "vxlan", state: "alive" as const, lastSeen: null },
      { name: "wop-b", publicIp: "192.0.2.12", subnet: "10.244.2.0/24", backend: "vxlan", state: "alive" as const, lastSeen: null },
    ];
    const out = formatStatus(s, nodes, NOW, { ready: true });
    expect(out).toContain("public IPv6:   2001:db8::11\n");
    expect(out).toContain("IPv6 network:  fd00:10:244::/56\n");
    expect(out).toContain("IPv6 subnet:   fd00:10:244:1::/64\n");
    const lines = out.split("\n");
    expect(lines.find((l) => l.includes("NAME"))).toMatch(/NAME\s+PUBLIC IP\s+SUBNET\s+PUBLIC IPV6\s+IPV6 SUBNET\s+BACKEND\s+STATE\s+LAST SEEN/);
    expect(lines.find((l) => l.includes(" wop-a "))!.trim().split(/\s+/)).toEqual(["*", "wop-a", "192.0.2.11", "10.244.1.0/24", "2001:db8::11", "fd00:10:244:1::/64", "vxlan", "alive", "self"]);
    // A node without IPv6 yet (a cluster enabling IPv6 node by node).
    expect(lines.find((l) => l.includes(" wop-b "))!.trim().split(/\s+/)).toEqual(["wop-b", "192.0.2.12", "10.244.2.0/24", "-", "-", "vxlan", "alive", "never"]);
  });

  test("IPv6-only: no IPv4 network lines; IPv4 columns read -", () => {
    const s = { ...base, publicIp: null, network: null, subnet: null, ipv6Network: "fd00:10:244::/56", ipv6Subnet: null, publicIpv6: "2001:db8::11" };
    const out = formatStatus(s, [{ name: "wop-a", publicIp: null, subnet: null, publicIpv6: "2001:db8::11", ipv6Subnet: "fd00:10:244:1::/64", backend: "vxlan", state: "alive", lastSeen: null }], NOW);
    expect(out.split("\n").filter((l) => /^(network|subnet):/.test(l))).toEqual([]);
    expect(out).toContain("public IP:     -\n");
    expect(out).toContain("IPv6 subnet:   (no lease yet)\n");
    expect(out.split("\n").find((l) => l.includes(" wop-a "))!.trim().split(/\s+/)).toEqual(["*", "wop-a", "-", "-", "2001:db8::11", "fd00:10:244:1::/64", "vxlan", "alive", "self"]);
  });
});
