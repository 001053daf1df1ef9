/**
 * Who may hold an incoming stream slot, and how many request bytes may wait unread.
 * Nothing is authenticated before a whole request has arrived, so without limits anyone
 * who can reach the port could hold every slot with slowly trickled requests (locking
 * honest joins out) or make us buffer maxStreams × maxStreamBytes. Policy:
 *
 * - at most `maxPerSource` streams from one IP: more from that IP are refused, so one
 *   host can never take more than its share (and a refused flood does not churn slots);
 * - at most `maxStreams` in total: when full, the oldest *stale* stream (incomplete after
 *   `staleAfterMs`, which an honest peer on a LAN never is) of the source holding the
 *   most streams is closed to make room; if there is none, the newcomer is refused;
 * - the lengths announced by incomplete requests larger than `smallBytes` share a budget
 *   of `budgetBytes`, of which one source may hold a quarter; a request that does not
 *   fit closes stale reservations (heaviest source first), or is refused. Small requests
 *   (most push-pulls) need no budget: the slot caps bound them. Only stale streams are evicted so that a flood of fast senders is refused
 *   at its length prefix instead of being read and thrown away (memory churn), while a
 *   slow trickler cannot keep its slot or budget for long.
 *
 * Deadlines (prefix, whole request) are the transport's job; this class only decides.
 */
export interface AdmissionLimits {
  maxStreams: number;
  maxPerSource: number;
  budgetBytes: number;
  /** An incomplete stream older than this (ms) may be evicted. */
  staleAfterMs: number;
  /** Requests up to this many bytes need no budget. */
  smallBytes: number;
}

interface Entry {
  source: string;
  since: number;
  reserved: number;
  complete: boolean;
}

export class StreamAdmission<C> {
  private readonly open = new Map<C, Entry>(); // insertion order = age
  private readonly perSource = new Map<string, number>();

  constructor(
    private readonly limits: AdmissionLimits,
    private readonly now: () => number,
  ) {}

  /** A new stream from `source`: the streams to close to make room, or null to refuse it. */
  admit(c: C, source: string): C[] | null {
    if ((this.perSource.get(source) ?? 0) >= this.limits.maxPerSource) return null;
    const evict: C[] = [];
    if (this.open.size >= this.limits.maxStreams) {
      const v = this.victim((_, e) => !e.complete && this.stale(e));
      if (v === undefined) return null;
      evict.push(v);
      this.release(v);
    }
    this.open.set(c, { source, since: this.now(), reserved: 0, complete: false });
    this.perSource.set(source, (this.perSource.get(source) ?? 0) + 1);
    return evict;
  }

  /** The request on `c` announced `bytes`: the streams to close to fit it, or null to refuse it. */
  reserve(c: C, bytes: number): C[] | null {
    const me = this.open.get(c);
    if (!me) return null;
    if (bytes <= this.limits.smallBytes) return [];
    let bySource = 0;
    for (const [k, e] of this.open) if (k !== c && e.source === me.source) bySource += e.reserved;
    if (bytes > this.limits.budgetBytes || bySource + bytes > this.limits.budgetBytes / 4) return null;
    let used = this.reservedBytes() - me.reserved;
    const evict: C[] = [];
    while (used + bytes > this.limits.budgetBytes) {
      const v = this.victim((k, e) => k !== c && !e.complete && e.reserved > 0 && this.stale(e));
      if (v === undefined) break;
      used -= this.open.get(v)!.reserved;
      evict.push(v);
      this.release(v);
    }
    if (used + bytes > this.limits.budgetBytes) return null;
    me.reserved = bytes;
    return evict;
  }

  /** The whole request arrived: the stream can no longer be evicted and holds no budget. */
  complete(c: C): void {
    const e = this.open.get(c);
    if (e) {
      e.complete = true;
      e.reserved = 0;
    }
  }

  release(c: C): void {
    const e = this.open.get(c);
    if (!e) return;
    this.open.delete(c);
    const n = (this.perSource.get(e.source) ?? 1) - 1;
    if (n <= 0) this.perSource.delete(e.source);
    else this.perSource.set(e.source, n);
  }

  size(): number {
    return this.open.size;
  }

  reservedBytes(): number {
    let n = 0;
    for (const e of this.open.values()) n += e.reserved;
    return n;
  }

  private stale(e: Entry): boolean {
    return this.now() - e.since >= this.limits.staleAfterMs;
  }

  /** The oldest stream passing `ok` from the source with the most streams among those. */
  private victim(ok: (k: C, e: Entry) => boolean): C | undefined {
    let best: C | undefined;
    let bestCount = -1;
    for (const [k, e] of this.open) {
      if (!ok(k, e)) continue;
      const n = this.perSource.get(e.source) ?? 0;
      if (n > bestCount) {
        best = k;
        bestCount = n;
      }
    }
    return best;
  }
}
