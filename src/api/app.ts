/**
 * The HTTP status API (README, "Status API, metrics, `weft status`"): read-only but for
 * one route, POST /v1/nodes/{name}/forget, served to loopback clients only.
 * Depends only on the leaf status types; tests drive it with `app.request(...)`.
 * Every failure mode answers with a 4xx/5xx JSON body and leaves the server running; a
 * 5xx never carries the internal message.
 */
import { Hono } from "hono";
import type { Logger } from "../log.ts";
import { silentLogger } from "../log.ts";
import { PROMETHEUS_CONTENT_TYPE, renderMetrics } from "./metrics.ts";
import { isLoopback } from "./loopback.ts";
import type { NodeActions, StatusSource } from "./status.ts";

export interface AppOptions {
  /** Where handler failures are logged. */
  logger?: Logger;
  /** Requests whose URL (path + query) is longer than this get 414. */
  maxUrlLength?: number;
  /** Serves POST /v1/nodes/{name}/forget (to loopback clients only) when given. */
  actions?: NodeActions;
}

/** What the server tells the app about a request's connection (Bun.serve's requestIP). */
export interface ConnInfo {
  /** The client's address, e.g. "127.0.0.1" or "::ffff:127.0.0.1"; undefined when unknown. */
  remoteAddr?: string;
}

/** Paths the API serves; any other method on them gets 405 with this Allow header. */
const ROUTES = ["/healthz", "/readyz", "/v1/status", "/v1/nodes", "/metrics"] as const;
const ALLOW = "GET, HEAD";
/** The one route that changes something. */
const FORGET = /^\/v1\/nodes\/[^/]+\/forget$/;
/** The body of every 5xx caused by a failure inside the agent. */
export const INTERNAL_ERROR = "internal error (details in the agent's log)";

/**
 * Builds the Hono app over a status source.
 * @example
 * const app = createApp(agent.statusSource(), { logger });
 * const res = await app.request("/v1/status");
 */
export function createApp(source: StatusSource, { logger = silentLogger, maxUrlLength = 2048, actions }: AppOptions = {}): Hono<{ Bindings: ConnInfo }> {
  if (!source || typeof source.status !== "function") throw new TypeError("createApp: source must be a StatusSource");
  if (!Number.isInteger(maxUrlLength) || maxUrlLength < 16) throw new RangeError(`createApp: maxUrlLength must be an integer >= 16, got ${maxUrlLength}`);

  const app = new Hono<{ Bindings: ConnInfo }>();

  app.use("*", async (c, next) => {
    const u = new URL(c.req.url);
    if (u.pathname.length + u.search.length > maxUrlLength) return c.json({ error: `request URL longer than ${maxUrlLength} bytes` }, 414);
    if ((ROUTES as readonly string[]).includes(u.pathname) && c.req.method !== "GET" && c.req.method !== "HEAD") {
      c.header("Allow", ALLOW);
      return c.json({ error: `method ${c.req.method} not allowed on ${u.pathname}; the API is read-only` }, 405);
    }
    if (actions && FORGET.test(u.pathname) && c.req.method !== "POST") {
      c.header("Allow", "POST");
      return c.json({ error: `method ${c.req.method} not allowed on ${u.pathname}; use POST` }, 405);
    }
    await next();
  });

  if (actions) {
    // The API is unauthenticated: the one route that changes the cluster answers only a
    // process on this host — judged by the connection's peer address, so it holds even
    // when the API is bound to a non-loopback address — and never a browser (a web page
    // can send a cross-site POST to localhost, always with an Origin header).
    app.post("/v1/nodes/:name/forget", (c) => {
      const peer = c.env?.remoteAddr;
      if (peer === undefined || !isLoopback(peer)) return c.json({ error: `forget is accepted only from this host (loopback), not from ${peer ?? "an unknown address"}` }, 403);
      if (c.req.header("origin") !== undefined) return c.json({ error: "forget is not accepted from a browser (the request carries an Origin header)" }, 403);
      const name = c.req.param("name");
      const r = actions.forget(name);
      if (!r.ok) return c.json({ error: r.error }, r.status);
      logger.warn("node forgotten through the API", { node: r.node, subnet: r.subnet, client: peer });
      return c.json({ forgotten: r.node, subnet: r.subnet });
    });
  }

  app.get("/healthz", (c) => (source.healthy() ? c.text("ok") : c.text("unhealthy: an agent loop has stopped", 503)));

  app.get("/readyz", (c) => {
    const r = source.readiness();
    return r.ready ? c.json({ ready: true }) : c.json({ ready: false, reason: r.reason ?? "not ready" }, 503);
  });

  app.get("/v1/status", (c) => c.json(source.status()));
  app.get("/v1/nodes", (c) => c.json(source.nodes()));

  app.get("/metrics", (c) => {
    const st = source.status();
    const body = renderMetrics(source.metrics(), { readiness: source.readiness(), version: st.version, node: st.node });
    return c.body(body, 200, { "Content-Type": PROMETHEUS_CONTENT_TYPE });
  });

  app.notFound((c) => c.json({ error: `no route ${c.req.method} ${new URL(c.req.url).pathname}` }, 404));

  // Internal messages can carry paths, addresses and state an unauthenticated client has
  // no business reading: the answer is generic, the detail goes to the log. 4xx answers
  // above name the route, method or limit the client got wrong.
  app.onError((err, c) => {
    logger.error("status API handler failed", { path: new URL(c.req.url).pathname, error: err });
    return c.json({ error: INTERNAL_ERROR }, 500);
  });

  return app;
}
