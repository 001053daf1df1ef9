/**
 * IPv4 addresses as unsigned 32-bit numbers and as bytes, for the paths that run per
 * record or per packet (lease records, the udp packet loop, netlink attributes), where
 * the bigint math of cidr.ts would cost too much. Text is dotted decimal without leading
 * zeros, the form formatIp and the kernel print.
 */
import { formatIp, ipFromBytes, parseIp } from "./cidr.ts";

/** s[0, end) is an IPv4 address in dotted decimal (octets 0..255, no leading zeros). Reads in place. */
export function isDottedQuad(s: string, end = s.length): boolean {
  let octets = 0;
  let i = 0;
  while (octets < 4) {
    const start = i;
    let octet = 0;
    while (i < end) {
      const d = s.charCodeAt(i) - 0x30;
      if (d < 0 || d > 9) break;
      octet = octet * 10 + d;
      i++;
    }
    const len = i - start;
    if (len === 0 || len > 3 || octet > 255 || (len > 1 && s.charCodeAt(start) === 0x30)) return false;
    if (++octets < 4) {
      if (s.charCodeAt(i) !== 0x2e) return false;
      i++;
    }
  }
  return i === end;
}

/** The address as an unsigned 32-bit number, or -1 when `text` is not a dotted quad. */
export function ipv4ToU32(text: string): number {
  if (!isDottedQuad(text)) return -1;
  let a = 0;
  let octet = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) {
      a = a * 256 + octet;
      octet = 0;
    } else octet = octet * 10 + (c - 0x30);
  }
  return a * 256 + octet;
}

/** ipv4ToU32 that throws "Cannot parse IPv4 address …" instead of returning -1. */
export function parseIpv4U32(text: string): number {
  const a = typeof text === "string" ? ipv4ToU32(text) : -1;
  if (a < 0) throw new Error(`Cannot parse IPv4 address ${JSON.stringify(text)}: expected a dotted quad`);
  return a;
}

/**
 * Dotted text of an unsigned 32-bit address. Built with join, not +=: a string grown by
 * concatenation stays a chain of rope cells until something reads it whole, and lease
 * tables keep these strings for every record.
 */
export const u32ToIpv4 = (a: number): string => [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].join(".");

/** The netmask of a prefix length as an unsigned 32-bit number (0 → 0, 24 → 0xffffff00). */
export const ipv4Mask = (prefix: number): number => (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);

/** 4 network-order bytes of an IPv4 address in any form parseIp accepts; throws a plain Error naming the input. */
export function ipv4Bytes(text: string): Uint8Array {
  const ip = parseIp(text);
  if (ip.family !== 4) throw new Error(`${JSON.stringify(text)} is not an IPv4 address`);
  const n = Number(ip.addr);
  return new Uint8Array([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

/** Dotted quad of 4 network-order bytes; an empty address (the kernel omits a default route's dst) is 0.0.0.0. */
export function formatIpv4Bytes(bytes: Uint8Array): string {
  if (bytes.length === 0) return "0.0.0.0";
  if (bytes.length !== 4) throw new Error(`IPv4 address must be 4 bytes, got ${bytes.length}`);
  return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
}

/** Text of a 4-byte (IPv4) or 16-byte (IPv6) address in network order, e.g. a VXLAN's local. */
export function formatIpBytes(bytes: Uint8Array): string {
  return bytes.length === 4 ? formatIpv4Bytes(bytes) : formatIp(ipFromBytes(bytes));
}
