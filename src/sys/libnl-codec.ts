/**
 * Pure input checks and byte conversions for the libnl wrapper: IPv4 text <-> bytes,
 * MAC text <-> bytes, interface names, and the error text format. No FFI here so the
 * rules are unit-tested without root or libnl.
 */
import { formatCidr, formatIp, networkOf, parseCidr, parseIp } from "../net/cidr.ts";

/** The error every Netlink method throws: "<operation> <object>: <detail>". */
export class NetlinkError extends Error {
  /** The operation and object, e.g. "add route 10.244.2.0/24 via 10.244.2.0 dev weft.1". */
  readonly op: string;
  /** libnl's positive error code (NLE_*), when libnl reported the failure. */
  readonly code: number | undefined;

  constructor(op: string, detail: string, code?: number, options?: { cause?: unknown }) {
    super(`${op}: ${detail}`, options);
    this.name = "NetlinkError";
    this.op = op;
    this.code = code;
  }
}

/** Checks an interface name as the kernel's dev_valid_name does; returns the detail or undefined. */
export function invalidIfName(name: unknown): string | undefined {
  if (typeof name !== "string" || name.length === 0) return "interface name is empty";
  if (Buffer.byteLength(name) > 15) return `interface name ${JSON.stringify(name)} is longer than 15 bytes`;
  if (name === "." || name === "..") return `interface name ${JSON.stringify(name)} is reserved`;
  if (/[\/:\s\0]/.test(name)) return `interface name ${JSON.stringify(name)} contains '/', ':', NUL or whitespace`;
  return undefined;
}

/** 4 network-order bytes of a dotted-quad IPv4 address; throws a plain Error naming the input. */
export function ipv4Bytes(text: string): Uint8Array {
  const ip = parseIp(text);
  if (ip.family !== 4) throw new Error(`${JSON.stringify(text)} is not an IPv4 address`);
  const n = Number(ip.addr);
  return new Uint8Array([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

/** IPv4 CIDR as bytes + prefix length; `network` insists that host bits are zero (routes). */
export function ipv4Cidr(text: string, { network = false } = {}): { bytes: Uint8Array; prefix: number } {
  const c = parseCidr(text);
  if (c.family !== 4) throw new Error(`${JSON.stringify(text)} is not an IPv4 prefix`);
  if (network && networkOf(c).addr !== c.addr) {
    throw new Error(`${JSON.stringify(text)} has host bits set (did you mean ${formatCidr(networkOf(c))}?)`);
  }
  return { bytes: ipv4Bytes(text.slice(0, text.indexOf("/"))), prefix: c.prefix };
}

/** Dotted quad from the first 4 bytes; an empty address (the kernel omits a default route's dst) is 0.0.0.0. */
export function formatIpv4(bytes: Uint8Array): string {
  if (bytes.length === 0) return "0.0.0.0";
  if (bytes.length !== 4) throw new Error(`IPv4 address must be 4 bytes, got ${bytes.length}`);
  return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
}

/** Text of a 4-byte (IPv4) or 16-byte (IPv6) address in network order, e.g. a VXLAN's local. */
export function formatIpBytes(bytes: Uint8Array): string {
  if (bytes.length === 4) return formatIpv4(bytes);
  if (bytes.length !== 16) throw new Error(`IP address must be 4 or 16 bytes, got ${bytes.length}`);
  let addr = 0n;
  for (const b of bytes) addr = (addr << 8n) | BigInt(b);
  return formatIp({ family: 6, addr });
}

const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** 6 bytes of "aa:bb:cc:dd:ee:ff" (either case); throws naming the input. */
export function macBytes(text: string): Uint8Array {
  if (typeof text !== "string" || !MAC_RE.test(text)) throw new Error(`${JSON.stringify(text)} is not a MAC address (aa:bb:cc:dd:ee:ff)`);
  return new Uint8Array(text.split(":").map((h) => parseInt(h, 16)));
}

/** Lowercase colon-separated hex; undefined for an empty address. */
export function formatMac(bytes: Uint8Array): string | undefined {
  if (bytes.length === 0) return undefined;
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(":");
}

/** Human text of a route for error messages, in `ip route` order. */
export function routeText(r: { dst: string; gateway?: string; dev?: string; onlink?: boolean; protocol?: number; type?: number; priority?: number }): string {
  return (
    (r.type !== undefined ? `${ROUTE_TYPES[r.type] ?? `type ${r.type}`} ` : "") +
    r.dst +
    (r.gateway !== undefined ? ` via ${r.gateway}` : "") +
    (r.dev !== undefined ? ` dev ${r.dev}` : "") +
    (r.onlink ? " onlink" : "") +
    (r.protocol !== undefined ? ` proto ${r.protocol}` : "") +
    (r.priority ? ` metric ${r.priority}` : "")
  );
}

/** iproute2's names of the non-unicast route types (rtnetlink RTN_*). */
const ROUTE_TYPES: Record<number, string> = { 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast", 6: "blackhole", 7: "unreachable", 8: "prohibit", 9: "throw", 10: "nat" };

/** Checks an integer field; returns the detail text or undefined. */
export function invalidInt(field: string, value: unknown, min: number, max: number): string | undefined {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    return `${field} must be an integer in ${min}..${max}, got ${JSON.stringify(value)}`;
  }
  return undefined;
}
