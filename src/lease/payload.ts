/**
 * Received lease payloads (a broadcast of one record, or a whole state) as raw tuples
 * with where each lies in the payload, skipping records the receiver already holds and
 * recognising records made before from the same bytes (record-intern.ts).
 */
import { unpack } from "msgpackr";
import { arrayHeader, sameRange, shortStrAt, valueEnd } from "../wire/msgpack.ts";
import { KIND_RECORD, KIND_STATE, packedRecord, WIRE_VERSION } from "./record-codec.ts";
import { type KnownRecord, knownRecord } from "./record-intern.ts";
import type { RecordValidator } from "./record-validate.ts";
import type { Lease } from "./types.ts";

/**
 * Raw (unvalidated) record tuples from a broadcast or a state payload, each with where
 * its bytes lie in the payload (`at[2i]`, `at[2i+1]`; -1 when the layout is not ours), so
 * the caller can recognise records it already holds or has made (internedRecord). With
 * `held` (the record a table holds for a name), a state payload's records that are byte
 * for byte the held one are left out undecoded and counted in `skipped`: push-pull resends
 * whole tables, and after convergence nearly every record in them is one the receiver
 * holds: skipping them keeps a join storm from decoding (and collecting) every table it
 * receives.
 */
export function decodePayload(bytes: Uint8Array, held?: (name: string) => Lease | undefined): DecodedRecords | { error: string } {
  if (held) {
    const fast = newRecordsOfState(bytes, held);
    if (fast) return fast;
  }
  // A broadcast is [version, kind, record]: the record is everything after that 3-byte head.
  const ours = bytes[0] === 0x93 && bytes[1] === WIRE_VERSION && bytes[2] === KIND_RECORD;
  const known = ours ? knownRecord(bytes, 3, bytes.length) : undefined;
  if (known) return { raw: [undefined], known: [known], at: [3, bytes.length], skipped: 0 };
  const whole = decodeWhole(bytes);
  if ("error" in whole) return whole;
  return { raw: whole.raw, known: whole.raw.map(() => undefined), at: ours ? [3, bytes.length] : whole.raw.flatMap(() => [-1, -1]), skipped: 0 };
}

export interface DecodedRecords {
  /** Per record, its decoded (unvalidated) tuple; undefined where `known` has the record. */
  raw: unknown[];
  /** Per record, the record made before from the same bytes, if any (then it was not decoded). */
  known: (KnownRecord | undefined)[];
  /** Where record i lies in the payload: [at[2i], at[2i+1]), or -1, -1 if unknown. */
  at: number[];
  skipped: number;
}

/** Record i of a decoded payload, validated by `v`: the lease, or why it is rejected. */
export function checkDecoded(v: RecordValidator, d: DecodedRecords, i: number, payload: Uint8Array): Lease | string {
  const k = d.known[i];
  if (k) return v.checkKnown(k);
  const start = d.at[2 * i]!;
  return start < 0 ? v.check(d.raw[i]) : v.check(d.raw[i], payload, start, d.at[2 * i + 1]);
}

const STATE_HEAD = [0x93, WIRE_VERSION, KIND_STATE] as const;

/** decodePayload's skipping walk; undefined if `bytes` is not a well-formed state payload (decodeWhole says why). */
function newRecordsOfState(bytes: Uint8Array, held: (name: string) => Lease | undefined): DecodedRecords | undefined {
  if (STATE_HEAD.some((v, i) => bytes[i] !== v)) return undefined;
  const head = arrayHeader(bytes, STATE_HEAD.length);
  if (!head || head.count > bytes.length - head.off) return undefined;
  const { count } = head;
  let { off } = head;
  const raw: unknown[] = [];
  const known: (KnownRecord | undefined)[] = [];
  const at: number[] = [];
  let skipped = 0;
  for (let i = 0; i < count; i++) {
    const start = off;
    off = valueEnd(bytes, start);
    if (off < 0) return undefined;
    const name = recordName(bytes, start, off);
    const mine = name === undefined ? undefined : held(name);
    if (mine && sameRange(packedRecord(mine), bytes, start, off)) {
      skipped++;
      continue;
    }
    const k = knownRecord(bytes, start, off);
    try {
      raw.push(k ? undefined : unpack(bytes.subarray(start, off)));
    } catch {
      return undefined;
    }
    known.push(k);
    at.push(start, off);
  }
  return off === bytes.length ? { raw, known, at, skipped } : undefined;
}

/** The name of the record tuple at [start, end) as packedRecord writes it (fixarray(12) or (13), then a str of ≤ 255 bytes). */
function recordName(b: Uint8Array, start: number, end: number): string | undefined {
  // Read as latin1, so a name with non-ASCII bytes cannot equal a held (valid, ASCII) name.
  return b[start] === 0x9c || b[start] === 0x9d ? shortStrAt(b, start + 1, end) : undefined;
}

function decodeWhole(bytes: Uint8Array): { raw: unknown[]; kind: number } | { error: string } {
  let msg: unknown;
  try {
    msg = unpack(bytes);
  } catch (e) {
    return { error: `cannot decode payload: ${(e as Error).message}` };
  }
  if (!Array.isArray(msg) || msg.length !== 3) return { error: "cannot decode payload: not a [version, kind, body] triple" };
  if (msg[0] !== WIRE_VERSION) return { error: `cannot decode payload: wire version ${String(msg[0])}, expected ${WIRE_VERSION}` };
  if (msg[1] === KIND_RECORD) return { raw: [msg[2]], kind: KIND_RECORD };
  if (msg[1] === KIND_STATE && Array.isArray(msg[2])) return { raw: msg[2], kind: KIND_STATE };
  return { error: `cannot decode payload: unknown kind ${String(msg[1])}` };
}
