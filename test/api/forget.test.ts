/**
 * The API's one changing route, POST /v1/nodes/{name}/forget: answered only to a
 * loopback peer (the connection's address, as serveApi passes it) that is not a browser,
 * with the agent's 404/409 passed on; and `weft forget` against a served API.
 */
import { describe, expect, test } from "bun:test";
import { createApp } from "../../src/api/app.ts";
import { isLoopback } from "../../src/api/loopback.ts";
import { serveApi } from "../../src/api/serve.ts";
import type { ForgetResult, NodeActions } from "../../src/api/status.ts";
import { forgetCommand } from "../../src/cli/forget.ts";
import { silentLogger } from "../../src/log.ts";
import { fakeSource } from "./fake-source.ts";

function actions(answer: (name: string) => ForgetResult = (name) => ({ ok: true, node: name, subnet: "10.244.2.0/24" })) {
  const calls: string[] = [];
  const a: NodeActions = { forget: (name) => (calls.push(name), answer(name)) };
  return { a, calls };
}
const post = (app: ReturnType<typeof createApp>, path: string, remoteAddr: string | undefined, headers: Record<string, string> = {}) =>
  app.request(path, { method: "POST", headers }, remoteAddr === undefined ? {} : { remoteAddr });

describe("POST /v1/nodes/{name}/forget", () => {
  test("from loopback (IPv4, IPv4-mapped, IPv6): forgotten, the name passed on as sent", async () => {
    for (const peer of ["127.0.0.1", "::ffff:127.0.0.1", "::1"]) {
      const { a, calls } = actions();
      const r = await post(createApp(fakeSource(), { actions: a }), "/v1/nodes/n2/forget", peer);
      expect(r.status).toBe(200);
      expect(await r.json()).toEqual({ forgotten: "n2", subnet: "10.244.2.0/24" });
      expect(calls).toEqual(["n2"]);
    }
  });

  test("from any other address, an unknown one, or a browser (Origin header): 403, nothing forgotten", async () => {
    const cases: [string | undefined, Record<string, string>, string][] = [
      ["192.0.2.5", {}, "forget is accepted only from this host (loopback), not from 192.0.2.5"],
      ["::ffff:192.0.2.5", {}, "forget is accepted only from this host (loopback), not from ::ffff:192.0.2.5"],
      [undefined, {}, "forget is accepted only from this host (loopback), not from an unknown address"],
      ["127.0.0.1", { Origin: "https://evil.example" }, "forget is not accepted from a browser (the request carries an Origin header)"],
    ];
    for (const [peer, headers, error] of cases) {
      const { a, calls } = actions();
      const r = await post(createApp(fakeSource(), { actions: a }), "/v1/nodes/n2/forget", peer, headers);
      expect({ peer, status: r.status, body: await r.json() }).toEqual({ peer, status: 403, body: { error } });
      expect(calls).toEqual([]);
    }
  });

  test("the agent's refusals pass through: 409 alive, 404 unknown, 503 not joined", async () => {
    for (const res of [
      { ok: false, status: 409, error: "node n2 is alive (gossiping from 192.0.2.12:7946); …" },
      { ok: false, status: 404, error: "no lease for node n9" },
      { ok: false, status: 503, error: "the agent has not joined the cluster yet; try again once it is ready" },
    ] as const) {
      const r = await post(createApp(fakeSource(), { actions: actions(() => res).a }), "/v1/nodes/n2/forget", "127.0.0.1");
      expect(r.status).toBe(res.status);
      expect(await r.json()).toEqual({ error: res.error });
    }
  });

  test("other methods: 405 with Allow: POST; without actions the route does not exist and the rest stays read-only", async () => {
    const app = createApp(fakeSource(), { actions: actions().a });
    const g = await app.request("/v1/nodes/n2/forget", {}, { remoteAddr: "127.0.0.1" });
    expect(g.status).toBe(405);
    expect(g.headers.get("allow")).toBe("POST");
    expect((await post(createApp(fakeSource()), "/v1/nodes/n2/forget", "127.0.0.1")).status).toBe(404);
    expect((await post(app, "/v1/nodes", "127.0.0.1")).status).toBe(405);
  });

  test("isLoopback knows the IPv4-mapped loopback range", () => {
    expect(isLoopback("::ffff:127.5.6.7")).toBe(true);
    expect(isLoopback("::ffff:128.0.0.1")).toBe(false);
  });
});

describe("weft forget against a served API (127.0.0.1)", () => {
  async function withApi(answer: (name: string) => ForgetResult, fn: (url: string, calls: string[]) => Promise<void>) {
    const { a, calls } = actions(answer);
    const api = serveApi({ host: "127.0.0.1", port: 0, source: fakeSource(), actions: a, logger: silentLogger });
    try {
      await fn(api.url, calls);
    } finally {
      await api.stop();
    }
  }
  const io = () => {
    const o = { out: "", err: "" };
    return { o, io: { out: (s: string) => void (o.out += s), err: (s: string) => void (o.err += s) } };
  };

  test("forgotten: exit 0 and what happens next; the connection's loopback address got it through", async () => {
    await withApi((name) => ({ ok: true, node: name, subnet: "10.244.2.0/24" }), async (url, calls) => {
      const { o, io: x } = io();
      expect(await forgetCommand(["node-2.example", "--api", url], x)).toBe(0);
      expect(o.out).toBe("forgot node-2.example: its lease of 10.244.2.0/24 is tombstoned on every node; their routes to it go within seconds, and the subnet is free\n");
      expect(calls).toEqual(["node-2.example"]);
    });
  });

  test("refused: exit 1 with the agent's reason", async () => {
    await withApi(() => ({ ok: false, status: 409, error: "node n2 is alive (gossiping from 192.0.2.12:7946); stop it first" }), async (url) => {
      const { o, io: x } = io();
      expect(await forgetCommand(["n2", "--api", url], x)).toBe(1);
      expect(o.err).toBe("weft forget: n2 not forgotten (409): node n2 is alive (gossiping from 192.0.2.12:7946); stop it first\n");
    });
  });
});
