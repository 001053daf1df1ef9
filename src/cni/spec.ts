/**
 * The CNI contract as data: spec versions, error codes, the plugin's network
 * configuration (zod), the CNI_* environment per command, and the result shape weft
 * builds before it is written out for one spec version (result.ts).
 *
 * Spec versions: 1.1.0 (STATUS, GC), 1.0.0, and the 0.3.0/0.3.1/0.4.0 results runtimes
 * still ask for. 0.1.0/0.2.0 use a different result type and are refused (code 1).
 */
import { z } from "zod";
import { invalidIfName } from "../sys/libnl-codec.ts";

export const SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const LATEST_VERSION: CniVersion = "1.1.0";

export const isSupportedVersion = (v: unknown): v is CniVersion => typeof v === "string" && (SUPPORTED_VERSIONS as readonly string[]).includes(v);

/**
 * Error codes: 1–11 and 50–51 are the spec's well-known codes; 100+ are weft's own
 * (documented in docs/cni.md).
 */
export const CniCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IoFailure: 5,
  DecodeFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  NotAvailable: 50,
  LimitedConnectivity: 51,
  /** The interface or the allocation this ADD would create exists already. */
  AlreadyExists: 100,
  /** A kernel operation failed (the netlink error is in details). */
  Dataplane: 101,
  /** CHECK found the attachment different from prevResult. */
  CheckFailed: 102,
  /** Anything unexpected (libcni's ErrInternal). */
  Internal: 999,
} as const;

/** A failure the plugin reports as the spec's error JSON. */
export class CniError extends Error {
  readonly code: number;
  readonly details: string | undefined;
  constructor(code: number, msg: string, details?: string, options?: { cause?: unknown }) {
    super(msg, options);
    this.name = "CniError";
    this.code = code;
    this.details = details;
  }
}

export const COMMANDS = ["ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC"] as const;
export type CniCommand = (typeof COMMANDS)[number];

/** The CNI_* variables, validated for one command. */
export interface CniEnv {
  command: CniCommand;
  containerId?: string;
  netns?: string;
  ifname?: string;
  args?: string;
  path?: string;
}

/** Container IDs and network names: what the spec (and libcni) allow. */
const ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$/;

const REQUIRED: Record<CniCommand, (keyof CniEnv)[]> = {
  ADD: ["containerId", "netns", "ifname"],
  CHECK: ["containerId", "netns", "ifname"],
  DEL: ["containerId", "ifname"],
  VERSION: [],
  STATUS: [],
  GC: [],
};

const USED: Record<CniCommand, (keyof CniEnv)[]> = {
  ADD: ["containerId", "netns", "ifname", "args", "path"],
  CHECK: ["containerId", "netns", "ifname", "args", "path"],
  DEL: ["containerId", "netns", "ifname", "args", "path"],
  VERSION: [],
  STATUS: ["path"],
  GC: ["path"],
};

const ENV_NAME: Record<Exclude<keyof CniEnv, "command">, string> = {
  containerId: "CNI_CONTAINERID",
  netns: "CNI_NETNS",
  ifname: "CNI_IFNAME",
  args: "CNI_ARGS",
  path: "CNI_PATH",
};

/** Reads and checks the CNI_* variables; throws a code-4 {@link CniError} naming each bad one. */
export function parseEnv(env: Record<string, string | undefined>): CniEnv {
  const command = env.CNI_COMMAND ?? "";
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw new CniError(CniCode.InvalidEnvironment, `CNI_COMMAND: unknown command ${JSON.stringify(command)}`, `expected one of ${COMMANDS.join(", ")}`);
  }
  const out: CniEnv = { command: command as CniCommand };
  // Only what the command uses is read: libcni validates a config by calling VERSION
  // with placeholder values (CNI_NETNS=dummy) that mean nothing there.
  const used = USED[out.command];
  for (const [key, name] of Object.entries(ENV_NAME) as [Exclude<keyof CniEnv, "command">, string][]) {
    const v = env[name];
    if (v !== undefined && v !== "" && used.includes(key)) out[key] = v;
  }
  const problems: string[] = [];
  const missing = REQUIRED[out.command].filter((k) => out[k] === undefined).map((k) => ENV_NAME[k as Exclude<keyof CniEnv, "command">]);
  if (missing.length) problems.push(`missing ${missing.join(", ")}`);
  if (out.containerId !== undefined && !ID_RE.test(out.containerId)) {
    problems.push(`CNI_CONTAINERID ${JSON.stringify(out.containerId)} must start with a letter or digit and contain only letters, digits, '_', '.', '-'`);
  }
  if (out.ifname !== undefined) {
    const bad = invalidIfName(out.ifname);
    if (bad) problems.push(`CNI_IFNAME: ${bad}`);
  }
  if (out.netns !== undefined && !out.netns.startsWith("/")) problems.push(`CNI_NETNS ${JSON.stringify(out.netns)} must be an absolute path`);
  if (problems.length) throw new CniError(CniCode.InvalidEnvironment, `invalid CNI environment: ${problems.join("; ")}`);
  return out;
}

const absolutePath = (what: string) => z.string().refine((p) => p.startsWith("/") && !p.includes("\0"), { message: `${what} must be an absolute path` });

const attachment = z.object({ containerID: z.string().min(1), ifname: z.string().min(1) }).loose();

const dns = z
  .object({
    nameservers: z.array(z.string()).optional(),
    domain: z.string().optional(),
    search: z.array(z.string()).optional(),
    options: z.array(z.string()).optional(),
  })
  .strict();

/** A previous result as runtimes send it back (any supported version's shape). */
const prevResult = z
  .object({
    cniVersion: z.string().optional(),
    interfaces: z.array(z.object({ name: z.string(), mac: z.string().optional(), mtu: z.number().optional(), sandbox: z.string().optional() }).loose()).optional(),
    ips: z.array(z.object({ address: z.string(), gateway: z.string().optional(), interface: z.number().int().min(0).optional(), version: z.string().optional() }).loose()).optional(),
    routes: z.array(z.object({ dst: z.string(), gw: z.string().optional() }).loose()).optional(),
    dns: z.record(z.string(), z.unknown()).optional(),
  })
  .loose();

const KNOWN_KEYS = {
  cniVersion: z.string(),
  // A 1.1 list-level key; runtimes copy it into each plugin config only by accident.
  cniVersions: z.array(z.string()).optional(),
  name: z.string().regex(ID_RE, "must start with a letter or digit and contain only letters, digits, '_', '.', '-'"),
  type: z.string().min(1),
  args: z.record(z.string(), z.unknown()).optional(),
  runtimeConfig: z.record(z.string(), z.unknown()).optional(),
  capabilities: z.record(z.string(), z.boolean()).optional(),
  dns: dns.optional(),
  prevResult: prevResult.optional(),
  disableCheck: z.boolean().optional(),
  disableGC: z.boolean().optional(),
  subnetFile: absolutePath("subnetFile").optional(),
  dataDir: absolutePath("dataDir").optional(),
  bridge: z
    .string()
    .refine((n) => invalidIfName(n) === undefined, { message: "must be a valid interface name (1-15 bytes, no '/', ':' or whitespace)" })
    .optional(),
  mtu: z.number().int().min(68).max(65535).optional(),
  hairpinMode: z.boolean().optional(),
  "cni.dev/valid-attachments": z.array(attachment).optional(),
  // libcni sends the same list under this older name too.
  "cni.dev/attachments": z.array(attachment).optional(),
} as const;

const netConfSchema = z.object(KNOWN_KEYS);

/** Keys a runtime may add that weft does not use: accepted, ignored. */
const isRuntimeKey = (k: string) => k.startsWith("cni.dev/");

/** Keys weft refuses with a reason, because ignoring them would silently do the wrong thing. */
const REFUSED: Record<string, string> = {
  ipam: "weft allocates addresses itself from the subnet file (remove the ipam section)",
  ipMasq: "masquerading is the agent's job (weft agent --ip-masq), not the plugin's",
  isGateway: "the bridge always carries the subnet's gateway address",
  isDefaultGateway: "pods always get a default route via the gateway",
};

export interface NetConf {
  cniVersion: CniVersion;
  name: string;
  type: string;
  subnetFile: string;
  dataDir: string;
  bridge: string;
  /** From the config; undefined means FLANNEL_MTU. */
  mtu: number | undefined;
  hairpinMode: boolean;
  dns: z.infer<typeof dns> | undefined;
  prevResult: z.infer<typeof prevResult> | undefined;
  validAttachments: { containerID: string; ifname: string }[] | undefined;
}

export type PrevResult = z.infer<typeof prevResult>;

export const DEFAULTS = {
  subnetFile: "/run/flannel/subnet.env",
  dataDir: "/var/lib/cni/networks",
  bridge: "cni0",
  hairpinMode: true,
} as const;

/**
 * Decodes stdin into the plugin's config. Errors: 6 (not JSON / not an object),
 * 1 (cniVersion not supported), 2 (a key weft does not know or refuses, with its
 * value), 7 (a field of the wrong form, named).
 */
export function parseNetConf(text: string): NetConf {
  if (text.trim() === "") throw new CniError(CniCode.DecodeFailure, "no network configuration on stdin", "the runtime must pass the network configuration as JSON on stdin");
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CniError(CniCode.DecodeFailure, "decode network configuration: not valid JSON", (e as Error).message);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new CniError(CniCode.DecodeFailure, "decode network configuration: expected a JSON object");
  const obj = raw as Record<string, unknown>;
  if (obj.cniVersion === undefined) throw new CniError(CniCode.InvalidConfig, "invalid network configuration: cniVersion is missing");
  if (!isSupportedVersion(obj.cniVersion)) {
    throw new CniError(CniCode.IncompatibleVersion, `incompatible CNI version ${JSON.stringify(obj.cniVersion)}`, `config is ${JSON.stringify(obj.cniVersion)}, weft supports ${JSON.stringify(SUPPORTED_VERSIONS)}`);
  }
  for (const [k, v] of Object.entries(obj)) {
    if (k in KNOWN_KEYS || isRuntimeKey(k)) continue;
    const shown = `${JSON.stringify(k)}: ${JSON.stringify(v)}`;
    const reason = REFUSED[k] ?? `not a weft setting (known: ${Object.keys(KNOWN_KEYS).filter((x) => !x.startsWith("cni.dev/")).join(", ")})`;
    throw new CniError(CniCode.UnsupportedField, `unsupported field ${shown}`, reason);
  }
  const r = netConfSchema.safeParse(obj);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const field = issue.path.map(String).join(".") || "(config)";
    throw new CniError(CniCode.InvalidConfig, `invalid network configuration: ${field}: ${issue.message}`);
  }
  const c = r.data;
  return {
    cniVersion: obj.cniVersion,
    name: c.name,
    type: c.type,
    subnetFile: c.subnetFile ?? DEFAULTS.subnetFile,
    dataDir: c.dataDir ?? DEFAULTS.dataDir,
    bridge: c.bridge ?? DEFAULTS.bridge,
    mtu: c.mtu,
    hairpinMode: c.hairpinMode ?? DEFAULTS.hairpinMode,
    dns: c.dns,
    prevResult: c.prevResult,
    validAttachments: c["cni.dev/valid-attachments"] ?? c["cni.dev/attachments"],
  };
}

/** One interface in a result; `sandbox` marks the one inside the container. */
export interface ResultInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
}

export interface ResultIp {
  /** Address with prefix, e.g. "10.244.3.5/24". */
  address: string;
  gateway?: string;
  /** Index into interfaces. */
  interface?: number;
}

export interface ResultRoute {
  dst: string;
  gw?: string;
}

/** A result before it is written for a spec version. */
export interface CniResult {
  interfaces: ResultInterface[];
  ips: ResultIp[];
  routes: ResultRoute[];
  dns?: Record<string, unknown>;
}
