/**
 * The real wire: UDP datagrams for probes and gossip, TCP for push-pull streams, both
 * on the same port number (Bun.udpSocket, Bun.listen; outgoing streams via node:net). A stream carries
 * one length-prefixed request and one length-prefixed reply ([u32 big-endian][bytes]),
 * then closes. Sizes are checked against the prefix before anything is buffered.
 *
 * Incoming streams are unauthenticated until their whole request is in, so they are
 * admitted by StreamAdmission (slot caps per source and in total, evicting the oldest
 * incomplete request, and a shared budget for announced request bytes) and must deliver
 * the length prefix within `prefixTimeoutMs` and the whole request within
 * `requestTimeoutMs` of being accepted, however slowly they trickle.
 */
import type { Socket, TCPSocketListener } from "bun";
import { connect } from "node:net";
import { type Clock, type TimerHandle, realClock } from "../clock.ts";
import type { Logger } from "../log.ts";
import { StreamAdmission } from "./stream-admission.ts";
import type { PacketHandler, StreamHandler, Transport } from "./transport.ts";

export interface UdpTransportOptions {
  /** Address to bind, e.g. "192.0.2.10", "127.0.0.2" or "::1" (then addresses read "[::1]:port"). */
  bindAddr: string;
  /** Port for both UDP and TCP; 0 picks a free one (the same number for both). */
  port: number;
  logger: Logger;
  /** Largest datagram accepted, bytes; larger ones are dropped (default 65507). */
  maxPacket?: number;
  /** Most concurrent incoming streams (default 32). */
  maxStreams?: number;
  /** Most concurrent incoming streams from one IP address (default 8). */
  maxStreamsPerSource?: number;
  /** Budget shared by the announced lengths of incoming requests (> 64 KiB) not yet complete, bytes (default 32 MiB; one source may hold a quarter): with maxStreams × 64 KiB, what unauthenticated peers can make us buffer. */
  pendingBudgetBytes?: number;
  /** An incoming stream must send its 4-byte length within this of being accepted, ms (default 2000). */
  prefixTimeoutMs?: number;
  /** An incoming stream must deliver its whole request within this of being accepted, ms (default 10000). */
  requestTimeoutMs?: number;
  /** An incoming request still incomplete after this may be closed to make room for others, ms (default 1000). */
  staleStreamMs?: number;
  /** Server side: a stream idle this long (e.g. not reading our reply) is closed, seconds (default 10). */
  streamIdleSeconds?: number;
  /** Clock for the deadlines above (default the real clock). */
  clock?: Clock;
}

interface Conn {
  /** The 4-byte length prefix as it arrives. */
  head: Uint8Array;
  headLen: number;
  /** The body, allocated once its length is known and admitted: no chunk copies, no concat. */
  body: Uint8Array | null;
  bodyLen: number;
  need: number;
  max: number;
  out: Uint8Array | null;
  onMessage(msg: Uint8Array): void;
  onFail(err: Error): void;
  /** Server side: the prefix announced `n` bytes; false refuses the request. */
  onLength?(n: number): boolean;
  /** Server side: releases deadlines. */
  cleanup?(): void;
  done: boolean;
}

/** Binds UDP and TCP on bindAddr:port (same number), retrying a few random ports when port is 0. */
export async function createUdpTransport(opts: UdpTransportOptions): Promise<Transport> {
  const attempts = opts.port === 0 ? 8 : 1;
  let lastErr: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      return await bind(opts);
    } catch (err) {
      lastErr = err;
    }
  }
  throw new Error(`bind gossip transport ${opts.bindAddr}:${opts.port}: ${(lastErr as Error)?.message ?? lastErr}`, { cause: lastErr });
}

async function bind({
  bindAddr,
  port,
  logger,
  maxPacket = 65_507,
  maxStreams = 32,
  maxStreamsPerSource = 8,
  pendingBudgetBytes = 32 * 1024 * 1024,
  prefixTimeoutMs = 2_000,
  requestTimeoutMs = 10_000,
  staleStreamMs = 1_000,
  streamIdleSeconds = 10,
  clock = realClock,
}: UdpTransportOptions): Promise<Transport> {
  const log = logger.child("transport");
  let packetHandler: PacketHandler | null = null;
  let streamHandler: StreamHandler | null = null;
  let streamMax = 1 << 20;
  let closed = false;
  const admission = new StreamAdmission<Socket<Conn>>(
    { maxStreams, maxPerSource: maxStreamsPerSource, budgetBytes: pendingBudgetBytes, staleAfterMs: staleStreamMs, smallBytes: 64 * 1024 },
    () => clock.now(),
  );
  let lastDropLog = -Infinity;
  const dropStream = (sock: Socket<Conn>, why: string) => {
    admission.release(sock);
    if (sock.data) {
      sock.data.done = true;
      sock.data.cleanup?.();
    }
    // terminate, not end: a half-closed socket would keep reading what the peer sends.
    sock.terminate();
    // Under a flood this happens constantly: say it at most every 10 s.
    if (clock.now() - lastDropLog >= 10_000) {
      lastDropLog = clock.now();
      log.debug("closed incoming stream", { why, from: sock.remoteAddress, open: admission.size() });
    }
  };

  const udp = await Bun.udpSocket({
    hostname: bindAddr,
    port,
    binaryType: "uint8array",
    socket: {
      data(_s, data, rport, raddr) {
        if (closed || !packetHandler || data.length > maxPacket) return;
        try {
          packetHandler(data, joinAddr(raddr, rport));
        } catch (err) {
          log.debug("packet handler threw", { err: (err as Error).message });
        }
      },
      // Bun passes the error as the only argument (types say socket, error): accept both.
      // ECONNREFUSED here is an ICMP port-unreachable from a dead peer: routine.
      error(...args: unknown[]) {
        log.debug("udp socket error", { err: errorIn(args) });
      },
    },
  });
  let tcp: TCPSocketListener<Conn>;
  try {
    tcp = Bun.listen<Conn>({
      hostname: bindAddr,
      port: udp.port,
      exclusive: true,
      socket: {
        binaryType: "uint8array",
        open(sock) {
          if (closed || !streamHandler) {
            sock.end();
            return;
          }
          const evict = admission.admit(sock, sock.remoteAddress);
          if (!evict) return dropStream(sock, "no free slot (per-source cap, or no stale stream to evict)");
          for (const v of evict) dropStream(v, "evicted: stale incomplete request, slot needed");
          sock.timeout(streamIdleSeconds);
          const from = joinAddr(sock.remoteAddress, sock.remotePort);
          const timers: TimerHandle[] = [];
          const conn = newConn(
            streamMax,
            (req) => {
              admission.complete(sock);
              conn.cleanup!();
              streamHandler!(req, from).then(
                (reply) => writeFrame(sock, reply),
                (err: unknown) => {
                  log.debug("stream handler failed", { from, err: (err as Error)?.message ?? String(err) });
                  sock.end();
                },
              );
            },
            () => dropStream(sock, "request larger than the stream limit"),
          );
          conn.onLength = (n) => {
            const ev = admission.reserve(sock, n);
            if (!ev) return false;
            for (const v of ev) dropStream(v, "evicted: stale incomplete request, budget needed");
            return true;
          };
          conn.cleanup = () => timers.splice(0).forEach((t) => t.cancel());
          timers.push(
            clock.after(prefixTimeoutMs, () => conn.need < 0 && !conn.done && dropStream(sock, "no length prefix in time")),
            clock.after(requestTimeoutMs, () => !conn.done && dropStream(sock, "request not complete in time")),
          );
          sock.data = conn;
        },
        data(sock, data) {
          if (sock.data) feed(sock.data, data as Uint8Array);
        },
        drain(sock) {
          flush(sock);
        },
        timeout(sock) {
          sock.end();
        },
        close(sock) {
          admission.release(sock);
          if (sock.data) {
            sock.data.done = true;
            sock.data.cleanup?.();
          }
        },
        error(...args: unknown[]) {
          log.debug("stream error", { err: errorIn(args) });
        },
      },
    });
  } catch (err) {
    udp.close();
    throw err;
  }
  const addr = joinAddr(bindAddr, udp.port);

  return {
    localAddr: () => addr,
    sendPacket(to, data) {
      if (closed) return;
      const [host, p] = splitAddr(to);
      if (!host) return;
      try {
        udp.send(data, p, host);
      } catch {
        // A pending ICMP error from an earlier send to a dead peer surfaces here and
        // consumes this send; the error is cleared now, so one retry goes through.
        try {
          udp.send(data, p, host);
        } catch (err) {
          log.debug("udp send failed", { to, err: (err as Error).message });
        }
      }
    },
    onPacket(h) {
      packetHandler = h;
    },
    onStream(h, { maxBytes }) {
      streamHandler = h;
      streamMax = maxBytes;
    },
    stream(to, request, { signal, maxBytes }) {
      return new Promise<Uint8Array>((resolve, reject) => {
        if (closed) return reject(new Error(`stream to ${to}: transport closed`));
        const [host, p] = splitAddr(to);
        if (!host) return reject(new Error(`stream to ${to}: not an "ip:port" address`));
        let settled = false;
        // node:net because Bun.connect cannot pick the source address: outgoing streams
        // leave from our bind address, so peers account them to us (per-source limits)
        // and multi-homed hosts do not appear under another IP.
        const sock = connect({ host, port: p, localAddress: bindAddr });
        const settle = (err: Error | null, v?: Uint8Array) => {
          if (settled) return;
          settled = true;
          signal.removeEventListener("abort", onAbort);
          sock.destroy();
          if (err) reject(err);
          else resolve(v!);
        };
        const onAbort = () => settle(new Error(`stream to ${to}: aborted`));
        if (signal.aborted) return onAbort();
        signal.addEventListener("abort", onAbort);
        const conn = newConn(maxBytes, (reply) => settle(null, reply), (err) => settle(err));
        sock.on("connect", () => {
          const frame = new Uint8Array(4 + request.length);
          new DataView(frame.buffer).setUint32(0, request.length);
          frame.set(request, 4);
          sock.write(frame);
        });
        sock.on("data", (chunk: Buffer) => feed(conn, chunk));
        sock.on("error", (err: Error) => settle(new Error(`stream to ${to}: ${err.message}`)));
        sock.on("close", () => settle(new Error(`stream to ${to}: closed without a reply`)));
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      udp.close();
      tcp.stop(true);
    },
  };
}

function newConn(max: number, onMessage: (m: Uint8Array) => void, onFail: (e: Error) => void): Conn {
  return { head: new Uint8Array(4), headLen: 0, body: null, bodyLen: 0, need: -1, max, out: null, onMessage, onFail, done: false };
}

/** Reads one length-prefixed frame; rejects frames over the limit (or refused by onLength) from their prefix. */
function feed(c: Conn, data: Uint8Array): void {
  let off = 0;
  while (!c.done && off < data.length) {
    if (c.need < 0) {
      const n = Math.min(4 - c.headLen, data.length - off);
      c.head.set(data.subarray(off, off + n), c.headLen);
      c.headLen += n;
      off += n;
      if (c.headLen < 4) return;
      c.need = new DataView(c.head.buffer).getUint32(0);
      if (c.need > c.max || (c.onLength && !c.onLength(c.need))) {
        c.done = true;
        c.onFail(new Error(`message of ${c.need} bytes exceeds limit ${c.max} or the pending budget`));
        return;
      }
      c.body = new Uint8Array(c.need);
    }
    const n = Math.min(c.need - c.bodyLen, data.length - off);
    c.body!.set(data.subarray(off, off + n), c.bodyLen);
    c.bodyLen += n;
    off += n;
    if (c.bodyLen === c.need) {
      c.done = true;
      c.onMessage(c.body!);
    }
  }
}

function writeFrame(sock: Socket<Conn>, payload: Uint8Array, end = true): void {
  const frame = new Uint8Array(4 + payload.length);
  new DataView(frame.buffer).setUint32(0, payload.length);
  frame.set(payload, 4);
  const c = sock.data;
  c.out = frame;
  endAfterFlush.set(sock, end);
  flush(sock);
}

const endAfterFlush = new WeakMap<object, boolean>();

function flush(sock: Socket<Conn>): void {
  const c = sock.data;
  if (!c?.out) return;
  const n = sock.write(c.out);
  c.out = n >= c.out.length ? null : c.out.subarray(Math.max(0, n));
  if (!c.out && endAfterFlush.get(sock)) sock.end();
}

/** The message of the Error among a callback's arguments (Bun's argument order varies). */
function errorIn(args: unknown[]): string {
  const err = args.find((a) => a instanceof Error) as Error | undefined;
  return err?.message ?? "unknown error";
}

/** "ip:port", with IPv6 addresses in brackets ("[::1]:7946"). */
function joinAddr(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function splitAddr(a: string): [string | null, number] {
  const i = a.lastIndexOf(":");
  const port = Number(a.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) return [null, 0];
  let host = a.slice(0, i);
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  return [host, port];
}
