/**
 * The `weft agent` flags of the contract (README, "weft agent flags"): parseArgs options,
 * WEFT_<FLAG> environment variables (the flag wins), validation with zod. Every error
 * names the flag and the expected form.
 */
import { z } from "zod";
import { hostname } from "node:os";
import { ConfigError } from "./config.ts";
import { publicIpTextProblem } from "./lease/record-validate.ts";
import { formatIp, parseIp, tryParseIp } from "./net/cidr.ts";

export interface HostPort {
  host: string;
  port: number;
}

/** Agent settings from flags/env, after validation. */
export interface AgentFlags {
  netConfPath: string;
  nodeName: string;
  iface?: string;
  publicIp?: string;
  /** The IPv6 underlay address peers use (--public-ipv6); discovered when IPv6 is enabled and this is absent. */
  publicIpv6?: string;
  gossipPort: number;
  join: HostPort[];
  keyFile?: string;
  insecure: boolean;
  /** Sealed gossip wire format during a rolling upgrade (GossipConfig.legacyWire); no effect with --insecure. */
  gossipLegacyWire: "off" | "accept" | "send";
  stateDir: string;
  subnetFile: string;
  /** null = API disabled (`--api-listen off`). */
  apiListen: HostPort | null;
  /** null = no bridge (`--bridge none`). */
  bridge: string | null;
  ipMasq: boolean;
  logLevel: "debug" | "info" | "warn" | "error";
  /** A file holding the log level: read at start (wins over logLevel) and at every reload (SIGHUP). */
  logLevelFile?: string;
  logFormat: "text" | "json";
  /** Give the lease back (a tombstone) when the agent stops cleanly; by default it is kept. */
  releaseOnStop: boolean;
}

export function parseHostPort(text: string, what: string, defaultPort?: number): HostPort {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  const m = bracketed ?? /^([^:]+)(?::(\d+))?$/.exec(text);
  if (!m || (m[2] === undefined && defaultPort === undefined)) throw new ConfigError(`${what}: expected HOST:PORT, got ${JSON.stringify(text)}`);
  const host = m[1]!;
  // All digits and dots is an IPv4 address or nothing (never a name).
  if (bracketed ? !isIpv6Text(host) : DOTTED.test(host) ? !isIpv4Text(host) : !HOST_NAME.test(host)) {
    throw new ConfigError(`${what}: expected HOST:PORT with HOST an IPv4 address, a DNS name or an [IPv6] address, got ${JSON.stringify(text)}`);
  }
  const port = m[2] === undefined ? defaultPort! : Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError(`${what}: port must be 1..65535, got ${JSON.stringify(text)}`);
  return { host, port };
}

/** A DNS name: dot-separated labels of letters, digits, '-' and '_', at most 253 characters. */
const HOST_NAME = /^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

const DOTTED = /^[\d.]+$/;
const isIpv4Text = (text: string) => DOTTED.test(text) && tryParseIp(text)?.family === 4;
const isIpv6Text = (text: string) => !text.includes("%") && tryParseIp(text)?.family === 6;

const portFlag = (flag: string) =>
  z
    .string()
    .regex(/^\d+$/, { error: `${flag}: expected a port number 1..65535` })
    .transform(Number)
    .refine((n) => n >= 1 && n <= 65535, { error: `${flag}: expected a port number 1..65535` });

/**
 * An address flag peers use to reach this node: of the right family, and one their lease
 * validation accepts (record-validate.ts), so the agent refuses it at start instead of
 * announcing a lease nobody routes.
 */
const publicIpFlag = (flag: string, ofFamily: (s: string) => boolean, expected: string) =>
  z
    .string()
    .superRefine((s, ctx) => {
      if (!ofFamily(s)) ctx.addIssue({ code: "custom", message: `${flag}: expected ${expected}` });
      else {
        const why = publicIpTextProblem(s);
        if (why) ctx.addIssue({ code: "custom", message: `${flag}: ${s} is ${why}; peers would refuse a lease naming it` });
      }
    })
    .optional();

const agentFlagSchema = z.object({
  "net-conf": z.string().min(1).default("/etc/weft/net-conf.json"),
  "node-name": z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, { error: "--node-name: expected 1-63 letters, digits, '.', '_' or '-'" })
    .optional(),
  iface: z.string().regex(/^[^\s/]{1,15}$/, { error: "--iface: expected an interface name (at most 15 characters)" }).optional(),
  "public-ip": publicIpFlag("--public-ip", isIpv4Text, "an IPv4 address like 192.0.2.10"),
  "public-ipv6": publicIpFlag("--public-ipv6", isIpv6Text, "an IPv6 address like 2001:db8::10 (no zone)"),
  "gossip-port": portFlag("--gossip-port").default(7946),
  join: z.string().default(""),
  "key-file": z.string().min(1).optional(),
  insecure: z.boolean().default(false),
  "gossip-legacy-wire": z.enum(["off", "accept", "send"], { error: "--gossip-legacy-wire: expected off, accept or send" }).default("off"),
  "state-dir": z.string().min(1).default("/var/lib/weft"),
  "subnet-file": z.string().min(1).default("/run/flannel/subnet.env"),
  "api-listen": z.string().default("127.0.0.1:7947"),
  bridge: z.string().regex(/^[^\s/]{1,15}$/, { error: "--bridge: expected an interface name or none" }).default("cni0"),
  "ip-masq": z.boolean().default(false),
  "log-level": z.enum(["debug", "info", "warn", "error"], { error: "--log-level: expected debug, info, warn or error" }).default("info"),
  "log-level-file": z.string().min(1, { error: "--log-level-file: expected a file path" }).optional(),
  "log-format": z.enum(["text", "json"], { error: "--log-format: expected text or json" }).default("text"),
  "release-on-stop": z.boolean().default(false),
});

/** The `parseArgs` option table for `weft agent` (also used to map WEFT_* env vars). */
export const agentFlagOptions = {
  "net-conf": { type: "string" },
  "node-name": { type: "string" },
  iface: { type: "string" },
  "public-ip": { type: "string" },
  "public-ipv6": { type: "string" },
  "gossip-port": { type: "string" },
  join: { type: "string" },
  "key-file": { type: "string" },
  insecure: { type: "boolean" },
  "gossip-legacy-wire": { type: "string" },
  "state-dir": { type: "string" },
  "subnet-file": { type: "string" },
  "api-listen": { type: "string" },
  bridge: { type: "string" },
  "ip-masq": { type: "boolean" },
  "log-level": { type: "string" },
  "log-level-file": { type: "string" },
  "log-format": { type: "string" },
  "release-on-stop": { type: "boolean" },
} as const;

const envName = (flag: string) => `WEFT_${flag.toUpperCase().replaceAll("-", "_")}`;

function envBool(name: string, text: string): boolean {
  if (/^(1|true|yes|on)$/i.test(text)) return true;
  if (/^(0|false|no|off|)$/i.test(text)) return false;
  throw new ConfigError(`${name}: expected true or false, got ${JSON.stringify(text)}`);
}

/**
 * Merges parsed flags over WEFT_* environment variables (flag wins) and validates them.
 * `values` is parseArgs' output for {@link agentFlagOptions}.
 */
export function resolveAgentFlags(values: Record<string, string | boolean | undefined>, env: Record<string, string | undefined> = process.env): AgentFlags {
  const merged: Record<string, string | boolean> = {};
  const fromEnv = new Set<string>();
  for (const [flag, opt] of Object.entries(agentFlagOptions)) {
    const v = values[flag];
    if (v !== undefined) merged[flag] = v;
    else {
      const e = env[envName(flag)];
      if (e !== undefined) {
        merged[flag] = opt.type === "boolean" ? envBool(envName(flag), e) : e;
        fromEnv.add(flag);
      }
    }
  }
  // An error names the flag, and the variable when the value came from the environment (weft.env).
  const label = (flag: string) => (fromEnv.has(flag) ? `--${flag} (set by ${envName(flag)})` : `--${flag}`);
  const r = agentFlagSchema.safeParse(merged);
  if (!r.success) {
    const i = r.error.issues[0]!;
    const flag = String(i.path[0]);
    const msg = i.message.startsWith(`--${flag}`) ? i.message.slice(flag.length + 2).replace(/^:\s*/, "") : i.message;
    throw new ConfigError(`${label(flag)}: ${msg}`);
  }
  const f = r.data;
  if (!f["key-file"] && !f.insecure) throw new ConfigError("--key-file: required (a file holding the cluster key from `weft keygen`); pass --insecure to run without encryption");
  const join = f.join
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => parseHostPort(s, label("join"), f["gossip-port"]));
  const apiListen = f["api-listen"] === "off" ? null : parseHostPort(f["api-listen"], label("api-listen"));
  return {
    netConfPath: f["net-conf"],
    nodeName: f["node-name"] ?? hostname().split(".")[0]!,
    ...(f.iface ? { iface: f.iface } : {}),
    ...(f["public-ip"] ? { publicIp: f["public-ip"] } : {}),
    ...(f["public-ipv6"] ? { publicIpv6: formatIp(parseIp(f["public-ipv6"])) } : {}),
    gossipPort: f["gossip-port"],
    join,
    ...(f["key-file"] ? { keyFile: f["key-file"] } : {}),
    insecure: f.insecure,
    gossipLegacyWire: f["gossip-legacy-wire"],
    stateDir: f["state-dir"],
    subnetFile: f["subnet-file"],
    apiListen,
    bridge: f.bridge === "none" ? null : f.bridge,
    ipMasq: f["ip-masq"],
    logLevel: f["log-level"],
    ...(f["log-level-file"] ? { logLevelFile: f["log-level-file"] } : {}),
    logFormat: f["log-format"],
    releaseOnStop: f["release-on-stop"],
  };
}
