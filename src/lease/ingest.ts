/**
 * Received lease payloads into the table. Every record is validated before it can touch
 * the table (malformed input is counted and logged at debug, never thrown into the gossip
 * layer); a record that cannot change the table — older than, or identical to, the held
 * one — is skipped unvalidated: push-pull resends mostly records the receiver holds.
 */
import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { ClockBounds } from "./clock-bounds.ts";
import { checkDecoded, decodePayload } from "./payload.ts";
import { compareCounters, isEncodingOf, sameAsWire, sameRecord } from "./record-order.ts";
import type { RecordValidator } from "./record-validate.ts";
import type { SettleWindow } from "./settle.ts";
import type { LeaseTable } from "./table.ts";
import type { Lease, LeaseCounters } from "./types.ts";

export interface IngestDeps {
  table: LeaseTable;
  validator: RecordValidator;
  bounds: ClockBounds;
  settle: SettleWindow;
  clock: Clock;
  counters: LeaseCounters;
  log: Logger;
  /** At least one record changed the table. */
  changed: () => void;
}

/** The gossip delegate's receive path: `what` is "broadcast" or "push-pull", `from` the sender. */
export function createIngest(o: IngestDeps): (payload: Uint8Array, from: string, what: string) => void {
  const { table, validator, bounds, settle, clock, counters: m, log } = o;
  return (payload, from, what) => {
    try {
      const latest = bounds.latest(clock.now());
      const d = decodePayload(payload, (name) => table.get(name));
      if ("error" in d) {
        m.rejectedRecords++;
        log.debug("Dropped lease payload", { from, what, error: d.error });
        return;
      }
      let changed = false;
      for (let i = 0; i < d.raw.length; i++) {
        const k = d.known[i];
        if (k ? cannotWinKnown(table, k.lease) : cannotWin(table, d.raw[i], payload, d.at[2 * i]!, d.at[2 * i + 1]!)) continue;
        const l = checkDecoded(validator, d, i, payload);
        if (typeof l === "string") {
          m.rejectedRecords++;
          log.debug("Rejected lease record", { from, what, reason: l });
          continue;
        }
        const aheadMs = bounds.tooFarAhead(l, latest);
        if (aheadMs !== undefined) {
          m.rejectedRecords++;
          log.debug("Rejected lease record", { from, what, node: l.nodeName, reason: `dated ${aheadMs} ms ahead of this node's clock (more than maxClockSkewMs ${bounds.maxClockSkewMs})` });
          continue;
        }
        if (table.merge(l)) {
          changed = true;
          settle.noteChange(l, clock.now());
          if (!l.deleted) bounds.noteClaimedAt(l.claimedAt);
        }
      }
      if (changed) o.changed();
    } catch (e) {
      // A delegate callback must never throw into the gossip layer.
      m.rejectedRecords++;
      log.warn("Cannot merge lease payload", { from, what, error: e as Error });
    }
  };
}

/** cannotWin() for a record found by its bytes (the same answer, from the record). */
function cannotWinKnown(table: LeaseTable, l: Lease): boolean {
  const held = table.get(l.nodeName);
  if (!held) return false;
  const c = compareCounters(l.generation, l.version, held);
  return c !== 0 ? c < 0 : l === held || sameRecord(l, held);
}

/** True when the undecoded tuple `raw` (from payload[start, end); start < 0: unknown) cannot change the table. */
function cannotWin(table: LeaseTable, raw: unknown, payload: Uint8Array, start: number, end: number): boolean {
  if (!Array.isArray(raw) || typeof raw[0] !== "string") return false;
  const held = table.get(raw[0]);
  if (!held) return false;
  const gen = raw[2];
  const ver = raw[3];
  if (typeof gen !== "number" || typeof ver !== "number") return false;
  const c = compareCounters(gen, ver, held);
  // Same counters: usually the very record we hold, which its bytes show at once.
  return c !== 0 ? c < 0 : (start >= 0 && isEncodingOf(held, payload, start, end)) || sameAsWire(raw, held);
}
