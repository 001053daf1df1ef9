/**
 * Pure input checks for the libnl wrapper: interface names, integer fields, IPv4 and IPv6
 * addresses and prefixes as bytes, route text, and the error type (address conversions
 * are src/net). No FFI here, so the rules are unit-tested without root or libnl.
 */
import { type Family, formatCidr, ipToBytes, networkOf, parseCidr, parseIp } from "../net/cidr.ts";

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

/** An IPv4 or IPv6 address as network-order bytes (4 or 16) with its family. Throws naming the input. */
export function ipBytes(text: string): { family: Family; bytes: Uint8Array } {
  if (typeof text === "string" && text.includes("%")) throw new Error(`${JSON.stringify(text)}: zone indexes are not supported`);
  const ip = parseIp(text);
  return { family: ip.family, bytes: ipToBytes(ip) };
}

/** A CIDR of either family as bytes + prefix length; `network` insists that host bits are zero (routes). */
export function ipCidr(text: string, { network = false } = {}): { family: Family; bytes: Uint8Array; prefix: number } {
  const c = parseCidr(text);
  if (network && networkOf(c).addr !== c.addr) {
    throw new Error(`${JSON.stringify(text)} has host bits set (did you mean ${formatCidr(networkOf(c))}?)`);
  }
  return { family: c.family, bytes: ipToBytes(c), prefix: c.prefix };
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
