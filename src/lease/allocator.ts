/**
 * Pure allocation rules: where a node starts looking for a free subnet, how it probes
 * onward, who keeps a subnet two nodes claim, and the exhaustion error.
 */
import { countBetween, formatCidr, formatIp, sizeOf } from "../net/cidr.ts";
import { claimBeats } from "./record-order.ts";
import { type SubnetRange } from "./record-validate.ts";
import type { Lease } from "./types.ts";

/** FNV-1a (32 bit): stable across runtimes, good enough to spread names over a range. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * A claim cannot be made now, for a reason that may pass without a restart (a lease
 * expires, clocks get fixed): start() and a renumber report it and try again later.
 */
export class ClaimBlockedError extends Error {
  override name = "ClaimBlockedError";
}

export class SubnetExhaustedError extends ClaimBlockedError {
  override name = "SubnetExhaustedError";
}

/**
 * Most lease records heard from peers are dated further ahead of this node's clock than
 * the allowed skew: the clocks disagree (ours is probably behind). A claim made now
 * would not see the leases those records hold, and its early claimedAt would out-rank
 * them, so none is made until the clocks agree.
 */
export class ClockSkewError extends ClaimBlockedError {
  override name = "ClockSkewError";
}

export const subnetCount = (r: SubnetRange): bigint => countBetween(r.network.family, r.subnetLen, r.min, r.max);

export function exhaustedError(r: SubnetRange): SubnetExhaustedError {
  const f = r.network.family;
  return new SubnetExhaustedError(
    `subnet exhausted: all ${subnetCount(r)} subnets of ${formatCidr(r.network)} between ${formatIp({ family: f, addr: r.min })} and ${formatIp({ family: f, addr: r.max })} are leased`,
  );
}

/**
 * The first subnet, starting at a position given by a hash of `nodeName` and probing
 * onward (wrapping), for which `taken` is false. `attempt` shifts the start so a node
 * that lost a conflict does not walk straight into the same crowd again.
 * Throws {@link SubnetExhaustedError} if every subnet is taken.
 */
export function pickSubnet(nodeName: string, r: SubnetRange, taken: (subnet: string) => boolean, attempt = 0): string {
  const count = subnetCount(r);
  const step = sizeOf(r.network.family, r.subnetLen);
  const start = BigInt(fnv1a(attempt === 0 ? nodeName : `${nodeName}#${attempt}`)) % count;
  for (let i = 0n; i < count; i++) {
    const idx = (start + i) % count;
    const subnet = formatCidr({ family: r.network.family, addr: r.min + idx * step, prefix: r.subnetLen });
    if (!taken(subnet)) return subnet;
  }
  throw exhaustedError(r);
}

/**
 * The claim that keeps a contested subnet (earliest claimedAt, then node name), among
 * those `counts` accepts (all by default: callers filter without building a list).
 */
export function claimWinner(claims: readonly Lease[], counts: (c: Lease) => boolean = () => true): Lease | undefined {
  let best: Lease | undefined;
  for (const c of claims) if (counts(c) && (!best || claimBeats(c, best))) best = c;
  return best;
}
