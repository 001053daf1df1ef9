/**
 * Hand-written equivalents of the zod schemas in messages.ts. The schemas are the
 * definition; every packet and every push-pull member list is checked, and zod's generic
 * parse is several times slower than these on that path, so the receive path uses them
 * instead: same acceptance, same output (unknown keys stripped, keys in schema order, an
 * explicit `meta: undefined` kept), proven against the schemas by the property tests in
 * test/gossip/message-check.test.ts.
 */
import { isGossipAddr } from "./addr.ts";
import { type AliveMsg, MAX_DIGEST, MAX_KEY, MAX_META, MAX_NAME, type Message, type PushPullMember, type PushPullMsg, T } from "./messages.ts";

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const isStr = (v: unknown, min: number, max: number): v is string => typeof v === "string" && v.length >= min && v.length <= max;
const isInt = (v: unknown, max: number): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= max;
const isName = (v: unknown): v is string => isStr(v, 1, MAX_NAME);
const isU32 = (v: unknown): v is number => isInt(v, 0xffffffff);
const isInc = (v: unknown): v is number => isInt(v, Number.MAX_SAFE_INTEGER);
const isBytes = (v: unknown, max: number): v is Uint8Array => v instanceof Uint8Array && v.length <= max;

/** Adds `meta` as zod's `.optional()` would: absent stays absent, present must be valid. */
function withMeta<T extends Obj>(out: T, o: Obj): T | undefined {
  if (!("meta" in o)) return out;
  const meta = o.meta;
  if (meta !== undefined && !isBytes(meta, MAX_META)) return undefined;
  (out as Obj).meta = meta;
  return out;
}

/** `messageSchema.safeParse(v)`, hand-written: the message, or undefined if invalid. */
export function checkMessage(v: unknown): Message | undefined {
  if (!isObj(v)) return undefined;
  switch (v.t) {
    case T.ping:
      return isU32(v.seq) && isName(v.target) && isName(v.from) ? { t: T.ping, seq: v.seq, target: v.target, from: v.from } : undefined;
    case T.indirect:
      return isU32(v.seq) && isName(v.target) && isGossipAddr(v.targetAddr) && isName(v.from)
        ? { t: T.indirect, seq: v.seq, target: v.target, targetAddr: v.targetAddr, from: v.from }
        : undefined;
    case T.ack:
      return isU32(v.seq) ? { t: T.ack, seq: v.seq } : undefined;
    case T.nack:
      return isU32(v.seq) ? { t: T.nack, seq: v.seq } : undefined;
    case T.alive:
      return isName(v.name) && isGossipAddr(v.addr) && isInc(v.inc) ? withMeta<AliveMsg>({ t: T.alive, name: v.name, addr: v.addr, inc: v.inc }, v) : undefined;
    case T.suspect:
      return isName(v.name) && isInc(v.inc) && isName(v.from) ? { t: T.suspect, name: v.name, inc: v.inc, from: v.from } : undefined;
    case T.dead:
      return isName(v.name) && isInc(v.inc) && isName(v.from) ? { t: T.dead, name: v.name, inc: v.inc, from: v.from } : undefined;
    case T.user:
      return isName(v.origin) && isStr(v.key, 0, MAX_KEY) && isInc(v.seq) && isBytes(v.payload, 65_536)
        ? { t: T.user, origin: v.origin, key: v.key, seq: v.seq, payload: v.payload }
        : undefined;
    default:
      return undefined;
  }
}

function checkPushPullMember(v: unknown): PushPullMember | undefined {
  if (!isObj(v) || !isName(v.name) || !isGossipAddr(v.addr) || !isInc(v.inc) || !isInt(v.state, 3)) return undefined;
  return withMeta<PushPullMember>({ name: v.name, addr: v.addr, inc: v.inc, state: v.state }, v);
}

/** The result shape of zod's safeParse, so zod schemas and these checkers are interchangeable. */
export type CheckResult<T> = { success: true; data: T } | { success: false };
export interface Checker<T> {
  safeParse(v: unknown): CheckResult<T>;
}

/** `pushPullSchema(maxMembers, maxBytes)`, hand-written. */
export function pushPullChecker(maxMembers: number, maxBytes: number): Checker<PushPullMsg> {
  return {
    safeParse(v: unknown): CheckResult<PushPullMsg> {
      if (!isObj(v) || typeof v.join !== "boolean" || !isName(v.from)) return { success: false };
      const list = v.members;
      if (!Array.isArray(list) || list.length > maxMembers) return { success: false };
      const members: PushPullMember[] = new Array(list.length);
      for (let i = 0; i < list.length; i++) {
        const m = checkPushPullMember(list[i]);
        if (!m) return { success: false };
        members[i] = m;
      }
      if (!isBytes(v.user, maxBytes)) return { success: false };
      const data: PushPullMsg = { join: v.join, from: v.from, members, user: v.user };
      if ("digest" in v) {
        if (v.digest !== undefined && !isBytes(v.digest, MAX_DIGEST)) return { success: false };
        data.digest = v.digest;
      }
      return { success: true, data };
    },
  };
}
