/**
 * A VTEP MAC that survives agent restarts: peers' ARP and FDB entries keep pointing at
 * it, so a restart does not black-hole traffic until every peer re-learns it.
 */
import { createHash } from "node:crypto";

/**
 * Derives a locally administered, unicast MAC from `seed` (the persisted node id).
 * @example stableMac("node-7f3a") // "3e:…" (bit 1 of the first byte set, bit 0 clear)
 */
export function stableMac(seed: string): string {
  if (typeof seed !== "string" || seed === "") throw new Error("Cannot derive MAC: seed is empty");
  const h = createHash("sha256").update("weft-vtep-mac\0").update(seed).digest();
  const b = [...h.subarray(0, 6)];
  b[0] = (b[0]! & 0xfe) | 0x02; // unicast, locally administered
  return b.map((x) => x.toString(16).padStart(2, "0")).join(":");
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** True for a lowercase "aa:bb:cc:dd:ee:ff" unicast, non-zero MAC. */
export function isUsableMac(mac: string): boolean {
  if (!MAC_RE.test(mac) || mac === "00:00:00:00:00:00") return false;
  return (parseInt(mac.slice(0, 2), 16) & 1) === 0;
}
