/**
 * Main-thread side of the udp packet loop: starts the Worker, hands it the fds and the
 * peer table, reads its counters from shared memory, and stops it synchronously (close()
 * must not return while the worker may still touch fds the caller is about to close).
 */
import { existsSync } from "node:fs";
import type { Logger } from "../log.ts";
import {
  CTRL_DONE,
  CTRL_STATE,
  CTRL_STOP,
  CTRL_TUN_DEAD,
  CTRL_WORDS,
  COUNTER_SLOTS,
  C_DROP_INVALID,
  C_DROP_IO,
  C_DROP_NO_ROUTE,
  C_DROP_OFFLOAD,
  C_DROP_SENDER,
  C_DROP_SPOOFED,
  C_LOOPS,
  C_RX_BYTES,
  C_RX_PACKETS,
  C_RX_SUPER,
  C_TX_BYTES,
  C_TX_PACKETS,
  C_TX_SUPER,
  type FromWorker,
  type PumpPeer,
  type ToWorker,
} from "./udp-pump-protocol.ts";

export interface UdpCounters {
  /** Encapsulated and sent (TUN → UDP). */
  txPackets: number;
  txBytes: number;
  /** Decapsulated and delivered (UDP → TUN). */
  rxPackets: number;
  rxBytes: number;
  /** From the TUN for a destination in no peer's subnet. */
  droppedNoRoute: number;
  /** Not IP, truncated, or received for a destination outside our own subnet of its family. */
  droppedInvalid: number;
  /** sendto/write failed (socket or TUN queue full, peer unreachable). */
  droppedIo: number;
  /** UDP datagrams from an address that is no peer's public IP. */
  droppedUnknownSender: number;
  /** From a peer's public IP, but the packet's source is outside that peer's subnet (forged, or routed from elsewhere without masquerading). */
  droppedSpoofedSource: number;
  /** virtio_net_hdr of a marked datagram (or of our own TUN's packet) that does not fit its packet or is of a shape weft never sends. */
  droppedBadOffloadHeader: number;
  /** txPackets + rxPackets, for /metrics. */
  packetsForwarded: number;
  /** All drops, for /metrics. */
  packetsDropped: number;
  /** Loop slices run; stalls show as a counter that stops moving. */
  loops: number;
  /** Datagrams that carried an offloaded super-packet (sent / received). */
  txSuperPackets: number;
  rxSuperPackets: number;
}

export interface Pump {
  /** Resolves once the worker has taken the fds; rejects if it could not start. */
  readonly ready: Promise<void>;
  setPeers(peers: PumpPeer[]): void;
  /** Hands over a new TUN fd (after the device was recreated). */
  setTun(fd: number): void;
  /** True once the worker saw the TUN fd fail (device deleted). */
  tunDead(): boolean;
  /** True once the worker thread died (an uncaught error); the owner starts a new one. */
  died(): boolean;
  counters(): UdpCounters;
  /** Stops the loop and waits (up to ~1 s) until the worker no longer touches the fds. */
  stop(): void;
}

/** The loop's fds and settings, as its start message carries them (udp-pump-protocol.ts). */
export interface PumpOptions extends Pick<Extract<ToWorker, { type: "start" }>, "tunFd" | "udpFd" | "udpFd6" | "port" | "ownSubnets" | "offload"> {
  logger: Logger;
}

/**
 * Where the worker module is. From source it sits beside this file. In a compiled
 * binary every module's import.meta.url is the main entry's (/$bunfs/root/<exe>), and
 * extra entrypoints live under /$bunfs/root at their path relative to the entrypoints'
 * common root, as .js: src/backend/… becomes backend/udp-pump.worker.js for dist/weft
 * (entries under src/), src/backend/… when an entry lies outside src/ (test binaries).
 */
export function pumpWorkerUrl(): string | URL {
  const here = new URL("./udp-pump.worker.ts", import.meta.url);
  if (!import.meta.url.includes("/$bunfs/")) return here;
  for (const rel of ["backend/udp-pump.worker.js", "src/backend/udp-pump.worker.js", "udp-pump.worker.js"]) {
    const p = `/$bunfs/root/${rel}`;
    if (existsSync(p)) return p;
  }
  return here; // Worker() then fails with Bun's ModuleNotFound naming the path
}

export function startPump(o: PumpOptions): Pump {
  const ctrlBuf = new SharedArrayBuffer(CTRL_WORDS * 4);
  const countersBuf = new SharedArrayBuffer(COUNTER_SLOTS * 8);
  const ctrl = new Int32Array(ctrlBuf);
  const c = new Float64Array(countersBuf);
  const worker = new Worker(pumpWorkerUrl());
  let stopped = false;
  let died = false;
  let settle: { ok: () => void; fail: (e: Error) => void } | undefined;
  const ready = new Promise<void>((ok, fail) => (settle = { ok, fail }));
  ready.catch(() => {}); // callers that never await must not see an unhandled rejection
  worker.onmessage = (ev: MessageEvent<FromWorker>) => {
    const m = ev.data;
    if (m.type === "started") settle?.ok();
    else if (m.type === "error") {
      o.logger.warn(`udp packet loop: ${m.message}`);
      settle?.fail(new Error(`start udp packet loop: ${m.message}`));
    }
  };
  worker.onerror = (ev) => {
    died = true;
    o.logger.error(`udp packet loop died: ${ev.message}`);
    settle?.fail(new Error(`start udp packet loop: ${ev.message}`));
  };
  const send = (m: ToWorker) => worker.postMessage(m);
  send({ type: "start", tunFd: o.tunFd, udpFd: o.udpFd, udpFd6: o.udpFd6, port: o.port, ownSubnets: o.ownSubnets, offload: o.offload, ctrl: ctrlBuf, counters: countersBuf });

  return {
    ready,
    setPeers: (peers) => send({ type: "peers", peers }),
    setTun: (fd) => send({ type: "tun", fd }),
    tunDead: () => Atomics.load(ctrl, CTRL_TUN_DEAD) === 1,
    died: () => died && !stopped,
    counters() {
      const noRoute = c[C_DROP_NO_ROUTE]!;
      const invalid = c[C_DROP_INVALID]!;
      const io = c[C_DROP_IO]!;
      const sender = c[C_DROP_SENDER]!;
      const spoofed = c[C_DROP_SPOOFED]!;
      const badHdr = c[C_DROP_OFFLOAD]!;
      return {
        txPackets: c[C_TX_PACKETS]!,
        txBytes: c[C_TX_BYTES]!,
        rxPackets: c[C_RX_PACKETS]!,
        rxBytes: c[C_RX_BYTES]!,
        droppedNoRoute: noRoute,
        droppedInvalid: invalid,
        droppedIo: io,
        droppedUnknownSender: sender,
        droppedSpoofedSource: spoofed,
        droppedBadOffloadHeader: badHdr,
        packetsForwarded: c[C_TX_PACKETS]! + c[C_RX_PACKETS]!,
        packetsDropped: noRoute + invalid + io + sender + spoofed + badHdr,
        loops: c[C_LOOPS]!,
        txSuperPackets: c[C_TX_SUPER]!,
        rxSuperPackets: c[C_RX_SUPER]!,
      };
    },
    stop() {
      if (stopped) return;
      stopped = true;
      Atomics.store(ctrl, CTRL_STOP, 1);
      // If the worker never claimed the fds, it never will: state 0 → 2 makes it back off.
      if (Atomics.compareExchange(ctrl, CTRL_STATE, 0, 2) === 1) {
        if (Atomics.wait(ctrl, CTRL_DONE, 0, 1_000) === "timed-out") o.logger.warn("udp packet loop did not stop within 1 s; terminating it");
      }
      worker.terminate();
      settle?.fail(new Error("start udp packet loop: stopped before it started"));
    },
  };
}
