/**
 * Bad configuration and API input, against the compiled binary:
 * every net-conf field and agent flag with a wrong type or range makes `weft
 * check-config` / `weft agent` exit 2 with a message naming the field; malformed or
 * oversized HTTP requests get a 4xx and the server keeps serving; the API binds loopback
 * by default and warns when exposed.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serveApi, type ApiServer } from "../../src/api/serve.ts";
import { silentLogger } from "../../src/log.ts";
import { seededRandom } from "../../src/gossip/prng.ts";
import { fakeSource } from "../api/fake-source.ts";
import { REPO, createTopology, exec, listNamespaces, requireRoot, sh, type Topology } from "../../sim/netns.ts";

const BIN = join(REPO, "dist/weft");
const noBin = existsSync(BIN) ? undefined : "dist/weft is not built (npm test builds it)";
const PREFIX = "whd-";
const dir = mkdtempSync(join(tmpdir(), "weft-hcfg-"));
const KEY = join(dir, "key");
const GOOD_NET = join(dir, "good.json");
writeFileSync(KEY, Buffer.alloc(32, 5).toString("base64") + "\n", { mode: 0o600 });
writeFileSync(GOOD_NET, JSON.stringify({ Network: "10.244.0.0/16", Backend: { Type: "vxlan" } }));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (args: string[], env: Record<string, string> = {}) => {
  const p = Bun.spawnSync([BIN, ...args], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env }, timeout: 10_000 });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
};

// [what, net-conf JSON (or raw text), text the message must contain]
const netConfCases: [string, unknown, string][] = [
  ["Network wrong type", { Network: 5 }, "Network"],
  ["Network without prefix", { Network: "10.244.0.0" }, "Network"],
  ["Network host bits", { Network: "10.244.0.1/16" }, "Network"],
  ["Network IPv6", { Network: "fd00::/48" }, "Network"],
  ["Network too small", { Network: "10.244.0.0/30" }, "Network"],
  ["Network missing", { SubnetLen: 24 }, "Network"],
  ["SubnetLen wrong type", { Network: "10.244.0.0/16", SubnetLen: "24" }, "SubnetLen"],
  ["SubnetLen fractional", { Network: "10.244.0.0/16", SubnetLen: 24.5 }, "SubnetLen"],
  ["SubnetLen 33", { Network: "10.244.0.0/16", SubnetLen: 33 }, "SubnetLen"],
  ["SubnetLen 31", { Network: "10.244.0.0/16", SubnetLen: 31 }, "SubnetLen"],
  ["SubnetLen below prefix+2", { Network: "10.244.0.0/16", SubnetLen: 17 }, "SubnetLen"],
  ["SubnetMin wrong type", { Network: "10.244.0.0/16", SubnetMin: 5 }, "SubnetMin"],
  ["SubnetMin not an address", { Network: "10.244.0.0/16", SubnetMin: "ten" }, "SubnetMin"],
  ["SubnetMin outside Network", { Network: "10.244.0.0/16", SubnetMin: "10.245.1.0" }, "SubnetMin"],
  ["SubnetMin off boundary", { Network: "10.244.0.0/16", SubnetMin: "10.244.1.7" }, "SubnetMin"],
  ["SubnetMax wrong type", { Network: "10.244.0.0/16", SubnetMax: [] }, "SubnetMax"],
  ["SubnetMax outside Network", { Network: "10.244.0.0/16", SubnetMax: "10.0.0.0" }, "SubnetMax"],
  ["SubnetMax below SubnetMin", { Network: "10.244.0.0/16", SubnetMin: "10.244.9.0", SubnetMax: "10.244.3.0" }, "SubnetMax"],
  ["EnableIPv4 wrong type", { Network: "10.244.0.0/16", EnableIPv4: "yes" }, "EnableIPv4"],
  ["EnableIPv4 and EnableIPv6 false", { Network: "10.244.0.0/16", EnableIPv4: false }, "EnableIPv4"],
  ["EnableIPv6 wrong type", { Network: "10.244.0.0/16", EnableIPv6: 1 }, "EnableIPv6"],
  ["EnableIPv6 without IPv6Network", { Network: "10.244.0.0/16", EnableIPv6: true }, "IPv6Network"],
  ["IPv6Network given as IPv4", { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "10.96.0.0/16" }, "IPv6Network"],
  ["IPv6SubnetMin outside IPv6Network", { EnableIPv4: false, EnableIPv6: true, IPv6Network: "fd00:10:244::/56", IPv6SubnetMin: "fd00:10:245::" }, "IPv6SubnetMin"],
  ["IPv6Network wrong type", { Network: "10.244.0.0/16", IPv6Network: 6 }, "IPv6Network"],
  ["IPv6SubnetLen out of range", { Network: "10.244.0.0/16", IPv6SubnetLen: 129 }, "IPv6SubnetLen"],
  ["IPv6SubnetMin wrong type", { Network: "10.244.0.0/16", IPv6SubnetMin: false }, "IPv6SubnetMin"],
  ["IPv6SubnetMax wrong type", { Network: "10.244.0.0/16", IPv6SubnetMax: {} }, "IPv6SubnetMax"],
  ["Backend wrong type", { Network: "10.244.0.0/16", Backend: "vxlan" }, "Backend"],
  ["Backend.Type unknown", { Network: "10.244.0.0/16", Backend: { Type: "geneve" } }, "Type"],
  ["Backend.Type missing", { Network: "10.244.0.0/16", Backend: {} }, "Type"],
  ["Backend.VNI negative", { Network: "10.244.0.0/16", Backend: { Type: "vxlan", VNI: -1 } }, "VNI"],
  ["Backend.VNI above 2^24-1", { Network: "10.244.0.0/16", Backend: { Type: "vxlan", VNI: 16777216 } }, "VNI"],
  ["Backend.VNI wrong type", { Network: "10.244.0.0/16", Backend: { Type: "vxlan", VNI: "1" } }, "VNI"],
  ["Backend.Port out of range", { Network: "10.244.0.0/16", Backend: { Type: "vxlan", Port: 70000 } }, "Port"],
  ["Backend.Port wrong type", { Network: "10.244.0.0/16", Backend: { Type: "vxlan", Port: "8472" } }, "Port"],
  ["Backend.DirectRouting wrong type", { Network: "10.244.0.0/16", Backend: { Type: "vxlan", DirectRouting: "yes" } }, "DirectRouting"],
  ["Backend.MTU too small", { Network: "10.244.0.0/16", Backend: { Type: "vxlan", MTU: 100 } }, "MTU"],
  ["Backend.MTU too large", { Network: "10.244.0.0/16", Backend: { Type: "vxlan", MTU: 10000 } }, "MTU"],
  ["udp Backend.Port out of range", { Network: "10.244.0.0/16", Backend: { Type: "udp", Port: -3 } }, "Port"],
  ["udp Backend.MTU wrong type", { Network: "10.244.0.0/16", Backend: { Type: "udp", MTU: "big" } }, "MTU"],
  ["unknown top-level key", { Network: "10.244.0.0/16", Netwrok: "x" }, "Netwrok"],
  ["unknown backend key", { Network: "10.244.0.0/16", Backend: { Type: "host-gw", VNI: 1 } }, "Backend.VNI"],
  ["not JSON", "{ Network: 10.244.0.0/16 ", "not JSON"],
  ["empty file", "", "not JSON"],
  ["JSON array", [], "net-conf"],
  ["JSON null", null, "net-conf"],
];

describe.skipIf(!!noBin)("bad net-conf: weft check-config exits 2 naming the field", () => {
  test.each(netConfCases)("%s", (what, conf, field) => {
    const file = join(dir, `nc-${what.replace(/\W+/g, "_")}.json`);
    writeFileSync(file, typeof conf === "string" ? conf : JSON.stringify(conf));
    const r = run(["check-config", "--net-conf", file]);
    expect({ code: r.code, out: r.out }).toEqual({ code: 2, out: "" });
    expect(r.err).toContain(field);
    expect(r.err).not.toMatch(/\n\s+at /); // a message, not a stack trace
  });

  test("a valid net-conf passes (the table above is not rejecting everything)", () => {
    const r = run(["check-config", "--net-conf", GOOD_NET]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).subnetLen).toBe(24);
  });

  test("missing --net-conf and a missing file are usage errors", () => {
    expect(run(["check-config"])).toMatchObject({ code: 2 });
    const r = run(["check-config", "--net-conf", join(dir, "nope.json")]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("nope.json");
  });
});

// Agent flags: run inside an empty namespace (lo only) so that a flag wrongly accepted can
// never make the agent touch the host's network; every case must exit 2 before starting.
const rootSkip = noBin ?? requireRoot();
const base = ["--net-conf", GOOD_NET, "--key-file", KEY, "--state-dir", join(dir, "state"), "--subnet-file", join(dir, "subnet.env"), "--node-name", "cfg"];
// [what, extra args, env, text the message must contain]
const flagCases: [string, string[], Record<string, string>, string][] = [
  ["--gossip-port not a number", ["--gossip-port", "abc"], {}, "--gossip-port"],
  ["--gossip-port 0", ["--gossip-port", "0"], {}, "--gossip-port"],
  ["--gossip-port 70000", ["--gossip-port", "70000"], {}, "--gossip-port"],
  ["--node-name with spaces", ["--node-name", "bad name"], {}, "--node-name"],
  ["--node-name too long", ["--node-name", "n".repeat(64)], {}, "--node-name"],
  ["--iface too long", ["--iface", "an-interface-name-longer-than-15"], {}, "--iface"],
  ["--public-ip not IPv4", ["--public-ip", "300.1.1.1"], {}, "--public-ip"],
  ["--public-ip IPv6", ["--public-ip", "2001:db8::1"], {}, "--public-ip"],
  ["--public-ipv6 IPv4", ["--public-ipv6", "192.0.2.1"], {}, "--public-ipv6"],
  ["WEFT_PUBLIC_IPV6 not an address", [], { WEFT_PUBLIC_IPV6: "2001:db8::g" }, "--public-ipv6"],
  ["--join bad port", ["--join", "192.0.2.1:99999"], {}, "--join"],
  ["--join not host:port", ["--join", "a:b:c"], {}, "--join"],
  ["--key-file missing file", ["--key-file", join(dir, "nokey")], {}, "nokey"],
  ["--key-file not base64", ["--key-file", GOOD_NET], {}, "cluster key"],
  ["no --key-file, no --insecure", ["--key-file", ""], {}, "--key-file"],
  ["--state-dir empty", ["--state-dir", ""], {}, "--state-dir"],
  ["--subnet-file empty", ["--subnet-file", ""], {}, "--subnet-file"],
  ["--api-listen not host:port", ["--api-listen", "nowhere"], {}, "--api-listen"],
  ["--api-listen port 0", ["--api-listen", "127.0.0.1:0"], {}, "--api-listen"],
  ["--api-listen port too big", ["--api-listen", "127.0.0.1:65536"], {}, "--api-listen"],
  ["--bridge with a slash", ["--bridge", "br/0"], {}, "--bridge"],
  ["--log-level unknown", ["--log-level", "loud"], {}, "--log-level"],
  ["--log-format unknown", ["--log-format", "xml"], {}, "--log-format"],
  ["--net-conf missing file", ["--net-conf", join(dir, "missing.json")], {}, "missing.json"],
  ["--net-conf invalid", ["--net-conf", join(dir, "nc-Backend_VNI_negative.json")], {}, "VNI"],
  ["unknown flag", ["--frobnicate"], {}, "frobnicate"],
  ["boolean flag with a value", ["--insecure=maybe"], {}, "insecure"],
  ["--ip-masq with a value", ["--ip-masq=yes"], {}, "ip-masq"],
  ["WEFT_INSECURE bad", ["--key-file", ""], { WEFT_INSECURE: "perhaps" }, "WEFT_INSECURE"],
  ["stray positional argument", ["extra"], {}, "extra"],
  ["WEFT_GOSSIP_PORT bad", [], { WEFT_GOSSIP_PORT: "http" }, "--gossip-port"],
  ["WEFT_IP_MASQ bad", [], { WEFT_IP_MASQ: "maybe" }, "WEFT_IP_MASQ"],
  ["WEFT_LOG_LEVEL bad", [], { WEFT_LOG_LEVEL: "trace" }, "--log-level"],
];

describe.skipIf(!!rootSkip)("bad agent flags: weft agent exits 2 naming the flag", () => {
  let ns = "";
  beforeAll(() => {
    ns = `${PREFIX}cfg${Math.random().toString(16).slice(2, 8)}`;
    sh(["ip", "netns", "add", ns]);
  });
  afterAll(() => {
    if (ns) sh(["ip", "netns", "del", ns], { check: false });
    if (ns) expect(listNamespaces(ns)).toEqual([]);
  });

  test.each(flagCases)("%s", (what, extra, env, field) => {
    // The net-conf case file comes from the table above; write it in case that suite was filtered.
    writeFileSync(join(dir, "nc-Backend_VNI_negative.json"), JSON.stringify({ Network: "10.244.0.0/16", Backend: { Type: "vxlan", VNI: -1 } }));
    const args = ["agent", ...base, ...extra];
    const p = Bun.spawnSync(["ip", "netns", "exec", ns, "env", ...Object.entries(env).map(([k, v]) => `${k}=${v}`), BIN, ...args], { timeout: 10_000 });
    const err = p.stderr.toString();
    expect({ what, code: p.exitCode }).toEqual({ what, code: 2 });
    expect(err).toContain(field);
    expect(err).not.toMatch(/\n\s+at /);
  });
});

describe("malformed and oversized HTTP requests get 4xx; the API keeps serving", () => {
  let api: ApiServer;
  let host = "";
  let port = 0;
  beforeAll(() => {
    api = serveApi({ host: "127.0.0.1", port: 0, source: fakeSource(), logger: silentLogger });
    const u = new URL(api.url);
    host = u.hostname;
    port = Number(u.port);
  });
  afterAll(async () => {
    await api?.stop();
  });

  /** Sends raw bytes, returns the status line (or "" if the server closed without one). */
  async function raw(bytes: Uint8Array | string, timeoutMs = 3000): Promise<string> {
    let got = "";
    const done = Promise.withResolvers<void>();
    const s = await Bun.connect({
      hostname: host,
      port,
      socket: {
        data(_s, d) {
          got += Buffer.from(d).toString("latin1");
          if (got.includes("\r\n")) done.resolve();
        },
        close: () => done.resolve(),
        error: () => done.resolve(),
      },
    });
    s.write(bytes);
    s.flush();
    const t = setTimeout(() => done.resolve(), timeoutMs);
    await done.promise;
    clearTimeout(t);
    s.end();
    return got.split("\r\n")[0] ?? "";
  }

  const cases: [string, string | Uint8Array][] = [
    ["garbage bytes", "\x00\x01\x02 not http at all\r\n\r\n"],
    ["unknown method", "BREW /v1/status HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["no HTTP version", "GET /v1/status\r\n\r\n"],
    ["bad version", "GET /v1/status HTTP/9.9\r\nHost: x\r\n\r\n"],
    ["header without colon", "GET /v1/status HTTP/1.1\r\nHost x\r\n\r\n"],
    ["64 KB header", `GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Pad: ${"a".repeat(65_536)}\r\n\r\n`],
    ["1000 headers", `GET /v1/status HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 1000 }, (_, i) => `X-${i}: y\r\n`).join("")}\r\n`],
    ["8 KB URL", `GET /v1/nodes?${"q".repeat(8192)} HTTP/1.1\r\nHost: x\r\n\r\n`],
    ["path traversal", "GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["POST with 10 MB content-length", "POST /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n"],
    ["negative content-length", "POST /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"],
    ["two content-lengths", "POST /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"],
    ["bad chunked body", "POST /v1/status HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"],
    ["DELETE on a route", "DELETE /v1/nodes HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["unknown route", "GET /v2/anything HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["NUL in path", "GET /v1/st\x00atus HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["empty Host", "GET /v1/status HTTP/1.1\r\nHost:\r\n\r\n"],
    ["non-ASCII Host", "GET /v1/status HTTP/1.1\r\nHost: \xe0\r\n\r\n"],
    ["no Host", "GET /v1/status HTTP/1.1\r\n\r\n"],
  ];
  // Bun's HTTP parser itself answers a request line it cannot parse (bad or missing
  // version, NUL bytes) with "505 HTTP Version Not Supported" before any weft code runs:
  // still a refusal, not a failure. Every other 5xx is a bug.
  const refusal = /^HTTP\/1\.[01] (4\d\d|505) /;

  test.each(cases)("%s", async (_what, req) => {
    const line = await raw(req);
    // A refusal, or the server hung up on bytes it cannot parse; never 2xx or a failure.
    if (line !== "") expect(line).toMatch(refusal);
    const ok = await fetch(`${api.url}healthz`);
    expect(ok.status).toBe(200);
  });

  /**
   * True when `req` still is a well-formed GET (or HEAD) of a route the API serves: only
   * such a request may be answered 2xx. Its request line must be exact; the server may
   * still refuse its headers (4xx).
   */
  const isValidRouteGet = (req: Uint8Array): boolean => {
    const line = Buffer.from(req).toString("latin1").split("\r\n")[0]!;
    const m = /^(GET|HEAD) (\/[\x21-\x7e]*) HTTP\/1\.[01]$/.exec(line);
    return !!m && ["/healthz", "/readyz", "/v1/status", "/v1/nodes", "/metrics"].includes(m[2]!.split("?")[0]!);
  };

  test("2000 random byte strings and truncated requests: 2xx only for a request that still is a valid GET of a route, no 5xx but the parser's 505, still serving", async () => {
    const rnd = seededRandom(77);
    const seen = new Map<string, number>();
    const okForInvalid: string[] = [];
    const batch: Promise<string>[] = [];
    for (let i = 0; i < 2000; i++) {
      const full = cases[Math.floor(rnd() * cases.length)]![1].toString();
      const kind = rnd();
      const bytes =
        kind < 0.4
          ? Uint8Array.from({ length: Math.floor(rnd() * 600) + 1 }, () => Math.floor(rnd() * 256))
          : kind < 0.7
            ? Buffer.from(full.slice(0, Math.floor(rnd() * full.length)) + "\r\n\r\n", "latin1")
            : Buffer.from(full.replace(/[A-Za-z]/g, (c) => (rnd() < 0.05 ? String.fromCharCode(Math.floor(rnd() * 256)) : c)), "latin1");
      batch.push(
        raw(bytes, 500).then((l) => {
          if (/^HTTP\/1\.[01] 2/.test(l) && !isValidRouteGet(bytes)) okForInvalid.push(JSON.stringify(Buffer.from(bytes).toString("latin1").slice(0, 80)));
          return l;
        }),
      );
      if (batch.length === 50) {
        for (const l of await Promise.all(batch.splice(0))) seen.set(l.slice(0, 12), (seen.get(l.slice(0, 12)) ?? 0) + 1);
      }
    }
    for (const l of await Promise.all(batch)) seen.set(l.slice(0, 12), (seen.get(l.slice(0, 12)) ?? 0) + 1);
    expect(okForInvalid).toEqual([]);
    // A 5xx other than the parser's 505 is a server failure.
    expect([...seen.keys()].filter((k) => /^HTTP\/1\.[01] 5/.test(k) && !k.endsWith(" 505"))).toEqual([]);
    expect([...seen.keys()].some((k) => / 4\d\d$/.test(k))).toBe(true);
    expect((await fetch(`${api.url}v1/status`)).status).toBe(200);
  }, 60_000);
});

describe.skipIf(!!rootSkip)("the agent's API: loopback by default, a warning when exposed", () => {
  let topo: Topology | undefined;
  const logs: string[] = [];
  afterAll(async () => {
    await topo?.cleanup();
    if (topo) expect(listNamespaces(topo.id)).toEqual([]);
  });

  const startAgent = async (ns: string, extra: string[], log: string) => {
    const p = topo!.spawn(ns, [BIN, "agent", "--net-conf", GOOD_NET, "--key-file", KEY, "--node-name", "api1", "--state-dir", join(dir, "api-state"), "--subnet-file", join(dir, "api-subnet.env"), "--bridge", "none", ...extra]);
    const text: string[] = [];
    const reader = (async () => {
      for await (const c of p.stderr) text.push(Buffer.from(c).toString());
    })();
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && !text.join("").includes("Ready")) {
      if (p.exitCode !== null) break;
      await Bun.sleep(50);
    }
    writeFileSync(log, text.join(""));
    return { p, text, reader };
  };

  test("default: 127.0.0.1:7947 only, not reachable from the underlay; --api-listen 0.0.0.0 warns and is reachable", async () => {
    topo = createTopology({ prefix: PREFIX + "api", nodes: 1 });
    const ns = topo.nodes[0]!.ns;
    const a = await startAgent(ns, [], join(dir, "api-a.log"));
    expect(a.text.join("")).toContain("Ready");
    const listening = exec(ns, ["ss", "-Hltn"]).stdout;
    expect(listening).toMatch(/127\.0\.0\.1:7947/);
    expect(listening).not.toMatch(/(0\.0\.0\.0|\*|192\.0\.2\.11):7947/);
    const fromUnderlay = exec(topo.underlay.ns, ["curl", "-s", "-m", "2", "-o", "/dev/null", "-w", "%{http_code}", "http://192.0.2.11:7947/healthz"], { check: false });
    expect(fromUnderlay.stdout).not.toBe("200");
    expect(a.text.join("")).not.toMatch(/WARN.*status API bound to a non-loopback/);
    a.p.kill("SIGTERM");
    await a.p.exited;

    const b = await startAgent(ns, ["--api-listen", "0.0.0.0:7947"], join(dir, "api-b.log"));
    expect(b.text.join("")).toMatch(/WARN.*non-loopback address/);
    const r = exec(topo.underlay.ns, ["curl", "-s", "-m", "2", "-o", "/dev/null", "-w", "%{http_code}", "http://192.0.2.11:7947/healthz"], { check: false });
    expect(r.stdout).toBe("200");
    // The real agent answers malformed requests with 4xx and stays up.
    const bad = exec(topo.underlay.ns, ["curl", "-s", "-m", "2", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "--data-binary", "x".repeat(5000), "http://192.0.2.11:7947/v1/status"], { check: false });
    expect(bad.stdout).toMatch(/^4\d\d$/);
    expect(exec(topo.underlay.ns, ["curl", "-s", "-m", "2", "http://192.0.2.11:7947/readyz"], { check: false }).stdout).toContain('"ready":true');
    b.p.kill("SIGTERM");
    expect(await b.p.exited).toBe(0);
  }, 60_000);
});

