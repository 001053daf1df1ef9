/** The status API's public surface: types, the Hono app and the server. */
export type * from "./status.ts";
export { createApp, type AppOptions, type ConnInfo } from "./app.ts";
export { serveApi, isLoopback, type ApiServer, type ServeApiOptions } from "./serve.ts";
export { renderMetrics, PROMETHEUS_CONTENT_TYPE } from "./metrics.ts";
export { createStatusSource, countMembers, type StatusParts } from "./source.ts";
