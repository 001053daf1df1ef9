/**
 * Gossip wire messages: their zod schemas (the definition), type tags and size bounds.
 * A packet is a msgpack array of messages (a compound packet: probes carry piggybacked
 * broadcasts); a stream carries one push-pull message. Sizes and counts are bounded so a
 * hostile peer cannot make us allocate much. message-check.ts holds the hand-written
 * equivalents the receive path runs.
 */
import { z } from "zod";
import { isGossipAddr } from "./addr.ts";

export const MAX_NAME = 128;
export const MAX_META = 256;
export const MAX_KEY = 256;
export const MAX_MSGS_PER_PACKET = 255;

const name = z.string().min(1).max(MAX_NAME);
const addr = z.string().refine(isGossipAddr, "an IPv4 address or a bracketed IPv6 address, then :port");
const u32 = z.number().int().min(0).max(0xffffffff);
const inc = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const bytes = (max: number) => z.custom<Uint8Array>((b) => b instanceof Uint8Array && b.length <= max, `binary of at most ${max} bytes`);

/** Message type tags (numbers keep packets small). */
export const T = { ping: 1, indirect: 2, ack: 3, nack: 4, alive: 5, suspect: 6, dead: 7, user: 8 } as const;

const ping = z.object({ t: z.literal(T.ping), seq: u32, target: name, from: name });
/** Ask the receiver to ping `target` at `targetAddr` for us and relay the ack (or a nack). */
const indirect = z.object({ t: z.literal(T.indirect), seq: u32, target: name, targetAddr: addr, from: name });
const ack = z.object({ t: z.literal(T.ack), seq: u32 });
const nack = z.object({ t: z.literal(T.nack), seq: u32 });
const alive = z.object({ t: z.literal(T.alive), name, addr, inc, meta: bytes(MAX_META).optional() });
const suspect = z.object({ t: z.literal(T.suspect), name, inc, from: name });
/** `from === name` means the member left gracefully. */
const dead = z.object({ t: z.literal(T.dead), name, inc, from: name });
/** A user broadcast; (origin, key, seq) identifies it so receivers re-gossip each one once. */
const user = z.object({ t: z.literal(T.user), origin: name, key: z.string().max(MAX_KEY), seq: inc, payload: bytes(65_536) });

/** A ping over a stream (TCP fallback probe) is answered by an ack over the same stream. */
export const streamPingSchema = ping;
export const streamAckSchema = ack;

export const messageSchema = z.discriminatedUnion("t", [ping, indirect, ack, nack, alive, suspect, dead, user]);
export type Message = z.infer<typeof messageSchema>;
export type PingMsg = z.infer<typeof ping>;
export type IndirectMsg = z.infer<typeof indirect>;
export type AliveMsg = z.infer<typeof alive>;
export type SuspectMsg = z.infer<typeof suspect>;
export type DeadMsg = z.infer<typeof dead>;
export type UserMsg = z.infer<typeof user>;

export const STATE_CODE = { alive: 0, suspect: 1, dead: 2, left: 3 } as const;
export const STATE_NAME = ["alive", "suspect", "dead", "left"] as const;

const pushPullMember = z.object({ name, addr, inc, state: z.number().int().min(0).max(3), meta: bytes(MAX_META).optional() });
export type PushPullMember = z.infer<typeof pushPullMember>;

/** Longest push-pull digest accepted, bytes; ours (push-pull.ts digest()) are 32. */
export const MAX_DIGEST = 64;

export function pushPullSchema(maxMembers: number, maxBytes: number) {
  return z.object({
    join: z.boolean(),
    from: name,
    members: z.array(pushPullMember).max(maxMembers),
    user: bytes(maxBytes),
    /** Hash of the sender's member list and delegate state (digest-first periodic exchange). */
    digest: bytes(MAX_DIGEST).optional(),
  });
}
export type PushPullMsg = z.infer<ReturnType<typeof pushPullSchema>>;
