/**
 * A VTEP MAC that survives agent restarts: peers' ARP and FDB entries keep pointing at
 * it, so a restart does not black-hole traffic until every peer re-learns it.
 */
import { createHash } from "node:crypto";
import { hex } from "../net/mac.ts";

/**
 * Derives a locally administered, unicast MAC from `seed` (the persisted node id).
 * @example stableMac("node-7f3a") // "3e:…" (bit 1 of the first byte set, bit 0 clear)
 */
export function stableMac(seed: string): string {
  if (typeof seed !== "string" || seed === "") throw new Error("Cannot derive MAC: seed is empty");
  const h = createHash("sha256").update("weft-vtep-mac\0").update(seed).digest();
  const b = new Uint8Array(h.subarray(0, 6));
  b[0] = (b[0]! & 0xfe) | 0x02; // unicast, locally administered
  return hex(b, ":");
}
