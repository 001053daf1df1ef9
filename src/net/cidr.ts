/**
 * IPv4/IPv6 address and prefix math. Pure; addresses are bigints so one code path
 * serves both families. Parsing goes through ipaddr.js (it knows every textual form).
 */
import ipaddr from "ipaddr.js";

export type Family = 4 | 6;

export interface Ip {
  readonly family: Family;
  readonly addr: bigint;
}

export interface Cidr extends Ip {
  readonly prefix: number;
}

export const bitsOf = (family: Family): number => (family === 4 ? 32 : 128);

/** Parses a bare address, e.g. `10.244.1.0` or `fd00::1`. Throws naming the input. */
export function parseIp(text: string): Ip {
  if (typeof text !== "string" || text.trim() === "") throw new Error(`Cannot parse IP address ${JSON.stringify(text)}: value is empty`);
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    // parse() accepts shorthand like "10.1" as IPv4; insist on the canonical 4-part form.
    if (text.includes(":")) parsed = ipaddr.IPv6.parse(text);
    else if (ipaddr.IPv4.isValidFourPartDecimal(text)) parsed = ipaddr.IPv4.parse(text);
    else throw new Error("not a dotted-quad IPv4 or an IPv6 address");
  } catch (e) {
    throw new Error(`Cannot parse IP address ${JSON.stringify(text)}: ${(e as Error).message}`);
  }
  let addr = 0n;
  for (const b of parsed.toByteArray()) addr = (addr << 8n) | BigInt(b);
  return { family: parsed.kind() === "ipv4" ? 4 : 6, addr };
}

/** {@link parseIp}, or undefined for text that is not an address. */
export function tryParseIp(text: string): Ip | undefined {
  try {
    return parseIp(text);
  } catch {
    return undefined;
  }
}

/** Parses `a.b.c.d/len` or `x::/len`. Host bits are kept; use {@link networkOf} to mask. */
export function parseCidr(text: string): Cidr {
  if (typeof text !== "string") throw new Error(`Cannot parse CIDR ${JSON.stringify(text)}: not a string`);
  const slash = text.indexOf("/");
  if (slash < 0) throw new Error(`Cannot parse CIDR ${JSON.stringify(text)}: missing /prefix`);
  const ip = parseIp(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  const prefix = Number(lenText);
  if (!/^\d{1,3}$/.test(lenText) || prefix > bitsOf(ip.family)) {
    throw new Error(`Cannot parse CIDR ${JSON.stringify(text)}: prefix must be 0..${bitsOf(ip.family)}`);
  }
  return { ...ip, prefix };
}

export function formatIp(ip: Ip): string {
  const bytes: number[] = [];
  let a = ip.addr;
  const n = ip.family === 4 ? 4 : 16;
  for (let i = 0; i < n; i++) {
    bytes.unshift(Number(a & 0xffn));
    a >>= 8n;
  }
  return ipaddr.fromByteArray(bytes).toString();
}

export const formatCidr = (c: Cidr): string => `${formatIp(c)}/${c.prefix}`;

/** The address in network byte order: 4 bytes for IPv4, 16 for IPv6. */
export function ipToBytes(ip: Ip): Uint8Array {
  const n = ip.family === 4 ? 4 : 16;
  const out = new Uint8Array(n);
  let a = ip.addr;
  for (let i = n - 1; i >= 0; i--) {
    out[i] = Number(a & 0xffn);
    a >>= 8n;
  }
  return out;
}

/** The address of 4 (IPv4) or 16 (IPv6) network-order bytes; throws for another length. */
export function ipFromBytes(bytes: Uint8Array): Ip {
  if (bytes.length !== 4 && bytes.length !== 16) throw new Error(`IP address must be 4 or 16 bytes, got ${bytes.length}`);
  let addr = 0n;
  for (const b of bytes) addr = (addr << 8n) | BigInt(b);
  return { family: bytes.length === 4 ? 4 : 6, addr };
}

/** Number of addresses in a prefix of this length. */
export const sizeOf = (family: Family, prefix: number): bigint => 1n << BigInt(bitsOf(family) - prefix);

export function maskOf(family: Family, prefix: number): bigint {
  const bits = BigInt(bitsOf(family));
  return ((1n << bits) - 1n) ^ ((1n << (bits - BigInt(prefix))) - 1n);
}

/** The prefix with host bits cleared. */
export const networkOf = (c: Cidr): Cidr => ({ family: c.family, addr: c.addr & maskOf(c.family, c.prefix), prefix: c.prefix });

export const isNetworkAddress = (c: Cidr): boolean => networkOf(c).addr === c.addr;

/** True if `inner` (an address or a prefix) lies wholly inside `outer`. */
export function contains(outer: Cidr, inner: Ip | Cidr): boolean {
  if (outer.family !== inner.family) return false;
  const innerPrefix = "prefix" in inner ? inner.prefix : bitsOf(inner.family);
  if (innerPrefix < outer.prefix) return false;
  const m = maskOf(outer.family, outer.prefix);
  return (inner.addr & m) === (outer.addr & m);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return contains(a, b) || contains(b, a);
}

/** The n-th address inside a prefix (0 = network address). */
export function nthAddress(c: Cidr, n: bigint | number): Ip {
  const off = BigInt(n);
  if (off < 0n || off >= sizeOf(c.family, c.prefix)) throw new Error(`Cannot take address ${off} of ${formatCidr(c)}: out of range`);
  return { family: c.family, addr: networkOf(c).addr + off };
}

/**
 * Every prefix of length `prefix` whose network address lies in [min, max], in order.
 * `min` and `max` are network addresses of such prefixes (flannel's SubnetMin/SubnetMax).
 */
export function* subnetsBetween(family: Family, prefix: number, min: bigint, max: bigint): Generator<Cidr> {
  const step = sizeOf(family, prefix);
  for (let a = min; a <= max; a += step) yield { family, addr: a, prefix };
}

/** How many prefixes {@link subnetsBetween} yields. */
export function countBetween(family: Family, prefix: number, min: bigint, max: bigint): bigint {
  return max < min ? 0n : (max - min) / sizeOf(family, prefix) + 1n;
}

export const sameCidr = (a: Cidr, b: Cidr): boolean => a.family === b.family && a.addr === b.addr && a.prefix === b.prefix;

/** Normalises text to the canonical network form, e.g. "10.244.3.7/24" → "10.244.3.0/24". */
export const canonicalCidr = (text: string): string => formatCidr(networkOf(parseCidr(text)));
