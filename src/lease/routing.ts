/**
 * Which winning leases this node routes to, and why the others are not. Records are
 * checked on arrival for what holds everywhere (record-validate.ts); these rules depend
 * on this node: its own public IP and VTEP MAC, and what its gossip layer knows of each
 * owner. Each problem is logged once, when it appears; problems() lists the current set.
 */
import type { Member } from "../gossip/types.ts";
import type { Logger } from "../log.ts";
import { claimBeats } from "./record-order.ts";
import { publicIpTextProblem } from "./record-validate.ts";
import type { LeaseTable } from "./table.ts";
import type { Lease } from "./types.ts";
import type { Winners } from "./winners.ts";

export interface Routed {
  routes: Lease[];
  problems: string[];
  /** Winning leases left out (the unroutable ones and all but one per shared VTEP MAC). */
  unrouted: number;
}

export class Routing {
  /** Problems of the last routing pass already logged (each is logged once when it appears). */
  private reportedProblems = new Set<string>();
  /** Each member's gossip address at its last event. */
  private readonly memberAddrs = new Map<string, string>();

  constructor(
    private readonly o: {
      nodeName: string;
      /** This node's public IP now (it follows the underlay address). */
      publicIp: () => string;
      table: LeaseTable;
      winners: Winners;
      /** This node's VTEP MAC, once its identity is known. */
      ownMac: () => string | undefined;
      /** Our name was taken over: the record under it is another machine's. */
      displaced: () => boolean;
      log: Logger;
    },
  ) {}

  /**
   * Why this node must not route to `w` (a peer's winning lease), or undefined. The agent
   * advertises its public IP as its gossip address, so a member that gossips from another
   * usable address while its record names this one is inconsistent (a forged or stale
   * record). A member address that could not be a public IP (loopback in tests) is not
   * compared; neither is an owner that is not a member (yet or any more).
   */
  unroutableWhy(w: Lease, members: Map<string, Member>): string | undefined {
    const what = `lease of ${w.nodeName} (${w.subnet})`;
    if (w.publicIp === this.o.publicIp()) return `${what} names this node's public IP ${w.publicIp}: not routed`;
    const mac = w.backend.vtepMac;
    if (mac !== undefined && mac === this.o.ownMac()) return `${what} carries this node's VTEP MAC ${mac}: not routed`;
    const mb = members.get(w.nodeName);
    if (mb && !mb.addr.startsWith(`${w.publicIp}:`)) {
      const ip = mb.addr.slice(0, mb.addr.lastIndexOf(":"));
      if (!publicIpTextProblem(ip)) return `${what} names public IP ${w.publicIp} but member ${w.nodeName} gossips from ${ip}: not routed`;
    }
    return undefined;
  }

  /**
   * The winning leases this node routes to, and why the others are not. Of peers sharing a
   * VTEP MAC only one is routed — an FDB entry names one destination per MAC, so a second
   * claimant would capture or black-hole the first's traffic — chosen the same way
   * wherever the owners' gossip states agree: an owner that is up (alive or suspect)
   * before one that is not, then the subnet claim order (earliest claimedAt, then name).
   * A renamed host's old record (same nodeId, so same MAC, owner gone) thus yields to the
   * new one. Both claimants are named in the problem.
   */
  routed(members: Map<string, Member>, now: number): Routed {
    const routes: Lease[] = [];
    const problems: string[] = [];
    const byMac = new Map<string, Lease>();
    let clashes: Map<string, Lease[]> | undefined;
    this.o.winners.forEachWinner(members, now, (w) => {
      // Once our name was taken over, the record under it is another machine's.
      if (w.nodeName !== this.o.nodeName || this.o.displaced()) {
        const why = this.unroutableWhy(w, members);
        if (why) return void problems.push(why);
        const mac = w.backend.vtepMac;
        if (mac !== undefined) {
          const first = byMac.get(mac);
          if (!first) byMac.set(mac, w);
          else {
            clashes ??= new Map();
            const group = clashes.get(mac) ?? [first];
            group.push(w);
            clashes.set(mac, group);
          }
        }
      }
      routes.push(w);
    });
    if (!clashes) return { routes, problems, unrouted: problems.length };
    const up = (l: Lease) => {
      const st = members.get(l.nodeName)?.state;
      return st === "alive" || st === "suspect";
    };
    const dropped = new Set<Lease>();
    const unfit = problems.length;
    for (const [mac, group] of clashes) {
      const keep = group.reduce((a, b) => (up(a) !== up(b) ? (up(a) ? a : b) : claimBeats(a, b) ? a : b));
      for (const l of group) if (l !== keep) dropped.add(l);
      const who = group
        .map((l) => `${l.nodeName} (${l.subnet} at ${l.publicIp})`)
        .sort()
        .join(", ");
      problems.push(`VTEP MAC ${mac} is claimed by ${who}: only ${keep.nodeName} is routed`);
    }
    return { routes: routes.filter((l) => !dropped.has(l)), problems, unrouted: unfit + dropped.size };
  }

  /** routed(), logging each problem once when it appears (warn). */
  routedLogged(members: Map<string, Member>, now: number): Routed {
    const r = this.routed(members, now);
    if (r.problems.length > 0 || this.reportedProblems.size > 0) {
      for (const p of r.problems) if (!this.reportedProblems.has(p)) this.o.log.warn("Lease not routed", { problem: p });
      this.reportedProblems = new Set(r.problems);
    }
    return r;
  }

  /**
   * True when `mb` gossips from another address than at its last event (a moved node, or
   * a forgery): whether its lease is routed depends on that address, so leases() may
   * change even though the member's state did not — whichever of the lease and the
   * address arrived first.
   */
  addressChanged(mb: Member): boolean {
    const before = this.memberAddrs.get(mb.name);
    this.memberAddrs.set(mb.name, mb.addr);
    return before !== mb.addr;
  }

  /** Forgets an expired owner. */
  forget(name: string): void {
    this.memberAddrs.delete(name);
  }
}
