/**
 * The one typed Config: flannel's net-conf.json plus the agent flags of the contract
 * (../shared/spec/interface.md). Everything is validated with zod; every error names the
 * field or flag and the expected form, and the CLI turns a ConfigError into exit code 2.
 */
import { z } from "zod";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import {
  type Cidr,
  bitsOf,
  contains,
  formatCidr,
  formatIp,
  isNetworkAddress,
  maskOf,
  parseCidr,
  parseIp,
  sizeOf,
} from "./net/cidr.ts";

/** A configuration problem the operator must fix; the CLI exits 2 on it. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

export type BackendType = "vxlan" | "host-gw" | "udp" | "wireguard";

/**
 * wireguard, flannel's keys. `mode` "separate" (flannel's default) and "auto"/"ipv4" all
 * mean one IPv4 device today: "separate" would add an IPv6 device once weft has IPv6 pod
 * networks, "ipv6" is refused until then.
 */
export interface WireguardConf {
  type: "wireguard";
  /** UDP port of weft-wg (ListenPort). */
  listenPort: number;
  /** UDP port of the IPv6 device (ListenPortV6); validated, unused while weft is IPv4-only. */
  listenPortV6: number;
  /** Seconds between keepalives to each peer (PersistentKeepaliveInterval); 0 = off. */
  persistentKeepaliveInterval: number;
  mode: "separate" | "auto" | "ipv4";
  /** Pre-shared key, base64 of 32 bytes, the same on every node; mixed into every peer's handshake. */
  psk?: string;
  mtu?: number;
}

export type BackendConf =
  | { type: "vxlan"; vni: number; port: number; directRouting: boolean; mtu?: number }
  | { type: "host-gw" }
  | { type: "udp"; port: number; mtu?: number }
  | WireguardConf;

/** net-conf.json after defaults: every field present, addresses canonical. */
export interface NetConf {
  enableIPv4: boolean;
  /** Cluster pod network, e.g. "10.244.0.0/16". */
  network: string;
  /** Prefix length of each node's subnet. */
  subnetLen: number;
  /** First and last subnet (network addresses) the allocator may hand out. */
  subnetMin: string;
  subnetMax: string;
  enableIPv6: boolean;
  ipv6Network?: string;
  ipv6SubnetLen?: number;
  ipv6SubnetMin?: string;
  ipv6SubnetMax?: string;
  backend: BackendConf;
  /** Keys flannel knows but weft does not act on; reported by check-config and at start. */
  ignoredKeys: string[];
}

// Flannel keys that exist in real-world net-conf.json files but change nothing in weft.
const ignoredFlannelKeys = new Set(["EnableNFTables", "Nat", "Ipv6Nat"]);
const ignoredBackendKeys = new Set(["GBP", "Learning", "MacPrefix", "Name"]);

const vxlanBackend = z
  .object({
    Type: z.literal("vxlan"),
    VNI: z.number().int().min(0).max(16777215).default(1),
    Port: z.number().int().min(0).max(65535).default(0),
    DirectRouting: z.boolean().default(false),
    MTU: z.number().int().min(576).max(9000).optional(),
  })
  .catchall(z.unknown());
const hostGwBackend = z.object({ Type: z.literal("host-gw") }).catchall(z.unknown());
const udpBackend = z
  .object({
    Type: z.literal("udp"),
    Port: z.number().int().min(0).max(65535).default(0),
    MTU: z.number().int().min(576).max(9000).optional(),
  })
  .catchall(z.unknown());

const wireguardBackend = z
  .object({
    Type: z.literal("wireguard"),
    PSK: z.string().optional(),
    ListenPort: z.number().int().min(1).max(65535).default(51820),
    ListenPortV6: z.number().int().min(1).max(65535).default(51821),
    // Seconds (flannel multiplies its number by time.Second); WireGuard carries a u16.
    PersistentKeepaliveInterval: z.number().int().min(0).max(65535).default(0),
    Mode: z.enum(["separate", "auto", "ipv4", "ipv6"], { error: 'expected "separate", "auto", "ipv4" or "ipv6"' }).default("separate"),
    MTU: z.number().int().min(576).max(9000).optional(),
  })
  .catchall(z.unknown());

/** True for a WireGuard key as `wg genkey`/`wg genpsk` print it: canonical base64 of 32 bytes. */
export function isBase64Key(text: string): boolean {
  return /^[A-Za-z0-9+/]{43}=$/.test(text) && Buffer.from(text, "base64").toString("base64") === text;
}

const rawNetConf = z
  .object({
    Network: z.string().optional(),
    SubnetLen: z.number().int().min(0).max(32).optional(),
    SubnetMin: z.string().optional(),
    SubnetMax: z.string().optional(),
    EnableIPv4: z.boolean().default(true),
    EnableIPv6: z.boolean().default(false),
    IPv6Network: z.string().optional(),
    IPv6SubnetLen: z.number().int().min(0).max(128).optional(),
    IPv6SubnetMin: z.string().optional(),
    IPv6SubnetMax: z.string().optional(),
    Backend: z
      .discriminatedUnion("Type", [vxlanBackend, hostGwBackend, udpBackend, wireguardBackend], {
        error: (iss) =>
          iss.code === "invalid_union" ? 'expected Type "vxlan", "host-gw", "udp" or "wireguard"' : undefined,
      })
      .default({ Type: "vxlan", VNI: 1, Port: 0, DirectRouting: false }),
  })
  .catchall(z.unknown());

/** Formats the first zod issues as "Field.Sub: message" lines. */
export function describeZodError(err: z.ZodError, fieldName: (path: PropertyKey[]) => string): string {
  return err.issues.map((i) => `${fieldName(i.path) || "(root)"}: ${i.message}`).join("; ");
}

/** Validates a parsed net-conf.json object and fills flannel's defaults. */
export function parseNetConf(input: unknown): NetConf {
  const parsed = rawNetConf.safeParse(input);
  if (!parsed.success) {
    throw new ConfigError(`invalid net-conf: ${describeZodError(parsed.error, (p) => p.map(String).join("."))}`);
  }
  const raw = parsed.data;
  const ignoredKeys: string[] = [];
  const known = new Set(Object.keys(rawNetConf.shape));
  for (const k of Object.keys(raw)) {
    if (known.has(k)) continue;
    if (ignoredFlannelKeys.has(k)) ignoredKeys.push(k);
    else throw new ConfigError(`invalid net-conf: unknown key ${JSON.stringify(k)} (known: ${[...known].join(", ")})`);
  }
  const backendKnown = new Set(Object.keys(backendShapes[raw.Backend.Type]));
  for (const k of Object.keys(raw.Backend)) {
    if (backendKnown.has(k)) continue;
    if (ignoredBackendKeys.has(k)) ignoredKeys.push(`Backend.${k}`);
    else throw new ConfigError(`invalid net-conf: unknown key "Backend.${k}" for backend ${raw.Backend.Type}`);
  }

  if (raw.Backend.Type === "wireguard") checkWireguard(raw.Backend, raw.EnableIPv6);
  if (!raw.EnableIPv4 && !raw.EnableIPv6) throw new ConfigError("invalid net-conf: EnableIPv4: at least one of EnableIPv4 and EnableIPv6 must be true");
  if (raw.EnableIPv6) {
    // weft's dataplane programs IPv4 only today; refuse rather than half-work.
    throw new ConfigError("invalid net-conf: EnableIPv6: IPv6 pod networks are not supported by weft yet (set EnableIPv6 to false)");
  }
  if (raw.Network === undefined) throw new ConfigError('invalid net-conf: Network: required, expected a CIDR like "10.244.0.0/16"');

  const v4 = deriveRange({
    family: 4,
    network: raw.Network,
    subnetLen: raw.SubnetLen,
    subnetMin: raw.SubnetMin,
    subnetMax: raw.SubnetMax,
    names: { network: "Network", len: "SubnetLen", min: "SubnetMin", max: "SubnetMax" },
  });

  const b = raw.Backend;
  const backend: BackendConf =
    b.Type === "vxlan"
      ? { type: "vxlan", vni: b.VNI, port: b.Port || 8472, directRouting: b.DirectRouting, ...(b.MTU ? { mtu: b.MTU } : {}) }
      : b.Type === "udp"
        ? { type: "udp", port: b.Port || 8285, ...(b.MTU ? { mtu: b.MTU } : {}) }
        : b.Type === "wireguard"
          ? {
              type: "wireguard",
              listenPort: b.ListenPort,
              listenPortV6: b.ListenPortV6,
              persistentKeepaliveInterval: b.PersistentKeepaliveInterval,
              mode: b.Mode as WireguardConf["mode"], // "ipv6" was refused by checkWireguard
              ...(b.PSK ? { psk: b.PSK } : {}),
              ...(b.MTU ? { mtu: b.MTU } : {}),
            }
          : { type: "host-gw" };

  return {
    enableIPv4: raw.EnableIPv4,
    network: v4.network,
    subnetLen: v4.subnetLen,
    subnetMin: v4.subnetMin,
    subnetMax: v4.subnetMax,
    enableIPv6: raw.EnableIPv6,
    backend,
    ignoredKeys,
  };
}

const backendShapes = { vxlan: vxlanBackend.shape, "host-gw": hostGwBackend.shape, udp: udpBackend.shape, wireguard: wireguardBackend.shape };

/** What zod cannot say about a wireguard backend: the PSK's form and the modes weft cannot run yet. */
function checkWireguard(b: z.infer<typeof wireguardBackend>, enableIPv6: boolean): void {
  const fail = (msg: string) => new ConfigError(`invalid net-conf: ${msg}`);
  // The value itself is a secret: never echo it.
  if (b.PSK !== undefined && !isBase64Key(b.PSK)) throw fail("Backend.PSK: expected a base64 32-byte key as `wg genpsk` prints it (44 characters ending in =)");
  if (b.Mode === "ipv6") throw fail('Backend.Mode: "ipv6" needs IPv6 pod networks, which weft does not support yet; use "auto", "ipv4" or "separate"');
  if (enableIPv6 && b.Mode === "separate") throw fail('Backend.Mode: "separate" with EnableIPv6 needs a second, IPv6 WireGuard device, which weft does not support yet');
}

interface RangeInput {
  family: 4 | 6;
  network: string;
  subnetLen?: number;
  subnetMin?: string;
  subnetMax?: string;
  names: { network: string; len: string; min: string; max: string };
}

/** flannel's rules (pkg/subnet/config.go) for SubnetLen/SubnetMin/SubnetMax defaults and checks. */
function deriveRange(r: RangeInput) {
  const fail = (field: string, msg: string) => new ConfigError(`invalid net-conf: ${field}: ${msg}`);
  let net: Cidr;
  try {
    net = parseCidr(r.network);
  } catch (e) {
    throw fail(r.names.network, `${(e as Error).message}; expected a CIDR like "10.244.0.0/16"`);
  }
  if (net.family !== r.family) throw fail(r.names.network, `expected an IPv${r.family} CIDR, got ${r.network}`);
  if (!isNetworkAddress(net)) throw fail(r.names.network, `${r.network} has host bits set; expected ${formatCidr({ ...net, addr: net.addr & maskOf(net.family, net.prefix) })}`);
  const bits = bitsOf(r.family);
  const maxLen = r.family === 4 ? 30 : 126;
  let subnetLen = r.subnetLen;
  if (subnetLen !== undefined && subnetLen !== 0) {
    if (subnetLen > maxLen) throw fail(r.names.len, `must be at most ${maxLen} (each subnet needs room for a gateway and pods), got ${subnetLen}`);
    if (subnetLen < net.prefix + 2) throw fail(r.names.len, `must be at least ${net.prefix + 2} so that ${r.network} holds four subnets, got ${subnetLen}`);
  } else {
    const def = r.family === 4 ? 24 : 64;
    if (net.prefix > bits - 4) throw fail(r.names.network, `${r.network} is too small; the smallest useful network is /${bits - 4}`);
    subnetLen = net.prefix <= def - 2 ? def : net.prefix + 2;
  }
  const step = sizeOf(r.family, subnetLen);
  const netEnd = net.addr + sizeOf(r.family, net.prefix);
  const parseBound = (text: string | undefined, field: string, dflt: bigint): bigint => {
    if (text === undefined || text === "") return dflt;
    let ip;
    try {
      ip = parseIp(text);
    } catch (e) {
      throw fail(field, `${(e as Error).message}; expected an address like "10.244.1.0"`);
    }
    if (ip.family !== r.family || !contains(net, ip)) throw fail(field, `${text} is not inside Network ${r.network}`);
    if (ip.addr % step !== 0n) throw fail(field, `${text} is not on a /${subnetLen} boundary`);
    return ip.addr;
  };
  const min = parseBound(r.subnetMin, r.names.min, net.addr + step);
  const max = parseBound(r.subnetMax, r.names.max, netEnd - step);
  if (max < min) throw fail(r.names.max, `${formatIp({ family: r.family, addr: max })} is below ${r.names.min} ${formatIp({ family: r.family, addr: min })}`);
  return {
    network: formatCidr(net),
    subnetLen,
    subnetMin: formatIp({ family: r.family, addr: min }),
    subnetMax: formatIp({ family: r.family, addr: max }),
  };
}

/** Reads and validates a net-conf.json file. */
export function loadNetConf(path: string): NetConf {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError(`cannot read net-conf ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`invalid net-conf ${path}: not JSON: ${(e as Error).message}`);
  }
  try {
    return parseNetConf(json);
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(e.message.replace("invalid net-conf", `invalid net-conf ${path}`));
    throw e;
  }
}

// ---------------------------------------------------------------------------------------
// Agent flags

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
  logFormat: "text" | "json";
}

export function parseHostPort(text: string, what: string, defaultPort?: number): HostPort {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:]+)(?::(\d+))?$/.exec(text);
  if (!m || (m[2] === undefined && defaultPort === undefined)) throw new ConfigError(`${what}: expected HOST:PORT, got ${JSON.stringify(text)}`);
  const port = m[2] === undefined ? defaultPort! : Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError(`${what}: port must be 1..65535, got ${JSON.stringify(text)}`);
  return { host: m[1]!, port };
}

const portFlag = (flag: string) =>
  z
    .string()
    .regex(/^\d+$/, { error: `${flag}: expected a port number 1..65535` })
    .transform(Number)
    .refine((n) => n >= 1 && n <= 65535, { error: `${flag}: expected a port number 1..65535` });

const agentFlagSchema = z.object({
  "net-conf": z.string().min(1).default("/etc/weft/net-conf.json"),
  "node-name": z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, { error: "--node-name: expected 1-63 letters, digits, '.', '_' or '-'" })
    .optional(),
  iface: z.string().regex(/^[^\s/]{1,15}$/, { error: "--iface: expected an interface name (at most 15 characters)" }).optional(),
  "public-ip": z
    .string()
    .refine((s) => {
      try {
        return parseIp(s).family === 4;
      } catch {
        return false;
      }
    }, { error: "--public-ip: expected an IPv4 address like 192.0.2.10" })
    .optional(),
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
  "log-format": z.enum(["text", "json"], { error: "--log-format: expected text or json" }).default("text"),
});

/** The `parseArgs` option table for `weft agent` (also used to map WEFT_* env vars). */
export const agentFlagOptions = {
  "net-conf": { type: "string" },
  "node-name": { type: "string" },
  iface: { type: "string" },
  "public-ip": { type: "string" },
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
  "log-format": { type: "string" },
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
  for (const [flag, opt] of Object.entries(agentFlagOptions)) {
    const v = values[flag];
    if (v !== undefined) merged[flag] = v;
    else {
      const e = env[envName(flag)];
      if (e !== undefined) merged[flag] = opt.type === "boolean" ? envBool(envName(flag), e) : e;
    }
  }
  const r = agentFlagSchema.safeParse(merged);
  if (!r.success) {
    const i = r.error.issues[0]!;
    const flag = `--${String(i.path[0])}`;
    throw new ConfigError(i.message.startsWith("--") ? i.message : `${flag}: ${i.message}`);
  }
  const f = r.data;
  if (!f["key-file"] && !f.insecure) throw new ConfigError("--key-file: required (a file holding the cluster key from `weft keygen`); pass --insecure to run without encryption");
  const join = f.join
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => parseHostPort(s, "--join", f["gossip-port"]));
  const apiListen = f["api-listen"] === "off" ? null : parseHostPort(f["api-listen"], "--api-listen");
  return {
    netConfPath: f["net-conf"],
    nodeName: f["node-name"] ?? hostname().split(".")[0]!,
    ...(f.iface ? { iface: f.iface } : {}),
    ...(f["public-ip"] ? { publicIp: f["public-ip"] } : {}),
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
    logFormat: f["log-format"],
  };
}

/** Everything the agent needs, passed down as one object. */
export interface Config {
  agent: AgentFlags;
  net: NetConf;
}
