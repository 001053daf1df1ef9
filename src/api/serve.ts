/**
 * Serves the status API with Bun.serve. Small request limits because no route reads a
 * body, so anything sizeable is refused before routing.
 */
import type { Logger } from "../log.ts";
import { createApp, INTERNAL_ERROR } from "./app.ts";
import { isLoopback } from "./loopback.ts";
import type { NodeActions, StatusSource } from "./status.ts";

export { isLoopback };

export interface ServeApiOptions {
  /** Address to bind, e.g. "127.0.0.1" (the contract default). */
  host: string;
  /** TCP port; 0 picks a free one (see the returned url). */
  port: number;
  source: StatusSource;
  /** The forget route's handler; without it the API is read-only. */
  actions?: NodeActions;
  logger: Logger;
  /** Largest request body accepted, in bytes (Bun answers 413 above it). */
  maxRequestBodySize?: number;
}

export interface ApiServer {
  /** Base URL actually bound, e.g. "http://127.0.0.1:7947/". */
  url: string;
  /** Stops accepting and closes open connections. */
  stop(): Promise<void>;
}


/**
 * Binds the API and starts answering.
 * @example
 * const api = serveApi({ host: "127.0.0.1", port: 7947, source, logger: log.child("api") });
 * // on shutdown:
 * await api.stop();
 */
export function serveApi({ host, port, source, actions, logger, maxRequestBodySize = 1024 }: ServeApiOptions): ApiServer {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`serveApi: port must be 0..65535, got ${port}`);
  const app = createApp(source, { logger, ...(actions ? { actions } : {}) });
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({
      hostname: host,
      port,
      maxRequestBodySize,
      fetch: (req, srv) => {
        // An empty or non-ASCII Host header makes Bun's req.url throw "Invalid URL" inside
        // Hono, which would surface as a 500: it is the client's malformed request.
        try {
          new URL(req.url);
        } catch {
          return Response.json({ error: "bad request: invalid Host header or request target" }, { status: 400 });
        }
        // The peer address, so the app can tell a local client from a remote one.
        return app.fetch(req, { remoteAddr: srv.requestIP(req)?.address });
      },
      // Reached only if Hono itself fails; keep the server up and answer JSON.
      error(err) {
        logger.error("status API request failed", { error: err });
        return Response.json({ error: INTERNAL_ERROR }, { status: 500 });
      },
    });
  } catch (e) {
    throw new Error(`serve status API on ${host}:${port}: ${(e as Error).message}`, { cause: e });
  }
  const url = server.url.href;
  if (!isLoopback(host)) logger.warn("status API bound to a non-loopback address; it is unauthenticated and readable by anyone who can reach it", { url });
  else logger.info("status API listening", { url });
  return {
    url,
    stop: async () => {
      await server.stop(true);
    },
  };
}
