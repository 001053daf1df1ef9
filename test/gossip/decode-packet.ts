/** A whole compound packet decoded the way the receive path does it (packetBounds, then decodeMessageAt per message). */
import { decodeMessageAt, packetBounds } from "../../src/gossip/codec.ts";
import type { Message } from "../../src/gossip/messages.ts";

/** The packet's valid messages and a count of invalid ones; throws when it is not one bounded msgpack array. */
export function decodePacket(plain: Uint8Array): { messages: Message[]; invalid: number } {
  const bounds = packetBounds(plain);
  const messages: Message[] = [];
  let invalid = 0;
  for (let i = 0; i + 1 < bounds.length; i++) {
    const m = decodeMessageAt(plain, bounds[i]!, bounds[i + 1]!);
    if (m) messages.push(m);
    else invalid++;
  }
  return { messages, invalid };
}
