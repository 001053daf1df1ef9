/**
 * The status API through `app.request` (every route and error case), /metrics through the
 * real Prometheus text parser, and once over a real socket on 127.0.0.1.
 */
import { describe, expect, test } from "bun:test";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { createApp } from "../../src/api/app.ts";
import { isLoopback, serveApi } from "../../src/api/serve.ts";
import { createLogger } from "../../src/log.ts";
import { fakeSource, sampleState } from "./fake-source.ts";

const jsonOf = async (r: Response) => {
  expect(r.headers.get("content-type") ?? "").toContain("application/json");
  return r.json() as Promise<Record<string, unknown>>;
};

describe("routes", () => {
  test("GET /healthz is 200 ok while healthy, 503 once a loop died", async () => {
    const src = fakeSource();
    const app = createApp(src);
    let r = await app.request("/healthz");
    expect(r.status).toBe(200);
    expect(await r.text()).toBe("ok");
    src.state.healthy = false;
    r = await app.request("/healthz");
    expect(r.status).toBe(503);
    expect(await r.text()).not.toBe("ok");
  });

  test("GET /readyz is 200 when ready, 503 with the reason when not", async () => {
    const src = fakeSource();
    const app = createApp(src);
    let r = await app.request("/readyz");
    expect(r.status).toBe(200);
    expect(await jsonOf(r)).toEqual({ ready: true });
    src.state.readiness = { ready: false, reason: "waiting for lease commit" };
    r = await app.request("/readyz");
    expect(r.status).toBe(503);
    expect(await jsonOf(r)).toEqual({ ready: false, reason: "waiting for lease commit" });
  });

  test("GET /v1/status and /v1/nodes return the source's data as JSON", async () => {
    const src = fakeSource();
    const app = createApp(src);
    const s = await app.request("/v1/status");
    expect(s.status).toBe(200);
    expect(await jsonOf(s)).toEqual(sampleState().status as unknown as Record<string, unknown>);
    const n = await app.request("/v1/nodes");
    expect(n.status).toBe(200);
    expect(await n.json()).toEqual(sampleState().nodes);
  });

  test("HEAD is answered like GET without a body", async () => {
    const r = await createApp(fakeSource()).request("/healthz", { method: "HEAD" });
    expect(r.status).toBe(200);
    expect(await r.text()).toBe("");
  });

  const writes = [
    ["POST", "/v1/status"],
    ["PUT", "/v1/nodes"],
    ["DELETE", "/healthz"],
    ["PATCH", "/readyz"],
    ["POST", "/metrics"],
  ] as const;
  test.each(writes)("%s %s is 405 with an Allow header", async (method, path) => {
    const r = await createApp(fakeSource()).request(path, { method, body: method === "DELETE" ? undefined : "{}" });
    expect(r.status).toBe(405);
    expect(r.headers.get("allow")).toBe("GET, HEAD");
    expect(String((await jsonOf(r)).error)).toContain(method);
  });

  test.each(["/", "/v1", "/v1/status/extra", "/v2/status", "/metricsx"])("unknown route %s is 404 JSON", async (path) => {
    const r = await createApp(fakeSource()).request(path);
    expect(r.status).toBe(404);
    expect(String((await jsonOf(r)).error)).toContain(path);
  });

  test("an over-long URL is 414, a query string is otherwise ignored", async () => {
    const app = createApp(fakeSource());
    const long = await app.request(`/v1/status?x=${"a".repeat(5000)}`);
    expect(long.status).toBe(414);
    expect((await jsonOf(long)).error).toBeDefined();
    expect((await app.request("/v1/status?pretty=1")).status).toBe(200);
  });

  test("a throwing source gives a generic 500 (the detail only in the log), and the next request works", async () => {
    const src = fakeSource();
    const lines: string[] = [];
    const app = createApp(src, { logger: createLogger({ write: (l) => lines.push(l) }) });
    src.state.throwWith = new Error("lease table locked at /var/lib/weft/lease.json");
    for (const path of ["/healthz", "/readyz", "/v1/status", "/v1/nodes", "/metrics"]) {
      const r = await app.request(path);
      expect(r.status).toBe(500);
      const body = await r.text();
      expect(JSON.parse(body)).toEqual({ error: "internal error (details in the agent's log)" });
      expect(body).not.toContain("lease table");
    }
    expect(lines.length).toBe(5);
    expect(lines[0]).toContain("ERROR");
    expect(lines[0]).toContain("lease table locked at /var/lib/weft/lease.json");
    delete src.state.throwWith;
    expect((await app.request("/v1/status")).status).toBe(200);
  });

  test("bad options throw at construction naming the option", () => {
    expect(() => createApp(fakeSource(), { maxUrlLength: 0 })).toThrow(/maxUrlLength/);
    expect(() => createApp(null as never)).toThrow(/source/);
  });
});

describe("/metrics", () => {
  test("parses with the Prometheus text parser and carries the snapshot's values", async () => {
    const r = await createApp(fakeSource()).request("/metrics");
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await r.text();
    const fams = parsePrometheusTextFormat(text);
    const byName = new Map(fams.map((f) => [f.name, f]));
    for (const f of fams) {
      expect(f.name.startsWith("weft_")).toBe(true);
      expect(f.help.length).toBeGreaterThan(0);
      if (f.type === "COUNTER") expect(f.name.endsWith("_total")).toBe(true);
      else expect(f.name.endsWith("_total")).toBe(false);
    }
    const value = (name: string, labels?: Record<string, string>) => {
      const f = byName.get(name);
      if (!f) throw new Error(`metric ${name} missing`);
      const m = f.metrics.find((x) => JSON.stringify(x.labels ?? {}) === JSON.stringify(labels ?? {}));
      if (!m) throw new Error(`metric ${name}${JSON.stringify(labels)} missing`);
      return Number(m.value);
    };
    const rows: [string, Record<string, string> | undefined, number][] = [
      ["weft_members", { state: "alive" }, 2],
      ["weft_members", { state: "suspect" }, 1],
      ["weft_members", { state: "dead" }, 0],
      ["weft_members", { state: "left" }, 0],
      ["weft_leases", undefined, 3],
      ["weft_gossip_packets_total", { direction: "in" }, 10],
      ["weft_gossip_packets_total", { direction: "out" }, 11],
      ["weft_gossip_bytes_total", { direction: "in" }, 1200],
      ["weft_gossip_bytes_total", { direction: "out" }, 1300],
      ["weft_gossip_messages_total", { direction: "in" }, 20],
      ["weft_gossip_messages_total", { direction: "out" }, 21],
      ["weft_gossip_decrypt_failures_total", undefined, 2],
      ["weft_gossip_decode_failures_total", undefined, 1],
      ["weft_gossip_duplicates_skipped_total", undefined, 3],
      ["weft_gossip_replays_rejected_total", undefined, 4],
      ["weft_gossip_stale_rejected_total", undefined, 5],
      ["weft_gossip_sender_mismatches_total", undefined, 6],
      ["weft_reconcile_runs_total", undefined, 5],
      ["weft_reconcile_errors_total", undefined, 1],
      ["weft_reconcile_last_duration_seconds", undefined, 0.004],
      ["weft_conflicts_resolved_total", undefined, 1],
      ["weft_udp_packets_forwarded_total", undefined, 100],
      ["weft_udp_packets_dropped_total", undefined, 3],
      ["weft_udp_packets_refused_total", { reason: "spoofed_source" }, 2],
      ["weft_udp_packets_refused_total", { reason: "bad_offload_header" }, 1],
      ["weft_ready", undefined, 1],
      ["weft_build_info", { version: "0.1.0", node: "wop-a" }, 1],
    ];
    for (const [name, labels, want] of rows) expect([name, value(name, labels)]).toEqual([name, want]);
    const summary = byName.get("weft_reconcile_duration_seconds")!;
    expect(summary.type).toBe("SUMMARY");
    expect(Number(summary.metrics[0]!.sum)).toBe(0.02);
    expect(Number(summary.metrics[0]!.count)).toBe(5);
    // Every non-comment line is one sample: "name{labels} value".
    for (const line of text.trimEnd().split("\n")) {
      if (!line.startsWith("#")) expect(line).toMatch(/^weft_[a-z_]+(\{[^}]*\})? -?[0-9.e+-]+$|^weft_[a-z_]+(\{[^}]*\})? (NaN|[+-]Inf)$/);
    }
  });

  test("a label value with quotes and newlines stays one valid line", async () => {
    const st = sampleState();
    st.status.node = 'odd"name\nx';
    const text = await (await createApp(fakeSource(st)).request("/metrics")).text();
    const info = parsePrometheusTextFormat(text).find((f) => f.name === "weft_build_info")!;
    expect(info.metrics[0]!.labels!.node).toBe('odd"name\nx');
  });
});

describe("over a real socket", () => {
  test.each([
    ["127.0.0.1", true],
    ["127.1.2.3", true],
    ["localhost", true],
    ["::1", true],
    ["[::1]", true],
    ["0.0.0.0", false],
    ["192.0.2.1", false],
    ["::", false],
  ] as const)("isLoopback(%s) = %p", (host, want) => expect(isLoopback(host)).toBe(want));

  test("serveApi on 127.0.0.1 with a random port answers, refuses abuse with 4xx and stays up", async () => {
    const lines: string[] = [];
    const api = serveApi({ host: "127.0.0.1", port: 0, source: fakeSource(), logger: createLogger({ write: (l) => lines.push(l) }) });
    try {
      expect(api.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      expect(lines.some((l) => l.includes("WARN"))).toBe(false);
      const base = api.url.replace(/\/$/, "");
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect(((await (await fetch(`${base}/v1/status`)).json()) as { node: string }).node).toBe("wop-a");
      expect((await fetch(`${base}/metrics`)).status).toBe(200);

      const big = await fetch(`${base}/v1/status`, { method: "POST", body: "x".repeat(64 * 1024) });
      expect(big.status).toBe(413);
      expect((await fetch(`${base}/v1/status`, { headers: { "x-pad": "y".repeat(20_000) } })).status).toBe(431);
      expect((await fetch(`${base}/v1/nodes?q=${"b".repeat(4000)}`)).status).toBe(414);

      // A request line that is not HTTP at all.
      const port = Number(new URL(api.url).port);
      const reply = await rawExchange(port, "GARBAGE \x01\x02 nonsense\r\n\r\n");
      expect(reply).toMatch(/^HTTP\/1\.1 400 /);

      expect((await fetch(`${base}/readyz`)).status).toBe(200);
    } finally {
      await api.stop();
    }
    await expect(fetch(`${api.url}healthz`)).rejects.toThrow();
  });
});

/** Sends raw bytes and collects the reply until the peer closes or 2 s pass. */
async function rawExchange(port: number, data: string): Promise<string> {
  let got = "";
  const { promise, resolve } = Promise.withResolvers<string>();
  const timer = setTimeout(() => resolve(got), 2000);
  const sock = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, chunk) {
        got += chunk.toString();
        if (/^HTTP\/1\.1 \d{3}/.test(got)) resolve(got);
      },
      close() {
        resolve(got);
      },
      error() {
        resolve(got);
      },
    },
  });
  sock.write(data);
  const out = await promise;
  clearTimeout(timer);
  sock.end();
  return out;
}
