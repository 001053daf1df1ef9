/**
 * `--ip-masq`: flannel's masquerade rules as nftables rules in tables weft owns
 * (`table ip weft` for IPv4, `table ip6 weft` for IPv6, chain `postrouting`, nat hook at
 * srcnat priority), through libnftables.
 *
 * Rules, in flannel's order (pkg/trafficmngr MasqRules / MasqIP6Rules), for network N and
 * this node's S (for IPv6: `ip6` and the multicast prefix ff00::/8):
 *   meta mark & 0x4000 == 0x4000 return     kube-proxy already masquerades these
 *   ip saddr N ip daddr N return               no NAT inside the pod network
 *   ip saddr != N ip daddr S return            outside → our pods keeps its source
 *   ip saddr N ip daddr != 224.0.0.0/4 masquerade fully-random    pods → outside
 *   ip saddr != N ip daddr N masquerade fully-random              host → other nodes' pods
 * ensureIpMasq reads the chain back (JSON), renders each rule to the same canonical text
 * it writes, and rewrites only on a difference, as one transaction (flush + add), so
 * there is never a moment without rules.
 */
import { libnftablesRunner, nftablesAvailable, type NftRunner } from "../../ffi/libnftables.ts";
import { canonicalCidr, contains, parseCidr } from "../net/cidr.ts";

export const TABLE = "weft";
export const CHAIN = "postrouting";
/** kube-proxy's masquerade mark (flannel skips packets carrying it to avoid double NAT). */
export const KUBE_PROXY_MARK = 0x4000;
const CHAIN_SPEC = "type nat hook postrouting priority srcnat; policy accept;";
/** How the chain looks when read back (prio srcnat = 100). */
const CHAIN_READBACK = "nat postrouting 100 accept";
/** Set once the kernel refused `fully-random`, so later passes compare against plain rules. */
let fullyRandomRefused = false;

export type IpFamily = 4 | 6;

export interface IpMasqSpec {
  /** The whole pod network, e.g. "10.244.0.0/16" or "fd00:10:244::/56". */
  network: string;
  /** This node's lease of that family, e.g. "10.244.3.0/24". */
  subnet: string;
}

/** nftables' family keyword of a table of this address family (also the payload protocol in rules). */
const nftFamily = (f: IpFamily): "ip" | "ip6" => (f === 4 ? "ip" : "ip6");
const MULTICAST: Record<IpFamily, string> = { 4: "224.0.0.0/4", 6: "ff00::/8" };

export interface IpMasqState {
  /** "type hook priority policy" of the chain as found. */
  chain: string;
  /** Each rule as canonical nft text (unknown expressions appear as JSON). */
  rules: string[];
  /** The spec these rules implement, or null when they are not exactly weft's rules. */
  spec: IpMasqSpec | null;
}

export interface IpMasqOptions {
  nft?: NftRunner;
  /** Use `masquerade fully-random` (iptables --random-fully); falls back if the kernel refuses. */
  fullyRandom?: boolean;
}

/** The rules for a spec, as nft text (pure); the family is the spec's. */
export function ipMasqRules({ network, subnet }: IpMasqSpec, fullyRandom = true): string[] {
  const masq = fullyRandom ? "masquerade fully-random" : "masquerade";
  const fam = familyOf(network);
  const ip = nftFamily(fam);
  return [
    `meta mark & 0x${KUBE_PROXY_MARK.toString(16)} == 0x${KUBE_PROXY_MARK.toString(16)} return`,
    `${ip} saddr ${network} ${ip} daddr ${network} return`,
    `${ip} saddr != ${network} ${ip} daddr ${subnet} return`,
    `${ip} saddr ${network} ${ip} daddr != ${MULTICAST[fam]} ${masq}`,
    `${ip} saddr != ${network} ${ip} daddr ${network} ${masq}`,
  ];
}

const familyOf = (cidr: string): IpFamily => (cidr.includes(":") ? 6 : 4);

/** Validates and canonicalises a spec (either family, both fields the same); errors name the field. */
export function normaliseSpec(spec: IpMasqSpec): IpMasqSpec {
  const field = (name: "network" | "subnet") => {
    const v = spec?.[name];
    try {
      parseCidr(String(v));
    } catch (e) {
      throw new Error(`ip-masq ${name}: expected a CIDR like 10.244.0.0/16 or fd00:10:244::/56, got ${JSON.stringify(v)} (${(e as Error).message})`);
    }
    return canonicalCidr(String(v));
  };
  const network = field("network");
  const subnet = field("subnet");
  if (!contains(parseCidr(network), parseCidr(subnet))) throw new Error(`ip-masq subnet: ${subnet} is not inside network ${network}`);
  return { network, subnet };
}

/**
 * Makes the masquerade chain match `spec`. Idempotent: returns changed=false when the
 * chain already holds exactly these rules.
 * @example ensureIpMasq({ network: "10.244.0.0/16", subnet: "10.244.3.0/24" })
 */
export function ensureIpMasq(spec: IpMasqSpec, { nft = libnftablesRunner, fullyRandom = !fullyRandomRefused }: IpMasqOptions = {}): { changed: boolean } {
  const want = normaliseSpec(spec);
  const family = familyOf(want.network);
  const have = readIpMasq({ nft, family });
  if (have && have.chain === CHAIN_READBACK && JSON.stringify(have.rules) === JSON.stringify(ipMasqRules(want, fullyRandom))) return { changed: false };
  try {
    nft.run(writeCommands(want, fullyRandom));
  } catch (e) {
    if (!fullyRandom) throw new Error(`apply ip-masq rules for ${want.network}: ${(e as Error).message}`, { cause: e });
    // Kernels without NF_NAT_RANGE_PROTO_RANDOM_FULLY refuse the flag: plain masquerade is flannel's fallback too.
    try {
      nft.run(writeCommands(want, false));
      fullyRandomRefused = true;
    } catch (e2) {
      throw new Error(`apply ip-masq rules for ${want.network}: ${(e2 as Error).message}`, { cause: e2 });
    }
  }
  return { changed: true };
}

function writeCommands(spec: IpMasqSpec, fullyRandom: boolean): string {
  const t = `${nftFamily(familyOf(spec.network))} ${TABLE}`;
  return [
    `add table ${t}`,
    `add chain ${t} ${CHAIN} { ${CHAIN_SPEC} }`,
    `flush chain ${t} ${CHAIN}`,
    ...ipMasqRules(spec, fullyRandom).map((r) => `add rule ${t} ${CHAIN} ${r}`),
  ].join("\n");
}

/**
 * Deletes weft's table of `family` (and so every rule in it). changed=false if it was not
 * there — including hosts without libnftables or without nf_tables in the kernel, so an
 * agent running without --ip-masq can call this on every reconcile without reporting errors.
 */
export function removeIpMasq({ nft = libnftablesRunner, family = 4 }: Pick<IpMasqOptions, "nft"> & { family?: IpFamily } = {}): { changed: boolean } {
  if (nft === libnftablesRunner && !nftablesAvailable()) return { changed: false };
  const t = `${nftFamily(family)} ${TABLE}`;
  let existed: boolean;
  try {
    existed = tableExists(nft, family);
  } catch (e) {
    if (/not supported/i.test((e as Error).message)) return { changed: false };
    throw new Error(`remove ip-masq table ${t}: ${(e as Error).message}`, { cause: e });
  }
  if (!existed) return { changed: false };
  try {
    // "add" first makes the delete valid even if the table vanished in between.
    nft.run(`add table ${t}\ndelete table ${t}`);
  } catch (e) {
    throw new Error(`remove ip-masq table ${t}: ${(e as Error).message}`, { cause: e });
  }
  return { changed: true };
}

function tableExists(nft: NftRunner, family: IpFamily): boolean {
  const out = nft.run(`list tables ${nftFamily(family)}`, { json: true });
  const items = (JSON.parse(out || '{"nftables":[]}') as { nftables: Record<string, { name?: string; family?: string }>[] }).nftables;
  return items.some((i) => i.table?.name === TABLE && (i.table.family === undefined || i.table.family === nftFamily(family)));
}

/** The masquerade chain of `family` as it is in the kernel, or null when there is none. */
export function readIpMasq({ nft = libnftablesRunner, family = 4 }: Pick<IpMasqOptions, "nft"> & { family?: IpFamily } = {}): IpMasqState | null {
  if (!tableExists(nft, family)) return null;
  const t = `${nftFamily(family)} ${TABLE}`;
  let out: string;
  try {
    out = nft.run(`list chain ${t} ${CHAIN}`, { json: true });
  } catch (e) {
    if (/No such file or directory/.test((e as Error).message)) return null;
    throw new Error(`read ip-masq chain ${t} ${CHAIN}: ${(e as Error).message}`, { cause: e });
  }
  return parseChainJson(out);
}

type Json = Record<string, unknown>;

/** Turns `nft -j list chain` output into an IpMasqState (pure; exported for tests). */
export function parseChainJson(text: string): IpMasqState | null {
  const items = (JSON.parse(text) as { nftables?: Json[] }).nftables ?? [];
  const chain = items.find((i) => i.chain)?.chain as Json | undefined;
  if (!chain) return null;
  const rules = items.filter((i) => i.rule).map((i) => renderRule(((i.rule as Json).expr as Json[]) ?? []));
  return { chain: `${chain.type} ${chain.hook} ${chain.prio} ${chain.policy}`, rules, spec: specOf(rules) };
}

function specOf(rules: string[]): IpMasqSpec | null {
  const m = /^ip6? saddr (\S+) ip6? daddr \1 return$/.exec(rules[1] ?? "");
  const s = /^ip6? saddr != (\S+) ip6? daddr (\S+) return$/.exec(rules[2] ?? "");
  if (!m || !s) return null;
  const spec = { network: m[1]!, subnet: s[2]! };
  const matches = (fr: boolean) => JSON.stringify(ipMasqRules(spec, fr)) === JSON.stringify(rules);
  return matches(true) || matches(false) ? spec : null;
}

function renderRule(exprs: Json[]): string {
  return exprs.map(renderExpr).join(" ");
}

function renderExpr(e: Json): string {
  if ("return" in e) return "return";
  if ("masquerade" in e) {
    const flags = (e.masquerade as { flags?: string | string[] } | null)?.flags;
    const list = flags === undefined ? [] : Array.isArray(flags) ? flags : [flags];
    return ["masquerade", ...list].join(" ");
  }
  if ("match" in e) {
    const m = e.match as { op?: string; left: unknown; right: unknown };
    const op = m.op ?? "==";
    const left = renderOperand(m.left);
    const right = renderOperand(m.right);
    if (left !== null && right !== null) {
      // nft prints "==" implicitly for payload matches; the mark test keeps it explicit.
      if (left.startsWith("meta mark &")) return `${left} ${op} ${right}`;
      return op === "==" ? `${left} ${right}` : `${left} ${op} ${right}`;
    }
  }
  return JSON.stringify(e);
}

function renderOperand(v: unknown): string | null {
  if (typeof v === "number") return `0x${v.toString(16)}`;
  if (typeof v === "string") return /^\d+\.\d+\.\d+\.\d+$/.test(v) ? `${v}/32` : v.includes(":") && !v.includes("/") ? `${v}/128` : v;
  if (!v || typeof v !== "object") return null;
  const o = v as Json;
  if (o.payload) {
    const p = o.payload as { protocol?: string; field?: string };
    return `${p.protocol} ${p.field}`;
  }
  if (o.prefix) {
    const p = o.prefix as { addr: string; len: number };
    return `${p.addr}/${p.len}`;
  }
  if (o.meta) return `meta ${(o.meta as { key: string }).key}`;
  if (Array.isArray(o["&"])) {
    const [a, b] = o["&"] as unknown[];
    const ra = renderOperand(a), rb = renderOperand(b);
    return ra && rb ? `${ra} & ${rb}` : null;
  }
  return null;
}
