/**
 * The gossip address format: an IPv4 address or a bracketed IPv6 literal, then a port.
 * Members announce it and peers check it on every decoded alive message and push-pull
 * entry, so the IPv4 form is read in place, without slices or a regex.
 */
import { isIPv6 } from "node:net";
import { isDottedQuad } from "../net/ipv4.ts";

/** Longest gossip address accepted, characters. */
export const MAX_ADDR = 64;

/**
 * True for a gossip address: an IPv4 address or a bracketed IPv6 literal (no zone), then
 * ":port" (1..65535, no leading zero), at most MAX_ADDR characters. Never a host name:
 * every receiver would resolve whatever a peer announced, and a name cannot be compared
 * with the source of a packet.
 */
export function isGossipAddr(v: unknown): v is string {
  if (typeof v !== "string" || v.length < 6 || v.length > MAX_ADDR) return false;
  const colon = v.lastIndexOf(":");
  if (!isPort(v, colon + 1)) return false;
  // IPv4 is read in place (this runs for every decoded alive and push-pull entry).
  if (v.charCodeAt(0) !== 0x5b) return isDottedQuad(v, colon);
  const host = v.slice(1, colon - 1);
  return v.charCodeAt(colon - 1) === 0x5d && !host.includes("%") && isIPv6(host);
}

/** s[from..] is a port: 1..65535 in decimal, no leading zero. */
function isPort(s: string, from: number): boolean {
  const n = s.length - from;
  if (n < 1 || n > 5 || s.charCodeAt(from) === 0x30) return false;
  let port = 0;
  for (let i = from; i < s.length; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return false;
    port = port * 10 + d;
  }
  return port <= 65_535;
}
