/** MAC addresses and the hex text they share with node ids: bytes ↔ text, and the usable-MAC rule. */

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/**
 * Lowercase hex of `b`, bytes separated by `sep`. Built with join (see u32ToIpv4): node
 * ids and MACs are kept per lease record.
 */
export function hex(b: Uint8Array, sep = ""): string {
  const parts = new Array<string>(b.length);
  for (let i = 0; i < b.length; i++) parts[i] = HEX[b[i]!]!;
  return parts.join(sep);
}

/** Bytes of "0a1b…" or "0a:1b:…" text that is already known to be well-formed hex. */
export function unhex(s: string): Uint8Array<ArrayBuffer> {
  const digits = s.includes(":") ? s.replaceAll(":", "") : s;
  const out = new Uint8Array(digits.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.substr(i * 2, 2), 16);
  return out;
}

/** Lowercase colon-separated hex; undefined for an empty address (the kernel reports none). */
export const formatMac = (bytes: Uint8Array): string | undefined => (bytes.length === 0 ? undefined : hex(bytes, ":"));

const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** 6 bytes of "aa:bb:cc:dd:ee:ff" (either case); throws naming the input. */
export function macBytes(text: string): Uint8Array<ArrayBuffer> {
  if (typeof text !== "string" || !MAC_RE.test(text)) throw new Error(`${JSON.stringify(text)} is not a MAC address (aa:bb:cc:dd:ee:ff)`);
  return unhex(text);
}

const LOWER_MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** True for a lowercase "aa:bb:cc:dd:ee:ff" unicast, non-zero MAC. */
export function isUsableMac(mac: string): boolean {
  if (!LOWER_MAC_RE.test(mac) || mac === "00:00:00:00:00:00") return false;
  return (parseInt(mac.slice(0, 2), 16) & 1) === 0;
}
