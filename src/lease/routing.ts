/**
 * Which winning leases this node routes to, and why the others are not. Records are
 * checked on arrival for what holds everywhere (record-validate.ts); these rules depend
 * on this node: its own public addresses and VTEP MAC, and what its gossip layer knows
 * of each owner. Each problem is logged once, when it appears; problems() lists the
 * current set. A lease that won only one of its two subnets (a conflict not yet resolved
 * by renumbering) is routed for that one only.
 *
 * A node that moves to a new address announces its lease and its gossip address at
 * nearly the same time, but peers take the gossip address only once the old one stays
 * silent: in between the two disagree. Its lease then stays routed at the addresses
 * routed last (checked then against the same member) rather than leaving the dataplane
 * for that moment — a removed WireGuard peer loses its current keys, and the moved node
 * would go on encrypting with keys the peer no longer has until its own rekey timer runs out.
 */
import type { Member } from "../gossip/types.ts";
import type { Logger } from "../log.ts";
import { describePublicIps, familyOfText, hostOfAddr, publicIpFields, subnetsOf } from "./families.ts";
import { claimBeats } from "./record-order.ts";
import { leaseText, publicIpTextProblem } from "./record-validate.ts";
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
  /** The peers' leases routed by the last pass, by node name: what a moving node is held at. */
  private lastRouted = new Map<string, Lease>();

  constructor(
    private readonly o: {
      nodeName: string;
      /** This node's public addresses now (either family; they follow the underlay). */
      publicIps: () => string[];
      table: LeaseTable;
      winners: Winners;
      /** This node's VTEP MAC, once its identity is known. */
      ownMac: () => string | undefined;
      /** Our name was taken over: the record under it is another machine's. */
      displaced: () => boolean;
      log: Logger;
    },
  ) {}

  /** Why this node must not route to `w` (a peer's winning lease) as it points at this node itself (its public IP or VTEP MAC), or undefined. */
  private ownConflict(w: Lease): string | undefined {
    const what = leaseText(w);
    const own = this.o.publicIps();
    for (const ip of [w.publicIp, w.publicIpv6]) {
      if (ip !== undefined && own.includes(ip)) return `${what} names this node's public IP ${ip}: not routed`;
    }
    const mac = w.backend.vtepMac;
    if (mac !== undefined && mac === this.o.ownMac()) return `${what} carries this node's VTEP MAC ${mac}: not routed`;
    return undefined;
  }

  /**
   * How `w`'s addresses disagree with its owner's gossip address, or undefined. The agent
   * advertises one of its public addresses (IPv4 if it has one, else IPv6) as its gossip
   * address, so a member that gossips from another usable address than the ones its
   * record names is inconsistent (a forged or stale record, or a node moving right now).
   * A member address that could not be a public IP (loopback in tests) is not compared;
   * neither is an owner that is not a member (yet or any more).
   */
  private memberMismatch(w: Lease, members: Map<string, Member>): string | undefined {
    const mb = members.get(w.nodeName);
    if (!mb) return undefined;
    const ip = hostOfAddr(mb.addr);
    if (ip !== w.publicIp && ip !== w.publicIpv6 && !publicIpTextProblem(ip)) return `${leaseText(w)} names public IP ${describePublicIps(w)} but member ${w.nodeName} gossips from ${ip}`;
    return undefined;
  }

  /**
   * `w` at the addresses its owner was routed at by the last pass, when `w` differs from
   * that lease only in its addresses (same node id, subnets and backend data) and points
   * at no address or MAC of this node: the moment between a node's new lease and its new
   * gossip address (either may arrive first). Otherwise undefined. Only addresses once
   * checked against the member are used, so a forged record for a live node's name
   * (another node id) or at another address is never routed.
   */
  private held(w: Lease): Lease | undefined {
    const prev = this.lastRouted.get(w.nodeName);
    if (!prev || prev.nodeId !== w.nodeId || prev.subnet !== w.subnet || prev.ipv6Subnet !== w.ipv6Subnet) return undefined;
    if (JSON.stringify(prev.backend) !== JSON.stringify(w.backend)) return undefined;
    const { publicIp: _ip, publicIpv6: _ipv6, ...rest } = w;
    const at: Lease = { ...rest, ...publicIpFields(prev.publicIp, prev.publicIpv6) };
    return this.ownConflict(at) ? undefined : at;
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
    const peers = new Map<string, Lease>();
    let unfit = 0;
    let clashes: Map<string, Lease[]> | undefined;
    for (const won of this.wonLeases(members, now)) {
      let w = won;
      // Once our name was taken over, the record under it is another machine's.
      if (w.nodeName !== this.o.nodeName || this.o.displaced()) {
        const own = this.ownConflict(w);
        const mismatch = own ? undefined : this.memberMismatch(w, members);
        if (own !== undefined || mismatch !== undefined) {
          const held = mismatch !== undefined ? this.held(w) : undefined;
          if (!held) {
            problems.push(own ?? `${mismatch}: not routed`);
            unfit++;
            continue;
          }
          problems.push(`${mismatch}: still routed at ${describePublicIps(held)} until the two agree`);
          w = held;
        }
        peers.set(w.nodeName, w);
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
    }
    this.lastRouted = peers;
    if (!clashes) return { routes, problems, unrouted: unfit };
    const up = (l: Lease) => {
      const st = members.get(l.nodeName)?.state;
      return st === "alive" || st === "suspect";
    };
    const dropped = new Set<Lease>();
    for (const [mac, group] of clashes) {
      const keep = group.reduce((a, b) => (up(a) !== up(b) ? (up(a) ? a : b) : claimBeats(a, b) ? a : b));
      for (const l of group) if (l !== keep) dropped.add(l);
      const who = group
        .map((l) => `${l.nodeName} (${subnetsOf(l).join(" + ")} at ${describePublicIps(l)})`)
        .sort()
        .join(", ");
      problems.push(`VTEP MAC ${mac} is claimed by ${who}: only ${keep.nodeName} is routed`);
    }
    for (const l of dropped) if (peers.get(l.nodeName) === l) peers.delete(l.nodeName);
    return { routes: routes.filter((l) => !dropped.has(l)), problems, unrouted: unfit + dropped.size };
  }

  /**
   * The winning leases, each once, in the order their first subnet comes up: a lease
   * that won all its subnets as it is, one that lost a subnet (to a claim it will
   * renumber away from) as a copy without it.
   */
  private wonLeases(members: Map<string, Member>, now: number): Lease[] {
    const won = new Map<Lease, string[]>();
    this.o.winners.forEachWinner(members, now, (w, subnet) => {
      const got = won.get(w);
      if (got) got.push(subnet);
      else won.set(w, [subnet]);
    });
    const out: Lease[] = [];
    for (const [w, subnets] of won) {
      if (subnets.length === subnetsOf(w).length) out.push(w);
      else {
        const part: Lease = { ...w };
        for (const s of subnetsOf(w)) if (!subnets.includes(s)) delete part[familyOfText(s) === 4 ? "subnet" : "ipv6Subnet"];
        out.push(part);
      }
    }
    return out;
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
    this.lastRouted.delete(name);
  }
}
