/**
 * Local health (memberlist awareness.go, Lifeguard's LHM): a score in [0, max−1] that
 * rises when our own probes fail in ways that point at us (missed nacks, having to
 * refute a suspicion) and falls on successful probes. Timeouts are scaled by score+1,
 * so a starved node slows down instead of falsely accusing healthy peers.
 */
export class Awareness {
  private score = 0;

  constructor(private readonly max: number) {}

  applyDelta(delta: number): void {
    this.score = Math.min(this.max - 1, Math.max(0, this.score + delta));
  }

  health(): number {
    return this.score;
  }

  scale(ms: number): number {
    return ms * (this.score + 1);
  }
}
