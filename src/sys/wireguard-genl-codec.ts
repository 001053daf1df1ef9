/**
 * WireGuard's generic netlink messages as bytes, built and parsed here in plain
 * TypeScript (include/uapi/linux/wireguard.h has the layout): the transport
 * (wireguard-genl.ts) only hands finished messages to libnl-genl's socket and gives back
 * what the kernel answered. Kept pure so every attribute number, nesting flag and
 * sockaddr byte is asserted in unit tests without root or a WireGuard kernel module.
 *
 * Lists nest as in `wg`: WGDEVICE_A_PEERS holds one nest per peer (type 0), a peer's
 * WGPEER_A_ALLOWEDIPS one nest per address (type 0); every nest carries NLA_F_NESTED.
 * A SET that does not fit in one message is split by peers, each message naming the
 * device again (the header's "several messages should be sent one after another").
 */
import {
  GENLMSGHDR, KERNEL_TIMESPEC, NLA_F_NESTED, NLA_TYPE_MASK, NLATTR, SOCKADDR_IN, SOCKADDR_IN6, WG_CMD_GET_DEVICE,
  WG_CMD_SET_DEVICE, WG_GENL_VERSION, WG_KEY_LEN, WGALLOWEDIP_A_CIDR_MASK, WGALLOWEDIP_A_FAMILY, WGALLOWEDIP_A_IPADDR,
  WGDEVICE_A_FWMARK, WGDEVICE_A_IFNAME, WGDEVICE_A_LISTEN_PORT, WGDEVICE_A_PEERS, WGDEVICE_A_PRIVATE_KEY,
  WGPEER_A_ALLOWEDIPS, WGPEER_A_ENDPOINT, WGPEER_A_FLAGS, WGPEER_A_LAST_HANDSHAKE_TIME, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL,
  WGPEER_A_PRESHARED_KEY, WGPEER_A_PUBLIC_KEY, WGPEER_A_RX_BYTES, WGPEER_A_TX_BYTES, WGPEER_F_REMOVE_ME,
  WGPEER_F_REPLACE_ALLOWEDIPS,
} from "../../ffi/wireguard-uapi.ts";
import { AF_INET, AF_INET6, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST } from "../../ffi/constants.ts";
import { NLMSGHDR, nlmsgAlign } from "../../ffi/structs.ts";
import { formatIp, ipFromBytes, ipToBytes, parseCidr, parseIp } from "../net/cidr.ts";
import { u32ToIpv4 } from "../net/ipv4.ts";
import type { WgDeviceConfig, WgDeviceInfo, WgPeerConfig, WgPeerInfo } from "./wireguard.ts";

/** `wg` keeps each message within a page-sized socket buffer; so do we. */
export const MAX_SET_MESSAGE = 8192;

// ------------------------------------------------------------------ keys

/** base64 key → 32 bytes; throws naming `what` (never the value: it may be a secret). */
export function keyBytes(key: string, what: string): Uint8Array {
  const b = Buffer.from(key, "base64");
  if (b.length !== WG_KEY_LEN || b.toString("base64") !== key) throw new Error(`${what}: expected base64 of ${WG_KEY_LEN} bytes`);
  return new Uint8Array(b);
}

export const keyText = (b: Uint8Array): string => Buffer.from(b).toString("base64");
const isZero = (b: Uint8Array) => b.every((x) => x === 0);

// ------------------------------------------------------------------ attributes

/** One attribute: header, payload, padding to 4 bytes. */
export function attr(type: number, payload: Uint8Array): Uint8Array {
  const len = NLATTR.size + payload.length;
  const out = new Uint8Array(nlmsgAlign(len));
  const v = new DataView(out.buffer);
  v.setUint16(NLATTR.len, len, true);
  v.setUint16(NLATTR.type, type, true);
  out.set(payload, NLATTR.size);
  return out;
}

/** A nested attribute (NLA_F_NESTED set) holding `children`. */
export function nest(type: number, children: Uint8Array[]): Uint8Array {
  return attr(type | NLA_F_NESTED, concat(children));
}

export const u8 = (n: number): Uint8Array => Uint8Array.of(n);
export function u16(n: number): Uint8Array {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setUint16(0, n, true);
  return b;
}
export function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
}
/** NLA_NUL_STRING: the bytes and a terminating NUL. */
export const nulString = (s: string): Uint8Array => new TextEncoder().encode(`${s}\0`);

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export interface Attr {
  /** Type without the NLA_F_NESTED / NLA_F_NET_BYTEORDER bits. */
  type: number;
  nested: boolean;
  payload: Uint8Array;
}

/** The attributes in buf[start, end), in order (repeated types kept: lists are repeats of type 0). */
export function parseAttrs(buf: Uint8Array, start = 0, end = buf.length): Attr[] {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Attr[] = [];
  let off = start;
  while (off + NLATTR.size <= end) {
    const len = v.getUint16(off + NLATTR.len, true);
    if (len < NLATTR.size || off + len > end) throw new Error(`parse netlink attributes: attribute at ${off} has length ${len}, ${end - off} bytes left`);
    const type = v.getUint16(off + NLATTR.type, true);
    out.push({ type: type & NLA_TYPE_MASK, nested: (type & NLA_F_NESTED) !== 0, payload: buf.subarray(off + NLATTR.size, off + len) });
    off += nlmsgAlign(len);
  }
  return out;
}

const nestedAttrs = (a: Attr): Attr[] => parseAttrs(a.payload);
const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

// ------------------------------------------------------------------ messages

/** nlmsghdr + genlmsghdr + attributes. The port id stays 0: the kernel knows the sender. */
export function genlMessage(o: { familyId: number; flags: number; seq: number; cmd: number; version?: number; attrs: Uint8Array[] }): Uint8Array {
  const body = concat(o.attrs);
  const len = NLMSGHDR.size + GENLMSGHDR.size + body.length;
  const out = new Uint8Array(len);
  const v = new DataView(out.buffer);
  v.setUint32(NLMSGHDR.len, len, true);
  v.setUint16(NLMSGHDR.type, o.familyId, true);
  v.setUint16(NLMSGHDR.flags, o.flags, true);
  v.setUint32(NLMSGHDR.seq, o.seq >>> 0, true);
  v.setUint8(NLMSGHDR.size + GENLMSGHDR.cmd, o.cmd);
  v.setUint8(NLMSGHDR.size + GENLMSGHDR.version, o.version ?? WG_GENL_VERSION);
  out.set(body, NLMSGHDR.size + GENLMSGHDR.size);
  return out;
}

/** WG_CMD_GET_DEVICE is a dump (NLM_F_DUMP) naming the device by WGDEVICE_A_IFNAME. */
export function encodeGetDevice(familyId: number, seq: number, ifname: string): Uint8Array {
  return genlMessage({ familyId, seq, flags: NLM_F_REQUEST | NLM_F_DUMP, cmd: WG_CMD_GET_DEVICE, attrs: [attr(WGDEVICE_A_IFNAME, nulString(ifname))] });
}

/** struct sockaddr_in / sockaddr_in6 for "ip:port" / "[ip6]:port". */
export function sockaddr(endpoint: string): Uint8Array {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(endpoint) ?? /^([^:]+):(\d+)$/.exec(endpoint);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`encode endpoint ${JSON.stringify(endpoint)}: expected IP:PORT`);
  const ip = parseIp(m[1]!);
  if (ip.family === 4) {
    const b = new Uint8Array(SOCKADDR_IN.size);
    const v = view(b);
    v.setUint16(SOCKADDR_IN.family, AF_INET, true);
    v.setUint16(SOCKADDR_IN.port, port, false);
    v.setUint32(SOCKADDR_IN.addr, Number(ip.addr), false);
    return b;
  }
  const b = new Uint8Array(SOCKADDR_IN6.size);
  const v = view(b);
  v.setUint16(SOCKADDR_IN6.family, AF_INET6, true);
  v.setUint16(SOCKADDR_IN6.port, port, false);
  b.set(ipToBytes(ip), SOCKADDR_IN6.addr);
  return b;
}

/** "ip:port" from a sockaddr_in/in6, or undefined for an unset (AF_UNSPEC) one. */
export function parseSockaddr(b: Uint8Array): string | undefined {
  if (b.length < 2) return undefined;
  const v = view(b);
  const family = v.getUint16(0, true);
  if (family === AF_INET && b.length >= SOCKADDR_IN.size - 8) {
    return `${u32ToIpv4(v.getUint32(SOCKADDR_IN.addr, false))}:${v.getUint16(SOCKADDR_IN.port, false)}`;
  }
  if (family === AF_INET6 && b.length >= SOCKADDR_IN6.addr + 16) {
    return `[${formatIp(ipFromBytes(b.subarray(SOCKADDR_IN6.addr, SOCKADDR_IN6.addr + 16)))}]:${v.getUint16(SOCKADDR_IN6.port, false)}`;
  }
  return undefined;
}

function allowedIp(cidr: string): Uint8Array {
  const c = parseCidr(cidr);
  return nest(0, [attr(WGALLOWEDIP_A_FAMILY, u16(c.family === 4 ? AF_INET : AF_INET6)), attr(WGALLOWEDIP_A_IPADDR, ipToBytes(c)), attr(WGALLOWEDIP_A_CIDR_MASK, u8(c.prefix))]);
}

/** One peer's nest (type 0) for WG_CMD_SET_DEVICE. */
export function encodePeer(p: WgPeerConfig): Uint8Array {
  const key = attr(WGPEER_A_PUBLIC_KEY, keyBytes(p.publicKey, "peer public key"));
  if (p.remove) return nest(0, [key, attr(WGPEER_A_FLAGS, u32(WGPEER_F_REMOVE_ME))]);
  return nest(0, [
    key,
    attr(WGPEER_A_FLAGS, u32(WGPEER_F_REPLACE_ALLOWEDIPS)),
    // All zeros removes a PSK: the kernel keeps whatever it had when the attribute is absent.
    attr(WGPEER_A_PRESHARED_KEY, p.presharedKey ? keyBytes(p.presharedKey, "preshared key") : new Uint8Array(WG_KEY_LEN)),
    attr(WGPEER_A_ENDPOINT, sockaddr(p.endpoint)),
    attr(WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, u16(p.persistentKeepaliveInterval)),
    nest(WGPEER_A_ALLOWEDIPS, p.allowedIps.map(allowedIp)),
  ]);
}

/**
 * WG_CMD_SET_DEVICE as one or more messages (seq, seq+1, ...), each at most `maxBytes`
 * unless a single peer is larger. Device attributes go in the first message only.
 */
export function encodeSetDevice(familyId: number, seq: number, ifname: string, cfg: WgDeviceConfig, maxBytes = MAX_SET_MESSAGE): Uint8Array[] {
  const name = attr(WGDEVICE_A_IFNAME, nulString(ifname));
  const device: Uint8Array[] = [];
  if (cfg.privateKey !== undefined) device.push(attr(WGDEVICE_A_PRIVATE_KEY, keyBytes(cfg.privateKey, "private key")));
  if (cfg.listenPort !== undefined) device.push(attr(WGDEVICE_A_LISTEN_PORT, u16(cfg.listenPort)));
  const peers = cfg.peers.map(encodePeer);
  const fixed = NLMSGHDR.size + GENLMSGHDR.size + name.length + NLATTR.size;
  const messages: Uint8Array[][] = [];
  let head = [name, ...device];
  let batch: Uint8Array[] = [];
  let size = fixed + device.reduce((n, a) => n + a.length, 0);
  const flush = () => {
    messages.push(batch.length ? [...head, nest(WGDEVICE_A_PEERS, batch)] : head);
    head = [name];
    batch = [];
    size = fixed;
  };
  for (const p of peers) {
    if (batch.length && size + p.length > maxBytes) flush();
    batch.push(p);
    size += p.length;
  }
  if (batch.length || messages.length === 0) flush();
  return messages.map((attrs, i) => genlMessage({ familyId, seq: seq + i, flags: NLM_F_REQUEST | NLM_F_ACK, cmd: WG_CMD_SET_DEVICE, attrs }));
}

// ------------------------------------------------------------------ GET replies

function u64(b: Uint8Array): number {
  return b.length >= 8 ? Number(view(b).getBigUint64(0, true)) : 0;
}

function decodePeer(a: Attr): WgPeerInfo {
  const p: WgPeerInfo = { publicKey: "", allowedIps: [], persistentKeepaliveInterval: 0, lastHandshakeMs: 0, rxBytes: 0, txBytes: 0 };
  for (const x of nestedAttrs(a)) {
    switch (x.type) {
      case WGPEER_A_PUBLIC_KEY:
        p.publicKey = keyText(x.payload);
        break;
      case WGPEER_A_PRESHARED_KEY:
        if (!isZero(x.payload)) p.presharedKey = keyText(x.payload);
        break;
      case WGPEER_A_ENDPOINT: {
        const e = parseSockaddr(x.payload);
        if (e) p.endpoint = e;
        break;
      }
      case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
        p.persistentKeepaliveInterval = view(x.payload).getUint16(0, true);
        break;
      case WGPEER_A_LAST_HANDSHAKE_TIME: {
        if (x.payload.length < KERNEL_TIMESPEC.size) break;
        const v = view(x.payload);
        p.lastHandshakeMs = Number(v.getBigInt64(KERNEL_TIMESPEC.sec, true)) * 1000 + Math.floor(Number(v.getBigInt64(KERNEL_TIMESPEC.nsec, true)) / 1e6);
        break;
      }
      case WGPEER_A_RX_BYTES:
        p.rxBytes = u64(x.payload);
        break;
      case WGPEER_A_TX_BYTES:
        p.txBytes = u64(x.payload);
        break;
      case WGPEER_A_ALLOWEDIPS:
        for (const ipNest of nestedAttrs(x)) {
          let family = 0;
          let addr: Uint8Array | undefined;
          let mask = -1;
          for (const y of nestedAttrs(ipNest)) {
            if (y.type === WGALLOWEDIP_A_FAMILY) family = view(y.payload).getUint16(0, true);
            else if (y.type === WGALLOWEDIP_A_IPADDR) addr = y.payload;
            else if (y.type === WGALLOWEDIP_A_CIDR_MASK) mask = y.payload[0]!;
          }
          if ((family === AF_INET && addr?.length === 4) || (family === AF_INET6 && addr?.length === 16)) p.allowedIps.push(`${formatIp(ipFromBytes(addr))}/${mask}`);
        }
        break;
    }
  }
  return p;
}

/**
 * The device from the bodies (after nlmsghdr) of a GET_DEVICE dump's messages, in order.
 * A peer split over messages comes back as one (same key, more allowed IPs), as the
 * header asks of the receiver.
 */
export function decodeGetDevice(bodies: Uint8Array[]): WgDeviceInfo {
  const dev: WgDeviceInfo = { listenPort: 0, fwmark: 0, peers: [] };
  for (const body of bodies) {
    for (const a of parseAttrs(body, GENLMSGHDR.size)) {
      if (a.type === WGDEVICE_A_PRIVATE_KEY && a.payload.length === WG_KEY_LEN && !isZero(a.payload)) dev.privateKey = keyText(a.payload);
      else if (a.type === WGDEVICE_A_LISTEN_PORT) dev.listenPort = view(a.payload).getUint16(0, true);
      else if (a.type === WGDEVICE_A_FWMARK) dev.fwmark = view(a.payload).getUint32(0, true);
      else if (a.type === WGDEVICE_A_PEERS) {
        for (const pa of nestedAttrs(a)) {
          const p = decodePeer(pa);
          const last = dev.peers[dev.peers.length - 1];
          if (last && last.publicKey === p.publicKey) last.allowedIps.push(...p.allowedIps);
          else dev.peers.push(p);
        }
      }
    }
  }
  return dev;
}
