/**
 * flannel's net-conf.json: the zod schema of every key flannel documents, its defaults
 * (SubnetLen, SubnetMin/SubnetMax as flannel's pkg/subnet/config.go derives them) and
 * the checks zod cannot express. Unknown keys are errors that name the key; keys flannel
 * knows but weft does not act on are reported as ignored (README, "net-conf.json").
 */
import { z } from "zod";
import { readFileSync } from "node:fs";
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
import { ConfigError } from "./config.ts";

export type BackendType = "vxlan" | "host-gw" | "udp" | "wireguard";

/**
 * wireguard, flannel's keys and modes. `separate` (flannel's default): IPv4 pods over an
 * IPv4 device weft-wg (ListenPort, peers at their IPv4 public address) and IPv6 pods over
 * an IPv6 device weft-wg-v6 (ListenPortV6, peers at their IPv6 public address). `auto`,
 * `ipv4`, `ipv6`: one device weft-wg carrying both families, its peers reached at their
 * IPv4 address (`ipv4`), their IPv6 address (`ipv6`), or by flannel's preference
 * (`auto`, src/backend/wireguard-endpoint.ts).
 */
export interface WireguardConf {
  type: "wireguard";
  /** UDP port of weft-wg (ListenPort). */
  listenPort: number;
  /** UDP port of weft-wg-v6, the IPv6 device of `separate` mode (ListenPortV6). */
  listenPortV6: number;
  /** Seconds between keepalives to each peer (PersistentKeepaliveInterval); 0 = off. */
  persistentKeepaliveInterval: number;
  mode: "separate" | "auto" | "ipv4" | "ipv6";
  /** Pre-shared key, base64 of 32 bytes, the same on every node; mixed into every peer's handshake. */
  psk?: string;
  mtu?: number;
}

export type BackendConf =
  | { type: "vxlan"; vni: number; port: number; directRouting: boolean; mtu?: number }
  | { type: "host-gw" }
  | { type: "udp"; port: number; mtu?: number }
  | WireguardConf;

/**
 * net-conf.json after defaults, addresses canonical. The IPv4 fields are present exactly
 * when enableIPv4 is, the IPv6 fields exactly when enableIPv6 is (at least one is).
 */
export interface NetConf {
  enableIPv4: boolean;
  /** IPv4 cluster pod network, e.g. "10.244.0.0/16". */
  network?: string;
  /** Prefix length of each node's IPv4 subnet. */
  subnetLen?: number;
  /** First and last IPv4 subnet (network addresses) the allocator may hand out. */
  subnetMin?: string;
  subnetMax?: string;
  enableIPv6: boolean;
  /** IPv6 cluster pod network, e.g. "fd00:10:244::/56". */
  ipv6Network?: string;
  /** Prefix length of each node's IPv6 subnet (64 by default). */
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
  // Every unknown key at once, so one run of check-config shows all there is to fix.
  const unknown: string[] = [];
  const known = new Set(Object.keys(rawNetConf.shape));
  for (const k of Object.keys(raw)) {
    if (known.has(k)) continue;
    if (ignoredFlannelKeys.has(k)) ignoredKeys.push(k);
    else unknown.push(`unknown key ${JSON.stringify(k)} (known: ${[...known].join(", ")})`);
  }
  const backendKnown = new Set(Object.keys(backendShapes[raw.Backend.Type]));
  for (const k of Object.keys(raw.Backend)) {
    if (backendKnown.has(k)) continue;
    if (ignoredBackendKeys.has(k)) ignoredKeys.push(`Backend.${k}`);
    else unknown.push(`unknown key "Backend.${k}" for backend ${raw.Backend.Type} (known: ${[...backendKnown].join(", ")})`);
  }
  if (unknown.length > 0) throw new ConfigError(`invalid net-conf: ${unknown.join("; ")}`);

  if (raw.Backend.Type === "wireguard") checkWireguard(raw.Backend);
  if (!raw.EnableIPv4 && !raw.EnableIPv6) throw new ConfigError("invalid net-conf: EnableIPv4: at least one of EnableIPv4 and EnableIPv6 must be true");
  // flannel reads a family's keys only when the family is enabled; so does weft, and says so.
  const v4Keys = ["Network", "SubnetLen", "SubnetMin", "SubnetMax"] as const;
  const v6Keys = ["IPv6Network", "IPv6SubnetLen", "IPv6SubnetMin", "IPv6SubnetMax"] as const;
  for (const k of raw.EnableIPv4 ? [] : v4Keys) if (raw[k] !== undefined) ignoredKeys.push(`${k} (EnableIPv4 is false)`);
  for (const k of raw.EnableIPv6 ? [] : v6Keys) if (raw[k] !== undefined) ignoredKeys.push(`${k} (EnableIPv6 is false)`);

  let v4: ReturnType<typeof deriveRange> | undefined;
  if (raw.EnableIPv4) {
    if (raw.Network === undefined) throw new ConfigError('invalid net-conf: Network: required while EnableIPv4 is true, expected a CIDR like "10.244.0.0/16" (set EnableIPv4 to false for IPv6-only pods)');
    v4 = deriveRange({
      family: 4,
      network: raw.Network,
      subnetLen: raw.SubnetLen,
      subnetMin: raw.SubnetMin,
      subnetMax: raw.SubnetMax,
      names: { network: "Network", len: "SubnetLen", min: "SubnetMin", max: "SubnetMax" },
    });
  }
  let v6: ReturnType<typeof deriveRange> | undefined;
  if (raw.EnableIPv6) {
    if (raw.IPv6Network === undefined) throw new ConfigError('invalid net-conf: IPv6Network: required while EnableIPv6 is true, expected an IPv6 CIDR like "fd00:10:244::/56"');
    v6 = deriveRange({
      family: 6,
      network: raw.IPv6Network,
      subnetLen: raw.IPv6SubnetLen,
      subnetMin: raw.IPv6SubnetMin,
      subnetMax: raw.IPv6SubnetMax,
      names: { network: "IPv6Network", len: "IPv6SubnetLen", min: "IPv6SubnetMin", max: "IPv6SubnetMax" },
    });
  }

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
              mode: b.Mode,
              ...(b.PSK ? { psk: b.PSK } : {}),
              ...(b.MTU ? { mtu: b.MTU } : {}),
            }
          : { type: "host-gw" };

  return {
    enableIPv4: raw.EnableIPv4,
    ...(v4 ? { network: v4.network, subnetLen: v4.subnetLen, subnetMin: v4.subnetMin, subnetMax: v4.subnetMax } : {}),
    enableIPv6: raw.EnableIPv6,
    ...(v6 ? { ipv6Network: v6.network, ipv6SubnetLen: v6.subnetLen, ipv6SubnetMin: v6.subnetMin, ipv6SubnetMax: v6.subnetMax } : {}),
    backend,
    ignoredKeys,
  };
}

const backendShapes = { vxlan: vxlanBackend.shape, "host-gw": hostGwBackend.shape, udp: udpBackend.shape, wireguard: wireguardBackend.shape };

/** What zod cannot say about a wireguard backend: the PSK's form. */
function checkWireguard(b: z.infer<typeof wireguardBackend>): void {
  // The value itself is a secret: never echo it.
  if (b.PSK !== undefined && !isBase64Key(b.PSK)) throw new ConfigError("invalid net-conf: Backend.PSK: expected a base64 32-byte key as `wg genpsk` prints it (44 characters ending in =)");
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
  if (net.family !== r.family) throw fail(r.names.network, `expected an IPv${r.family} CIDR, got ${r.network}${r.family === 4 ? " (an IPv6 pod network goes in IPv6Network)" : " (an IPv4 pod network goes in Network)"}`);
  const special = r.family === 6 ? unusableIpv6Network(net) : undefined;
  if (special) throw fail(r.names.network, `${r.network} ${special}; use a unique local (fd00::/8) or global unicast prefix`);
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
      throw fail(field, `${(e as Error).message}; expected an address like ${r.family === 4 ? '"10.244.1.0"' : '"fd00:10:244:1::"'}`);
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

/** IPv6 prefixes a pod network must not overlap, with why. */
const SPECIAL_IPV6: [string, string][] = [
  ["::/127", "holds the unspecified and loopback addresses"],
  ["::ffff:0:0/96", "is IPv4-mapped"],
  ["fe80::/10", "is link-local (not routed off a link)"],
  ["ff00::/8", "is multicast"],
];

/** Why an IPv6 network cannot hold pods, or undefined. */
function unusableIpv6Network(net: Cidr): string | undefined {
  for (const [text, why] of SPECIAL_IPV6) {
    const c = parseCidr(text);
    if (contains(c, net) || contains(net, c)) return `${why} (overlaps ${text})`;
  }
  return undefined;
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
