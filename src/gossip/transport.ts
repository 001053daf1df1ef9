/**
 * The wire behind a small interface (memberlist transport.go): best-effort packets for
 * probes and gossip, and a reliable request/reply stream for full-state push-pull.
 * Addresses are "ip:port". Implementations: udp-transport.ts (UDP + TCP on one port
 * number) and, for tests and simulations, sim/mem-network.ts (in-memory, on a
 * controllable clock).
 */

/** Called for every datagram received; `from` is the sender's "ip:port". Must not throw. */
export type PacketHandler = (data: Uint8Array, from: string) => void;

/**
 * Serves one incoming stream: gets the peer's request, returns the reply to send back.
 * A rejection closes the stream without a reply.
 */
export type StreamHandler = (request: Uint8Array, from: string) => Promise<Uint8Array>;

export interface Transport {
  /** The "ip:port" this transport is bound to. */
  localAddr(): string;
  /** Sends one datagram, best effort: never throws, silently drops on error or when closed. */
  sendPacket(to: string, data: Uint8Array): void;
  /** Sets the one packet handler (replaces any earlier one). */
  onPacket(handler: PacketHandler): void;
  /**
   * Opens a stream to `to`, sends `request` and resolves with the single reply. Rejects
   * when the peer refuses, closes without a reply, the reply exceeds `maxBytes`, or
   * `signal` aborts (the caller's timeout; the transport itself may wait forever).
   */
  stream(to: string, request: Uint8Array, opts: { signal: AbortSignal; maxBytes: number }): Promise<Uint8Array>;
  /** Sets the one stream handler; `maxBytes` bounds incoming requests. */
  onStream(handler: StreamHandler, opts: { maxBytes: number }): void;
  /** Stops receiving and releases sockets; idempotent. */
  close(): Promise<void>;
}
