/**
 * A plain rtnetlink socket through libc, for the two jobs libnl's caches do badly:
 * receiving multicast change notifications (netlink-events.ts) and dumping the bridge
 * FDB (libnl keys FDB objects by MAC, so two remotes of one MAC collapse into one).
 * Messages are parsed here with DataView; only the fields weft needs.
 */
import {
  AF_BRIDGE, AF_NETLINK, EINTR, NDA_DST, NDA_LLADDR, NETLINK_ROUTE, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE,
  NLMSG_ERROR, RTM_GETNEIGH, RTM_NEWNEIGH, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_RAW,
} from "../../ffi/constants.ts";
import { loadLibc } from "../../ffi/libc.ts";
import { NDMSG, NLMSGHDR, nlmsgAlign, RTATTR, SOCKADDR_NL } from "../../ffi/structs.ts";
import { formatIpBytes } from "../net/ipv4.ts";
import { formatMac } from "../net/mac.ts";
import { errno, strerror, sysError } from "./libc.ts";

export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  /** The message body after the 16-byte header (a view, not a copy). */
  body: DataView;
}

/** Splits one datagram into netlink messages; stops at a truncated or malformed header. */
export function* parseMessages(buf: Uint8Array, length: number): Generator<NlMessage> {
  const view = new DataView(buf.buffer, buf.byteOffset, Math.min(length, buf.byteLength));
  let off = 0;
  while (off + NLMSGHDR.size <= view.byteLength) {
    const len = view.getUint32(off + NLMSGHDR.len, true);
    if (len < NLMSGHDR.size || off + len > view.byteLength) return;
    yield {
      type: view.getUint16(off + NLMSGHDR.type, true),
      flags: view.getUint16(off + NLMSGHDR.flags, true),
      seq: view.getUint32(off + NLMSGHDR.seq, true),
      body: new DataView(view.buffer, view.byteOffset + off + NLMSGHDR.size, len - NLMSGHDR.size),
    };
    off += nlmsgAlign(len);
  }
}

/** Route attributes of a message body starting at `offset`, as type -> payload bytes. */
export function parseAttributes(body: DataView, offset: number): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  let off = offset;
  while (off + RTATTR.size <= body.byteLength) {
    const len = body.getUint16(off + RTATTR.len, true);
    if (len < RTATTR.size || off + len > body.byteLength) break;
    const type = body.getUint16(off + RTATTR.type, true) & 0x3fff; // drop NLA_F_NESTED/NET_BYTEORDER
    out.set(type, new Uint8Array(body.buffer, body.byteOffset + off + RTATTR.size, len - RTATTR.size));
    off += nlmsgAlign(len);
  }
  return out;
}

/** Opens an AF_NETLINK/NETLINK_ROUTE socket bound to `groups` (RTMGRP_* bitmask). */
export function openRouteSocket({ groups = 0, nonblock = false }: { groups?: number; nonblock?: boolean } = {}): number {
  const libc = loadLibc();
  const fd = libc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), NETLINK_ROUTE);
  if (fd < 0) throw sysError("open netlink route socket");
  const addr = new Uint8Array(SOCKADDR_NL.size);
  const v = new DataView(addr.buffer);
  v.setUint16(SOCKADDR_NL.family, AF_NETLINK, true);
  v.setUint32(SOCKADDR_NL.groups, groups >>> 0, true);
  if (libc.bind(fd, addr, addr.byteLength) < 0) {
    const e = errno();
    libc.close(fd);
    throw sysError(`bind netlink route socket to groups 0x${groups.toString(16)}`, e);
  }
  return fd;
}

export interface FdbEntry {
  ifindex: number;
  mac: string;
  /** IPv4 or IPv6 remote (VXLAN dst); entries without one are skipped. */
  dst: string;
}

let dumpSeq = 1;

/** Dumps the bridge FDB (`bridge fdb show`) and returns the entries with an IPv4 or IPv6 dst. */
export function dumpFdb(): FdbEntry[] {
  const libc = loadLibc();
  const fd = openRouteSocket();
  try {
    const seq = dumpSeq++;
    const req = new Uint8Array(NLMSGHDR.size + NDMSG.size);
    const v = new DataView(req.buffer);
    v.setUint32(NLMSGHDR.len, req.byteLength, true);
    v.setUint16(NLMSGHDR.type, RTM_GETNEIGH, true);
    v.setUint16(NLMSGHDR.flags, NLM_F_REQUEST | NLM_F_DUMP, true);
    v.setUint32(NLMSGHDR.seq, seq, true);
    v.setUint8(NLMSGHDR.size + NDMSG.family, AF_BRIDGE);
    if (libc.send(fd, req, req.byteLength, 0) < 0) throw sysError("dump fdb: send");
    const out: FdbEntry[] = [];
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      // Blocking: the kernel answers a dump at once, part by part.
      const n = libc.recv(fd, buf, buf.byteLength, 0);
      if (n < 0) {
        const e = errno();
        if (e === EINTR) continue;
        throw sysError("dump fdb: recv", e);
      }
      for (const m of parseMessages(buf, Number(n))) {
        if (m.seq !== seq) continue;
        if (m.type === NLMSG_DONE) return out;
        if (m.type === NLMSG_ERROR) {
          const code = m.body.byteLength >= 4 ? -m.body.getInt32(0, true) : 0;
          throw new Error(`dump fdb: ${code ? strerror(code) : "netlink error"}`);
        }
        if (m.type !== RTM_NEWNEIGH || m.body.byteLength < NDMSG.size) continue;
        const attrs = parseAttributes(m.body, NDMSG.size);
        const dst = attrs.get(NDA_DST);
        const ll = attrs.get(NDA_LLADDR);
        if (!dst || (dst.length !== 4 && dst.length !== 16) || !ll) continue;
        const mac = formatMac(ll);
        if (mac) out.push({ ifindex: m.body.getInt32(NDMSG.ifindex, true), mac, dst: formatIpBytes(dst) });
      }
    }
  } finally {
    libc.close(fd);
  }
}
