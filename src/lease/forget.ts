/**
 * Retiring a dead node before its lease expires (`weft forget NODE`): any node may write
 * a tombstone for another node's record — its generation, the next version, `deleted` —
 * and it spreads like every record, so each node drops the lease and its routes, and
 * the subnet is free for new claims. Refused while the gossip layer sees the owner alive
 * or suspect: a running node would out-rank the tombstone anyway (it bumps its
 * generation above any record under its name), so forgetting it would only flap routes.
 *
 * A forgotten node that comes back starts with a new generation, so its record out-ranks
 * the tombstone; if its subnet was claimed meanwhile, the claim order (earliest claim,
 * then name) decides as for any conflict and the loser renumbers: never two owners.
 */
import type { Member } from "../gossip/types.ts";
import type { Lease } from "./types.ts";

export type ForgetOutcome =
  /** The tombstone to publish. */
  | { ok: true; tombstone: Lease }
  /** 404: no lease under that name; 409: it may not be forgotten now. */
  | { ok: false; status: 404 | 409; reason: string };

/**
 * The tombstone that forgets `name`'s record `rec`, or why not. `member` is the owner as
 * the gossip layer knows it (undefined: not a member, e.g. reaped after its death).
 */
export function forgetTombstone(o: { self: string; name: string; rec: Lease | undefined; member: Member | undefined; now: number }): ForgetOutcome {
  const { self, name, rec, member } = o;
  if (name === self) return { ok: false, status: 409, reason: `node ${name} is this node; to give its subnet back, stop its agent with --release-on-stop` };
  if (!rec) return { ok: false, status: 404, reason: `no lease for node ${name}` };
  if (rec.deleted) return { ok: false, status: 404, reason: `node ${name} has no lease any more (released or forgotten)` };
  if (member && (member.state === "alive" || member.state === "suspect")) {
    return { ok: false, status: 409, reason: `node ${name} is ${member.state} (gossiping from ${member.addr}); forget only a node that is gone: stop its agent first, or wait until the cluster declares it dead` };
  }
  // Dated no earlier than the record: a stale copy of it can then never outlive the tombstone (docs/leases.md, GC window).
  const renewedAt = Math.max(Math.floor(o.now), rec.renewedAt ?? rec.claimedAt);
  return { ok: true, tombstone: { ...rec, version: rec.version + 1, renewedAt, deleted: true } };
}
