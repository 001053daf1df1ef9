/**
 * The replicated lease table: one record per node name, merged by keeping the greater
 * record in the total order of record-order.ts. Pure and synchronous (no clock, no I/O), so
 * the merge laws can be property-tested. Subnet conflicts between different names are
 * not resolved here; the table only indexes who claims what (winners.ts decides who holds
 * a subnet).
 */
import { subnetsOf } from "./families.ts";
import { compareRecords } from "./record-order.ts";
import { stateDigest, xorRecordInto } from "./state-digest.ts";
import type { Lease } from "./types.ts";

export class LeaseTable {
  private readonly byName = new Map<string, Lease>();
  /**
   * Names of non-deleted records per subnet, of either family (more than one = a
   * conflict): the name itself while there is one, which is almost always, else an
   * array. What it protects: memory.
   * There is an entry per claimed subnet, and a Set (or an array) per entry would be one
   * more object per lease on every node — many per process in the simulations of sim/.
   */
  private readonly bySubnet = new Map<string, string | string[]>();
  /** Bumped on every change; lets callers cache encodings of the whole table. */
  revision = 0;
  /** stateDigest of the records as of the last digest() call. */
  private acc: Uint8Array = new Uint8Array(32);
  /** Records added or removed since then: each is XORed into `acc` once. */
  private pending: Lease[] = [];
  /** `pending` outgrew the table (nobody asked for a digest): recompute from scratch. */
  private stale = false;

  /** Keeps `l` if it is greater than the record held for its name; true if it changed. */
  merge(l: Lease): boolean {
    const cur = this.byName.get(l.nodeName);
    if (cur && compareRecords(l, cur) <= 0) return false;
    if (cur) {
      this.unindex(cur);
      this.note(cur);
    }
    this.byName.set(l.nodeName, l);
    this.index(l);
    this.note(l);
    this.revision++;
    return true;
  }

  /**
   * stateDigest(all()), kept up to date incrementally: during a join storm push-pull asks
   * for it in every settle exchange while the table changes between any two asks.
   */
  digest(): Uint8Array {
    if (this.stale) {
      this.acc = stateDigest(this.byName.values());
      this.stale = false;
    } else for (const l of this.pending) xorRecordInto(this.acc, l);
    this.pending = [];
    return this.acc.slice();
  }

  private note(l: Lease): void {
    if (this.stale) return;
    this.pending.push(l);
    if (this.pending.length > 2 * this.byName.size + 64) {
      this.stale = true;
      this.pending = [];
    }
  }

  /** Forgets a record (garbage collection of expired records and old tombstones). */
  remove(name: string): boolean {
    const cur = this.byName.get(name);
    if (!cur) return false;
    this.unindex(cur);
    this.note(cur);
    this.byName.delete(name);
    this.revision++;
    return true;
  }

  get(name: string): Lease | undefined {
    return this.byName.get(name);
  }

  get size(): number {
    return this.byName.size;
  }

  all(): IterableIterator<Lease> {
    return this.byName.values();
  }

  /** Non-deleted records claiming `subnet`. */
  claimants(subnet: string): Lease[] {
    const names = this.bySubnet.get(subnet);
    if (names === undefined) return [];
    if (typeof names === "string") return [this.byName.get(names)!];
    const out: Lease[] = [];
    for (const n of names) out.push(this.byName.get(n)!);
    return out;
  }

  /** Subnets (of both families) with at least one non-deleted claim. */
  claimedSubnets(): IterableIterator<string> {
    return this.bySubnet.keys();
  }

  private index(l: Lease): void {
    if (l.deleted) return;
    if (l.subnet !== undefined) this.indexSubnet(l.subnet, l.nodeName);
    if (l.ipv6Subnet !== undefined) this.indexSubnet(l.ipv6Subnet, l.nodeName);
  }

  private indexSubnet(subnet: string, name: string): void {
    const names = this.bySubnet.get(subnet);
    if (names === undefined) this.bySubnet.set(subnet, name);
    else if (typeof names === "string") {
      if (names !== name) this.bySubnet.set(subnet, [names, name]);
    } else if (!names.includes(name)) names.push(name);
  }

  private unindex(l: Lease): void {
    if (l.deleted) return;
    for (const subnet of subnetsOf(l)) this.unindexSubnet(subnet, l.nodeName);
  }

  private unindexSubnet(subnet: string, name: string): void {
    const names = this.bySubnet.get(subnet);
    if (names === undefined) return;
    if (typeof names === "string") {
      if (names === name) this.bySubnet.delete(subnet);
      return;
    }
    const i = names.indexOf(name);
    if (i < 0) return;
    names.splice(i, 1);
    if (names.length === 1) this.bySubnet.set(subnet, names[0]!);
  }
}
