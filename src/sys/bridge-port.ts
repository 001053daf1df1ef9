/**
 * Bridge port flags over plain rtnetlink, what `bridge link set dev X hairpin on` sends:
 * RTM_SETLINK for family AF_BRIDGE with IFLA_PROTINFO { IFLA_BRPORT_MODE }. libnl can
 * only express this through its bridge af-ops on an AF_BRIDGE link object (type asserts
 * that abort the process when wrong), so the few bytes are built here. The socket is
 * opened in the calling thread's network namespace.
 */
import { AF_BRIDGE, NLM_F_ACK, NLM_F_REQUEST, NLMSG_ERROR } from "../../ffi/constants.ts";
import { cstr, loadLibc } from "../../ffi/libc.ts";
import { NLMSGHDR, nlmsgAlign, RTATTR } from "../../ffi/structs.ts";
import { openRouteSocket, parseMessages } from "./rtnl-raw.ts";
import { sysError } from "./libc.ts";

const RTM_SETLINK = 19;
/** struct ifinfomsg { u8 family; u8 pad; u16 type; s32 index; u32 flags; u32 change; } */
const IFINFOMSG = { size: 16, family: 0, index: 4 } as const;
const IFLA_PROTINFO = 12;
const IFLA_BRPORT_MODE = 4;
const NLA_F_NESTED = 0x8000;

/** The RTM_SETLINK request that turns hairpin mode of bridge port `ifindex` on or off (pure). */
export function hairpinRequest(ifindex: number, on: boolean, seq: number): Uint8Array {
  const inner = RTATTR.size + 1; // u8 payload
  const outer = RTATTR.size + nlmsgAlign(inner);
  const len = NLMSGHDR.size + IFINFOMSG.size + outer;
  const buf = new Uint8Array(len);
  const v = new DataView(buf.buffer);
  v.setUint32(NLMSGHDR.len, len, true);
  v.setUint16(NLMSGHDR.type, RTM_SETLINK, true);
  v.setUint16(NLMSGHDR.flags, NLM_F_REQUEST | NLM_F_ACK, true);
  v.setUint32(NLMSGHDR.seq, seq, true);
  let off = NLMSGHDR.size;
  v.setUint8(off + IFINFOMSG.family, AF_BRIDGE);
  v.setInt32(off + IFINFOMSG.index, ifindex, true);
  off += IFINFOMSG.size;
  v.setUint16(off + RTATTR.len, outer, true);
  v.setUint16(off + RTATTR.type, IFLA_PROTINFO | NLA_F_NESTED, true);
  off += RTATTR.size;
  v.setUint16(off + RTATTR.len, inner, true);
  v.setUint16(off + RTATTR.type, IFLA_BRPORT_MODE, true);
  v.setUint8(off + RTATTR.size, on ? 1 : 0);
  return buf;
}

let seqCounter = 1;

/** Sets hairpin mode on bridge port `dev` (a device enslaved to a bridge); throws naming it. */
export function setHairpin(dev: string, on: boolean): void {
  const op = `set hairpin ${on ? "on" : "off"} on bridge port ${dev}`;
  const libc = loadLibc();
  const nameBuf = cstr(dev);
  const ifindex = libc.if_nametoindex(nameBuf);
  if (ifindex === 0) throw sysError(op);
  const fd = openRouteSocket();
  try {
    const seq = seqCounter++;
    const req = hairpinRequest(ifindex, on, seq);
    if (libc.send(fd, req, req.byteLength, 0) < 0) throw sysError(`${op}: send`);
    const buf = new Uint8Array(4096);
    for (;;) {
      const n = libc.recv(fd, buf, buf.byteLength, 0);
      if (n < 0) throw sysError(`${op}: recv`);
      for (const m of parseMessages(buf, Number(n))) {
        if (m.seq !== seq || m.type !== NLMSG_ERROR) continue;
        const code = m.body.byteLength >= 4 ? -m.body.getInt32(0, true) : 0;
        if (code !== 0) throw sysError(op, code);
        return;
      }
    }
  } finally {
    libc.close(fd);
  }
}
