/**
 * The real wire: UDP datagrams for probes and gossip, TCP for push-pull streams, both
 * on the same port number (Bun.udpSocket, Bun.listen/Bun.connect). A stream carries
 * one length-prefixed request and one length-prefixed reply ([u32 big-endian][bytes]),
 * then closes. Sizes are checked against the prefix before anything is buffered.
 */
import type { Socket, TCPSocketListener } from "bun";
import type { Logger } from "../log.ts";
import type { PacketHandler, StreamHandler, Transport } from "./transport.ts";

export interface UdpTransportOptions {
  /** Address to bind, e.g. "192.0.2.10", "127.0.0.2" or "::1" (then addresses read "[::1]:port"). */
  bindAddr: string;
  /** Port for both UDP and TCP; 0 picks a free one (the same number for both). */
  port: number;
  logger: Logger;
  /** Largest datagram accepted, bytes; larger ones are dropped (default 65507). */
  maxPacket?: number;
  /** Most concurrent incoming streams; more are refused (default 32). Bounds what unauthenticated peers can make us buffer: maxStreams × maxBytes. */
  maxStreams?: number;
  /** Server side: an incoming stream idle this long is closed, seconds (default 10). */
  streamIdleSeconds?: number;
}

interface Conn {
  buf: Uint8Array[];
  len: number;
  need: number;
  max: number;
  out: Uint8Array | null;
  onMessage(msg: Uint8Array): void;
  onFail(err: Error): void;
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

async function bind({ bindAddr, port, logger, maxPacket = 65_507, maxStreams = 32, streamIdleSeconds = 10 }: UdpTransportOptions): Promise<Transport> {
  const log = logger.child("transport");
  let packetHandler: PacketHandler | null = null;
  let streamHandler: StreamHandler | null = null;
  let streamMax = 1 << 20;
  let active = 0;
  let closed = false;

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
          if (closed || !streamHandler || active >= maxStreams) {
            sock.end();
            return;
          }
          active++;
          sock.timeout(streamIdleSeconds);
          const from = joinAddr(sock.remoteAddress, sock.remotePort);
          sock.data = newConn(streamMax, (req) => {
            streamHandler!(req, from).then(
              (reply) => writeFrame(sock, reply),
              (err: unknown) => {
                log.debug("stream handler failed", { from, err: (err as Error)?.message ?? String(err) });
                sock.end();
              },
            );
          }, () => sock.end());
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
          if (sock.data) {
            active--;
            sock.data.done = true;
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
        let sock: Socket<Conn> | null = null;
        let settled = false;
        const settle = (err: Error | null, v?: Uint8Array) => {
          if (settled) return;
          settled = true;
          signal.removeEventListener("abort", onAbort);
          sock?.end();
          if (err) reject(err);
          else resolve(v!);
        };
        const onAbort = () => settle(new Error(`stream to ${to}: aborted`));
        if (signal.aborted) return onAbort();
        signal.addEventListener("abort", onAbort);
        const conn = newConn(maxBytes, (reply) => settle(null, reply), (err) => settle(err));
        Bun.connect<Conn>({
          hostname: host,
          port: p,
          data: conn,
          socket: {
            binaryType: "uint8array",
            open(s) {
              sock = s;
              if (settled) return void s.end();
              writeFrame(s, request, false);
            },
            data(s, data) {
              feed(s.data, data as Uint8Array);
            },
            drain(s) {
              flush(s);
            },
            close() {
              settle(new Error(`stream to ${to}: closed without a reply`));
            },
            connectError(...args: unknown[]) {
              settle(new Error(`stream to ${to}: ${errorIn(args)}`));
            },
            error(...args: unknown[]) {
              settle(new Error(`stream to ${to}: ${errorIn(args)}`));
            },
          },
        }).catch((err: Error) => settle(new Error(`stream to ${to}: ${err.message}`)));
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
  return { buf: [], len: 0, need: -1, max, out: null, onMessage, onFail, done: false };
}

/** Accumulates bytes until one full frame arrived; rejects frames over the limit from their prefix. */
function feed(c: Conn, data: Uint8Array): void {
  if (c.done) return;
  c.buf.push(data.slice());
  c.len += data.length;
  if (c.need < 0 && c.len >= 4) {
    const all = concat(c.buf, c.len);
    c.buf = [all];
    c.need = new DataView(all.buffer, all.byteOffset, 4).getUint32(0);
    if (c.need > c.max) {
      c.done = true;
      c.onFail(new Error(`message of ${c.need} bytes exceeds limit ${c.max}`));
      return;
    }
  }
  if (c.need >= 0 && c.len >= 4 + c.need) {
    c.done = true;
    const all = concat(c.buf, c.len);
    c.onMessage(all.subarray(4, 4 + c.need));
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

function concat(parts: Uint8Array[], len: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
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
