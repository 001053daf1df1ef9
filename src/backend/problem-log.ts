/**
 * Reconciles run every few seconds; an unreachable peer must be logged when it appears
 * and when it is fixed, not on every run.
 */
import type { Logger } from "../log.ts";

export class ProblemLog {
  private current = new Set<string>();
  constructor(private readonly log: Logger) {}

  update(problems: string[]): void {
    const next = new Set(problems);
    for (const p of next) if (!this.current.has(p)) this.log.warn(p);
    for (const p of this.current) if (!next.has(p)) this.log.info(`resolved: ${p}`);
    this.current = next;
  }
}
