/** A StateStore in memory: what a node would persist, readable by tests and simulations. */
import type { NodeIdentity, StateStore } from "../src/lease/state-store.ts";
import type { Lease } from "../src/lease/types.ts";

export class MemStore implements StateStore {
  readonly dir = "(memory)";
  identity?: NodeIdentity;
  lease?: Lease;
  writes = 0;
  load() {
    return { ...(this.identity ? { identity: { ...this.identity } } : {}), ...(this.lease ? { lease: { ...this.lease } } : {}), problems: [] };
  }
  saveIdentity(id: NodeIdentity) {
    this.writes++;
    this.identity = { ...id };
  }
  saveLease(l: Lease) {
    this.writes++;
    this.lease = { ...l };
  }
}
