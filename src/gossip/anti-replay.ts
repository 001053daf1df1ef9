/**
 * Which opened messages are let in (after Sealer.open, before anything is decoded):
 *
 * - a packet only if the sender address sealed inside is the address it came from, so a
 *   captured packet resent from elsewhere (or with a spoofed source) gets nothing;
 * - a stream request only if it came from the sealed sender's IP (its TCP source port is
 *   an ephemeral one);
 * - either only if it was sealed within ±maxClockSkewMs of our clock and its id was
 *   never accepted before (ReplayGuard, one per node for packets and requests);
 * - a stream reply only if it names the request we sent (the requester's fresh nonce is
 *   the challenge), and was sealed within the same window.
 *
 * Everything refused is counted and dropped before it is decoded, so it never causes a
 * reply, a state change or a retransmission. Legacy and insecure messages carry nothing
 * to check and are let in as they are: GossipConfig.legacyWire is for a rolling upgrade,
 * insecure mode for labs (docs/gossip.md, "Anti-replay").
 */
import { FRESH, ReplayGuard, SKEWED } from "./replay-guard.ts";
import type { Runtime } from "./runtime.ts";
import type { Opened } from "./security.ts";

export class AntiReplay {
  private readonly guard: ReplayGuard;

  constructor(
    private readonly rt: Runtime,
    private readonly maxSkewMs: number,
    cacheMax: number,
  ) {
    this.guard = new ReplayGuard(maxSkewMs, cacheMax);
  }

  /** A packet received from `from` ("ip:port"). */
  packet(o: Opened, from: string): boolean {
    if (o.legacy) return true;
    if (!o.senderIs(from)) return this.mismatch("packet", o, from);
    return this.fresh("packet", o, from);
  }

  /** A stream request received over a connection from `from` ("ip:port", any port). */
  request(o: Opened, from: string): boolean {
    if (o.legacy) return true;
    if (hostOf(o.sender()) !== hostOf(from)) return this.mismatch("stream request", o, from);
    return this.fresh("stream request", o, from);
  }

  /**
   * A reply from `addr` to our request sealed with `nonce` (undefined: we asked in the
   * legacy or insecure format, which a reply cannot name).
   */
  reply(o: Opened, nonce: Uint8Array | undefined, addr: string): boolean {
    if (!nonce) return true;
    if (!o.answers(nonce)) {
      this.rt.metrics.replaysRejected++;
      this.rt.logLimited("replay", "dropped stream reply that does not answer our request (replayed?)", { from: addr });
      return false;
    }
    const off = o.sentAt - this.rt.clock.now();
    if (Math.abs(off) <= this.maxSkewMs) return true;
    this.skewed("stream reply", addr, off);
    return false;
  }

  private fresh(what: string, o: Opened, from: string): boolean {
    const now = this.rt.clock.now();
    const v = this.guard.admit(o.sentAt, o.id, now);
    if (v === FRESH) return true;
    if (v === SKEWED) this.skewed(what, from, o.sentAt - now);
    else {
      this.rt.metrics.replaysRejected++;
      this.rt.logLimited("replay", `dropped ${what} seen before (replayed or duplicated)`, { from, replays: this.rt.metrics.replaysRejected });
    }
    return false;
  }

  private skewed(what: string, from: string, offMs: number): void {
    this.rt.metrics.staleRejected++;
    const s = Math.round(Math.abs(offMs) / 1000);
    this.rt.logLimited(
      "skew",
      `dropped ${what} sealed ${s} s ${offMs < 0 ? "ago" : "in the future"}: a replay, or the sender's clock is off by about ${s} s (allowed ±${this.maxSkewMs / 1000} s)`,
      { from, stale: this.rt.metrics.staleRejected },
      "warn",
    );
  }

  private mismatch(what: string, o: Opened, from: string): boolean {
    this.rt.metrics.senderMismatches++;
    this.rt.logLimited("sender", `dropped ${what} whose sealed sender is not its source (resent from elsewhere?)`, { from, sender: o.sender() });
    return false;
  }
}

/** The host part of "ip:port" or "[v6]:port". */
function hostOf(addr: string): string {
  return addr.slice(0, addr.lastIndexOf(":"));
}
