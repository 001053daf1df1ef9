/**
 * Watches the underlay the agent runs on: the interface, its MTU and the public address
 * in use. The kernel's link and address notifications (the agent's netlink event feed)
 * and a periodic pass make it re-read the interface through the Netlink port; what
 * changed goes to the agent's handlers:
 *
 *   the address in use is gone, another usable one of its family (IPv6: global, as at
 *   start) is on the interface, and the address was not pinned (--public-ip/-ipv6)
 *                                             → move(from, to): re-bind, re-announce, reprogram
 *   the interface's MTU changed               → mtu(from, to)
 *   interface gone or down, no address of the family, a pinned address gone
 *                                             → problem(reason) until it clears: problem(undefined)
 *
 * Addresses are handled per family slot (`AddressSlot`): each slot keeps its address
 * while the interface still carries it and otherwise takes the first address of its
 * family, so a second family is a second slot. Handlers run one at a time: events that
 * arrive meanwhile lead to one more pass when the running one is done.
 */
import type { Clock, TimerHandle } from "./clock.ts";
import type { Logger } from "./log.ts";
import { underlayFamily } from "./sys/iface.ts";
import type { Netlink } from "./sys/netlink.ts";

/** One address the node uses on its underlay. */
export interface AddressSlot {
  family: 4 | 6;
  /** The address in use now. */
  ip: string;
  /** Given by the operator (--public-ip): never replaced; its absence is a problem. */
  pinned: boolean;
}

/** The underlay interface as read from the kernel. */
export interface InterfaceView {
  exists: boolean;
  up: boolean;
  mtu: number;
  /** Addresses on the interface, without prefix, in the kernel's order. */
  addrs: string[];
  /** Addresses anywhere on the node (a pinned address may live on another interface). */
  nodeAddrs: string[];
}

/** What one slot needs: keep its address, move to another, or wait for one (why). */
export type SlotDecision = { keep: true } | { move: string } | { missing: string };

/**
 * The decision for `slot` on interface `iface` as `view` shows it. A pinned address is
 * looked for on the whole node (it may have been found on another interface at start).
 */
export function decideSlot(slot: AddressSlot, iface: string, view: InterfaceView): SlotDecision {
  if (slot.pinned) {
    return view.nodeAddrs.includes(slot.ip) ? { keep: true } : { missing: `--public-ip${slot.family === 6 ? "v6" : ""} ${slot.ip} is no longer on this node (underlay ${iface}); waiting for it to come back` };
  }
  if (view.addrs.includes(slot.ip)) return { keep: true };
  // Never the kernel's IPv6 link-local address (every interface has one): peers could not reach it.
  const next = view.addrs.find((a) => underlayFamily(a) === slot.family);
  if (next !== undefined) return { move: next };
  const what = slot.family === 6 ? "global IPv6" : "IPv4";
  return { missing: `underlay interface ${iface} has no ${what} address (${slot.ip} was removed); waiting for one` };
}

/** Reads `iface` through the Netlink port. */
export function readInterface(nl: Netlink, iface: string): InterfaceView {
  const link = nl.getLink(iface);
  const all = nl.listAddresses();
  const bare = (cidr: string) => cidr.slice(0, cidr.indexOf("/"));
  return {
    exists: link !== undefined,
    up: link?.up ?? false,
    mtu: link?.mtu ?? 0,
    addrs: all.filter((a) => a.dev === iface).map((a) => bare(a.cidr)),
    nodeAddrs: all.map((a) => bare(a.cidr)),
  };
}

export interface UnderlayHandlers {
  /** The slot's address moved; resolve once the node uses `to` (reject: tried again at the next pass). */
  move(slot: AddressSlot, from: string, to: string): Promise<void>;
  /** The interface's MTU changed. */
  mtu(from: number, to: number): Promise<void>;
  /** The underlay cannot carry traffic now, why; undefined once it can again. */
  problem(reason: string | undefined): void;
}

export interface UnderlayWatchOptions {
  nl: Netlink;
  iface: string;
  mtu: number;
  slots: AddressSlot[];
  handlers: UnderlayHandlers;
  clock: Clock;
  logger: Logger;
  /** Delay from a kernel event to the pass, ms (coalesces a burst, e.g. address del + add). */
  debounceMs?: number;
  /** Pass period without events, ms: a safety net for a missed notification. */
  periodMs?: number;
  /** Delay before trying a failed move again, ms. */
  retryMs?: number;
}

export class UnderlayWatch {
  private readonly o: Required<Omit<UnderlayWatchOptions, "slots">>;
  private readonly slots: AddressSlot[];
  private mtu: number;
  private problem: string | undefined;
  private timer: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private failed = false;
  private stopped = false;

  constructor(o: UnderlayWatchOptions) {
    this.o = { debounceMs: 100, periodMs: 10_000, retryMs: 1_000, ...o };
    this.slots = o.slots.map((s) => ({ ...s }));
    this.mtu = o.mtu;
    this.schedule(this.o.periodMs);
  }

  /** The addresses in use now, one per slot. */
  addresses(): AddressSlot[] {
    return this.slots.map((s) => ({ ...s }));
  }

  /** A kernel event: link and address changes lead to a pass soon. */
  event(e: { kind: string }): void {
    if (e.kind === "link" || e.kind === "addr") this.schedule(this.o.debounceMs);
  }

  /** One pass now (also what the timer runs); resolves when it and any pass it caused are done. */
  check(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.pass().finally(() => {
      this.running = undefined;
      if (this.again && !this.stopped) {
        this.again = false;
        void this.check();
      } else this.schedule(this.failed ? this.o.retryMs : this.o.periodMs); // a failed move is retried soon
    });
    return this.running;
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer?.cancel();
    this.timer = this.o.clock.after(ms, () => void this.check());
  }

  private async pass(): Promise<void> {
    const { nl, iface, handlers, logger: log } = this.o;
    let view: InterfaceView;
    try {
      view = readInterface(nl, iface);
    } catch (e) {
      log.warn("Cannot read the underlay interface", { iface, error: e as Error });
      return;
    }
    if (view.exists && view.mtu > 0 && view.mtu !== this.mtu) {
      const from = this.mtu;
      this.mtu = view.mtu;
      log.warn("Underlay MTU changed", { iface, from, to: view.mtu });
      try {
        await handlers.mtu(from, view.mtu);
      } catch (e) {
        log.error("Applying the new underlay MTU failed", { iface, mtu: view.mtu, error: e as Error });
      }
    }
    const problems: string[] = [];
    if (!view.exists) problems.push(`underlay interface ${iface} is gone`);
    else if (!view.up) problems.push(`underlay interface ${iface} is down`);
    for (const slot of this.slots) {
      const d = decideSlot(slot, iface, view);
      if ("missing" in d) problems.push(d.missing);
      else if ("move" in d) {
        const from = slot.ip;
        log.warn("Underlay address changed", { iface, from, to: d.move });
        try {
          await handlers.move({ ...slot }, from, d.move);
          slot.ip = d.move;
        } catch (e) {
          problems.push(`cannot move from ${from} to ${d.move}: ${(e as Error).message}`);
        }
      }
    }
    const problem = problems.length ? problems.join("; ") : undefined;
    if (problem !== this.problem) {
      if (problem) log.error("Underlay not usable; not ready until it is", { problem });
      else log.info("Underlay usable again", { iface, addresses: this.slots.map((s) => s.ip).join(",") });
      this.problem = problem;
      handlers.problem(problem);
    }
    this.failed = problems.some((p) => p.startsWith("cannot move"));
  }
}
