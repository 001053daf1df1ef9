/**
 * The one typed Config passed down: flannel's net-conf.json (net-conf.ts) plus the agent
 * flags (agent-flags.ts), both validated with zod. Every error names the field or flag and
 * the expected form; the CLI turns a ConfigError into exit code 2.
 */
import type { AgentFlags } from "./agent-flags.ts";
import type { NetConf } from "./net-conf.ts";

/** A configuration problem the operator must fix; the CLI exits 2 on it. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Everything the agent needs, passed down as one object. */
export interface Config {
  agent: AgentFlags;
  net: NetConf;
}
