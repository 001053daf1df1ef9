/**
 * The read-only HTTP status API (README, "Status API, metrics, `weft status`").
 * Depends only on the leaf status types; tests drive it with `app.request(...)`.
 * Every failure mode answers with a 4xx/5xx JSON body and leaves the server running; a
 * 5xx never carries the internal message.
 */
import { Hono } from "hono";
import type { Logger } from "../log.ts";
import { silentLogger } from "../log.ts";
import { PROMETHEUS_CONTENT_TYPE, renderMetrics } from "./metrics.ts";
import type { StatusSource } from "./status.ts";

export interface AppOptions {
  /** Where handler failures are logged. */
  logger?: Logger;
  /** Requests whose URL (path + query) is longer than this get 414. */
  maxUrlLength?: number;
}

/** Paths the API serves; any other method on them gets 405 with this Allow header. */
const ROUTES = ["/healthz", "/readyz", "/v1/status", "/v1/nodes", "/metrics"] as const;
const ALLOW = "GET, HEAD";
/** The body of every 5xx caused by a failure inside the agent. */
export const INTERNAL_ERROR = "internal error (details in the agent's log)";

/**
 * Builds the Hono app over a status source.
 * @example
 * const app = createApp(agent.statusSource(), { logger });
 * const res = await app.request("/v1/status");
 */
export function createApp(source: StatusSource, { logger = silentLogger, maxUrlLength = 2048 }: AppOptions = {}): Hono {
  if (!source || typeof source.status !== "function") throw new TypeError("createApp: source must be a StatusSource");
  if (!Number.isInteger(maxUrlLength) || maxUrlLength < 16) throw new RangeError(`createApp: maxUrlLength must be an integer >= 16, got ${maxUrlLength}`);

  const app = new Hono();

  app.use("*", async (c, next) => {
    const u = new URL(c.req.url);
    if (u.pathname.length + u.search.length > maxUrlLength) return c.json({ error: `request URL longer than ${maxUrlLength} bytes` }, 414);
    if ((ROUTES as readonly string[]).includes(u.pathname) && c.req.method !== "GET" && c.req.method !== "HEAD") {
      c.header("Allow", ALLOW);
      return c.json({ error: `method ${c.req.method} not allowed on ${u.pathname}; the API is read-only` }, 405);
    }
    await next();
  });

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
