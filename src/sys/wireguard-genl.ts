/**
 * The kernel WireGuard: the device is a link of kind "wireguard" made through
 * rtnetlink (libnl-route-3), and configured and read through generic netlink
 * (WG_CMD_SET_DEVICE / WG_CMD_GET_DEVICE) on a libnl-genl-3 socket. The messages are
 * built and parsed by wireguard-genl-codec.ts; libnl opens the socket, resolves the
 * family id and moves the bytes. Every call is a synchronous round trip: a SET waits for
 * the kernel's ack of each message, a GET reads the dump to its NLMSG_DONE.
 *
 * The kernel reports a missing module as "Operation not supported" on link creation and
 * as an unknown family on resolve; wireguard-sys.ts then falls back to wireguard-go.
 */
import { ptr, toArrayBuffer, type Pointer } from "bun:ffi";
import { NETLINK_ROUTE, NLE_NOMEM, NLM_F_CREATE, NLM_F_EXCL, NLMSG_DONE, NLMSG_ERROR } from "../../ffi/constants.ts";
import { cstr, loadLibc, readCString, strerror } from "../../ffi/libc.ts";
import { loadLibnl, type LibnlLibraries } from "../../ffi/libnl.ts";
import { loadLibnlGenl, type LibnlGenlLibraries } from "../../ffi/libnl-genl.ts";
import { NLMSGHDR, SOCKADDR_NL } from "../../ffi/structs.ts";
import { WG_GENL_NAME } from "../../ffi/wireguard-uapi.ts";
import { NetlinkError } from "./libnl-codec.ts";
import { parseMessages } from "./rtnl-raw.ts";
import { decodeGetDevice, encodeGetDevice, encodeSetDevice } from "./wireguard-genl-codec.ts";
import type { WgDeviceConfig, WgDeviceInfo } from "./wireguard.ts";

/** libnl's NLE_OPNOTSUPP: the kernel has no such link kind (no wireguard module). */
export const NLE_OPNOTSUPP = 10;

/** A libnl socket connected to `protocol`; closed by close(). */
class LibnlSocket {
  protected sk: Pointer | null;
  protected readonly nl: LibnlLibraries["nl"];

  constructor(protected readonly what: string, connect: (sk: Pointer) => number) {
    this.nl = loadLibnl().nl;
    const sk = this.nl.nl_socket_alloc();
    if (!sk) throw new NetlinkError(`open ${what} socket`, "Out of memory", NLE_NOMEM);
    const rc = connect(sk);
    if (rc < 0) {
      this.nl.nl_socket_free(sk);
      throw new NetlinkError(`open ${what} socket`, this.errText(rc), -rc);
    }
    this.sk = sk;
  }

  protected errText(rc: number): string {
    return readCString(this.nl.nl_geterror(rc)) ?? `libnl error ${rc}`;
  }

  protected sock(op: string): Pointer {
    if (!this.sk) throw new NetlinkError(op, "socket is closed");
    return this.sk;
  }

  close(): void {
    if (this.sk) this.nl.nl_socket_free(this.sk);
    this.sk = null;
  }
}

/**
 * A generic netlink socket that sends prepared messages and returns the bodies of the
 * data messages the kernel answers with. Used for WireGuard and, in tests, for the
 * always-present controller family, which proves the transport on any kernel.
 */
export class GenlSocket extends LibnlSocket {
  private readonly lib: LibnlGenlLibraries;
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private readonly families = new Map<string, number>();

  constructor() {
    const lib = loadLibnlGenl();
    super("generic netlink", (sk) => lib.genl.genl_connect(sk));
    this.lib = lib;
    this.lib.transfer.nl_socket_enable_msg_peek(this.sock("open generic netlink socket"));
  }

  /** The family id of `name` (e.g. "wireguard"); throws "Object not found" when the kernel has no such family. */
  family(name: string): number {
    const known = this.families.get(name);
    if (known !== undefined) return known;
    const op = `resolve generic netlink family ${name}`;
    const nameBuf = cstr(name);
    const id = this.lib.genl.genl_ctrl_resolve(this.sock(op), nameBuf);
    if (id < 0) throw new NetlinkError(op, this.errText(id), -id);
    this.families.set(name, id);
    return id;
  }

  /**
   * Sends each message (stamped with the next sequence number) and reads the kernel's
   * answers to it: data messages are collected (copied), an ack or NLMSG_DONE ends that
   * message, an error throws with the errno text.
   */
  exchange(op: string, messages: Uint8Array[]): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const m of messages) {
      const seq = (this.seq = (this.seq + 1) % 0x7fffffff);
      new DataView(m.buffer, m.byteOffset).setUint32(NLMSGHDR.seq, seq, true);
      const sent = this.lib.transfer.nl_sendto(this.sock(op), m, m.byteLength);
      if (sent < 0) throw new NetlinkError(op, this.errText(sent), -sent);
      this.receiveUntilDone(op, seq, out);
    }
    return out;
  }

  private receiveUntilDone(op: string, seq: number, out: Uint8Array[]): void {
    const peer = new Uint8Array(SOCKADDR_NL.size);
    const bufOut = new BigUint64Array(1);
    for (;;) {
      const n = this.lib.transfer.nl_recv(this.sock(op), peer, ptr(bufOut), null);
      if (n < 0) throw new NetlinkError(op, this.errText(n), -n);
      const at = Number(bufOut[0]);
      if (n === 0 || at === 0) throw new NetlinkError(op, "the kernel closed the netlink socket");
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(toArrayBuffer(at as Pointer, 0, n)).slice();
      } finally {
        loadLibc().free(at as Pointer);
      }
      for (const msg of parseMessages(bytes, n)) {
        if (msg.seq !== seq) continue; // a late answer to an earlier request
        if (msg.type === NLMSG_ERROR || msg.type === NLMSG_DONE) {
          const code = msg.body.byteLength >= 4 ? msg.body.getInt32(0, true) : 0;
          if (code < 0) throw new NetlinkError(op, strerror(-code), undefined);
          return;
        }
        out.push(new Uint8Array(msg.body.buffer, msg.body.byteOffset, msg.body.byteLength).slice());
      }
    }
  }
}

/** WG_CMD_GET_DEVICE / WG_CMD_SET_DEVICE on a kernel WireGuard device. */
export class KernelWireguard {
  private readonly genl = new GenlSocket();

  get(name: string): WgDeviceInfo {
    const op = `get wireguard device ${name}`;
    const family = this.genl.family(WG_GENL_NAME);
    return decodeGetDevice(this.genl.exchange(op, [encodeGetDevice(family, 0, name)]));
  }

  set(name: string, cfg: WgDeviceConfig): void {
    const op = `configure wireguard device ${name} (${cfg.peers.length} peer change(s))`;
    const family = this.genl.family(WG_GENL_NAME);
    this.genl.exchange(op, encodeSetDevice(family, 0, name, cfg));
  }

  close(): void {
    this.genl.close();
  }
}

/** Creates a link of kind "wireguard" (down, no address); "Operation not supported" without the module. */
export function createKernelWireguardLink(name: string): void {
  const op = `create wireguard link ${name}`;
  const rt = loadLibnl().route;
  const kind = loadLibnlGenl().linkKind;
  const sock = new RouteSocket();
  try {
    const link = rt.rtnl_link_alloc();
    if (!link) throw new NetlinkError(op, "Out of memory", NLE_NOMEM);
    try {
      const nameBuf = cstr(name);
      const kindBuf = cstr("wireguard");
      rt.rtnl_link_set_name(link, nameBuf);
      sock.check(op, kind.rtnl_link_set_type(link, kindBuf));
      sock.check(op, rt.rtnl_link_add(sock.pointer(op), link, NLM_F_CREATE | NLM_F_EXCL));
    } finally {
      rt.rtnl_link_put(link);
    }
  } finally {
    sock.close();
  }
}

class RouteSocket extends LibnlSocket {
  constructor() {
    const nl = loadLibnl().nl;
    super("rtnetlink", (sk) => nl.nl_connect(sk, NETLINK_ROUTE));
  }
  pointer(op: string): Pointer {
    return this.sock(op);
  }
  check(op: string, rc: number): void {
    if (rc < 0) throw new NetlinkError(op, this.errText(rc), -rc);
  }
}
