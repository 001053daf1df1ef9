/**
 * Change notifications from the kernel: a raw NETLINK_ROUTE socket subscribed to the
 * link, neighbour, address and route multicast groups (IPv4 and IPv6). Only the message type
 * is decoded (what changed, not how); the consumer re-reads state and reconciles.
 *
 * Bun has no "fd readable" callback, so a non-blocking socket is drained by a short
 * interval timer (default 100 ms: a deleted route is noticed well within a second, and
 * an idle drain is one failed recv). The timer is unref'd so it never keeps the process
 * alive, and close() stops it and closes the socket.
 * If the kernel drops notifications (ENOBUFS: the socket buffer overflowed) the watcher
 * cannot know what was lost, so by default it reports a "del" of every watched kind,
 * which makes a reconciling consumer re-check everything.
 */
import {
  EAGAIN, EINTR, ENOBUFS, MSG_DONTWAIT, RTM_DELADDR, RTM_DELLINK, RTM_DELNEIGH, RTM_DELROUTE, RTM_NEWADDR, RTM_NEWLINK,
  RTM_NEWNEIGH, RTM_NEWROUTE, RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE, RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE, RTMGRP_LINK,
  RTMGRP_NEIGH,
} from "../../ffi/constants.ts";
import { loadLibc } from "../../ffi/libc.ts";
import { openRouteSocket, parseMessages } from "./rtnl-raw.ts";
import { errno, sysError } from "./libc.ts";

export type NetlinkEventKind = "link" | "route" | "neigh" | "addr";
export interface NetlinkEvent {
  kind: NetlinkEventKind;
  action: "new" | "del";
}

const BY_TYPE: Record<number, NetlinkEvent> = {
  [RTM_NEWLINK]: { kind: "link", action: "new" },
  [RTM_DELLINK]: { kind: "link", action: "del" },
  [RTM_NEWROUTE]: { kind: "route", action: "new" },
  [RTM_DELROUTE]: { kind: "route", action: "del" },
  [RTM_NEWNEIGH]: { kind: "neigh", action: "new" },
  [RTM_DELNEIGH]: { kind: "neigh", action: "del" },
  [RTM_NEWADDR]: { kind: "addr", action: "new" },
  [RTM_DELADDR]: { kind: "addr", action: "del" },
};

const GROUP: Record<NetlinkEventKind, number> = {
  link: RTMGRP_LINK,
  route: RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE,
  neigh: RTMGRP_NEIGH,
  addr: RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
};

/** The event for an rtnetlink message type, or undefined for types weft ignores. */
export function eventOfType(type: number): NetlinkEvent | undefined {
  const e = BY_TYPE[type];
  return e ? { ...e } : undefined;
}

/** Events in one received datagram, in order. */
export function decodeEvents(buf: Uint8Array, length: number): NetlinkEvent[] {
  const out: NetlinkEvent[] = [];
  for (const m of parseMessages(buf, length)) {
    const e = eventOfType(m.type);
    if (e) out.push(e);
  }
  return out;
}

export interface WatchOptions {
  /** Which kinds to subscribe to; default all four. */
  kinds?: readonly NetlinkEventKind[];
  /** Drain period in ms (10..1000); default 100. */
  intervalMs?: number;
  /** Datagrams read per drain at most, so a storm cannot stall the event loop; default 256. */
  maxPerDrain?: number;
  /** Called when notifications were lost; default: one "del" event per watched kind. */
  onOverflow?: () => void;
  /** Called on a receive error or a throw from `onEvent` (the watcher keeps running); default: receive errors ignored, handler errors propagate. */
  onError?: (e: Error) => void;
}

export interface Watcher {
  close(): void;
}

/**
 * Starts watching; `onEvent` runs on the event loop for each notification. Without
 * `onError`, a throw from `onEvent` propagates out of the timer callback.
 *
 * @example
 * const w = watchNetlinkEvents((e) => { if (e.kind === "route" && e.action === "del") scheduleReconcile(); });
 * // later
 * w.close();
 */
export function watchNetlinkEvents(onEvent: (e: NetlinkEvent) => void, opts: WatchOptions = {}): Watcher {
  const { kinds = ["link", "route", "neigh", "addr"], intervalMs = 100, maxPerDrain = 256 } = opts;
  if (!Number.isInteger(intervalMs) || intervalMs < 10 || intervalMs > 1000) {
    throw new Error(`watch netlink events: intervalMs must be an integer in 10..1000, got ${intervalMs}`);
  }
  if (!Number.isInteger(maxPerDrain) || maxPerDrain < 1) throw new Error(`watch netlink events: maxPerDrain must be a positive integer, got ${maxPerDrain}`);
  let groups = 0;
  for (const k of kinds) {
    const g = GROUP[k];
    if (g === undefined) throw new Error(`watch netlink events: unknown kind ${JSON.stringify(k)}`);
    groups |= g;
  }
  // A throwing consumer must not lose the rest of the batch: with onError it is reported
  // there and draining continues; without, it propagates as an uncaught timer error.
  const emit = (ev: NetlinkEvent) => {
    if (!opts.onError) return onEvent(ev);
    try {
      onEvent(ev);
    } catch (e) {
      opts.onError(new Error(`netlink event handler failed on ${ev.kind} ${ev.action}: ${(e as Error)?.message ?? e}`, { cause: e }));
    }
  };
  const onOverflow = opts.onOverflow ?? (() => kinds.forEach((kind) => emit({ kind, action: "del" })));
  const libc = loadLibc();
  let fd = openRouteSocket({ groups, nonblock: true });
  const buf = new Uint8Array(64 * 1024);

  const drain = () => {
    for (let i = 0; i < maxPerDrain && fd >= 0; i++) {
      const n = libc.recv(fd, buf, buf.byteLength, MSG_DONTWAIT);
      if (n < 0) {
        const e = errno();
        if (e === EAGAIN) return;
        if (e === EINTR) continue;
        if (e === ENOBUFS) {
          onOverflow();
          continue;
        }
        opts.onError?.(sysError("receive netlink events", e));
        return;
      }
      if (n === 0) return;
      for (const ev of decodeEvents(buf, Number(n))) emit(ev);
    }
  };

  const timer = setInterval(drain, intervalMs);
  timer.unref?.();
  return {
    close() {
      clearInterval(timer);
      if (fd >= 0) libc.close(fd);
      fd = -1;
    },
  };
}
