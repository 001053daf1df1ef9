/**
 * WireGuard generic netlink messages at the attribute level, against the layout of
 * include/uapi/linux/wireguard.h: attribute numbers, NLA_F_NESTED on every nest, the
 * type-0 list elements, sockaddr_in bytes, padding, splitting and the dump coalescing.
 * Expected bytes are written out by hand, not produced by the encoder under test.
 */
import { describe, expect, test } from "bun:test";
import {
  attr, decodeGetDevice, encodeGetDevice, encodePeer, encodeSetDevice, keyBytes, nest, parseAttrs, parseSockaddr, sockaddr,
  u16, u32,
} from "../../src/sys/wireguard-genl-codec.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const unhex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const key = (n: number) => Buffer.alloc(32, n).toString("base64");
const keyHex = (n: number) => n.toString(16).padStart(2, "0").repeat(32);
const FAMILY = 0x1d;

/** Raw attribute view: the type as on the wire (flags included), and the payload as hex. */
function rawAttrs(b: Uint8Array, start = 0): { rawType: number; len: number; payload: Uint8Array }[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out = [];
  let off = start;
  while (off + 4 <= b.length) {
    const len = v.getUint16(off, true);
    out.push({ rawType: v.getUint16(off + 2, true), len, payload: b.subarray(off + 4, off + len) });
    off += (len + 3) & ~3;
  }
  expect(off).toBe(b.length); // attributes tile the buffer exactly, padding included
  return out;
}

describe("WG_CMD_GET_DEVICE request", () => {
  test("is a dump naming the device by WGDEVICE_A_IFNAME, byte for byte", () => {
    expect(hex(encodeGetDevice(FAMILY, 7, "weft-wg"))).toBe(
      [
        "20000000", // nlmsg_len 32
        "1d00", // nlmsg_type = family id
        "0103", // NLM_F_REQUEST | NLM_F_DUMP (0x301)
        "07000000", // seq
        "00000000", // port id (the kernel fills in the sender)
        "00", // cmd WG_CMD_GET_DEVICE
        "01", // WG_GENL_VERSION
        "0000", // reserved
        "0c00", // nla_len 12 = 4 + "weft-wg\0"
        "0200", // WGDEVICE_A_IFNAME
        hex(new TextEncoder().encode("weft-wg\0")),
      ].join(""),
    );
  });
});

describe("WG_CMD_SET_DEVICE", () => {
  const cfg = {
    privateKey: key(1),
    listenPort: 51820,
    peers: [{ publicKey: key(2), presharedKey: key(3), endpoint: "192.0.2.12:51820", persistentKeepaliveInterval: 25, allowedIps: ["10.244.2.0/24"] }],
  };
  const [msg, ...more] = encodeSetDevice(FAMILY, 9, "weft-wg", cfg);

  test("header: family id, REQUEST|ACK, cmd 1, version 1", () => {
    expect(more).toEqual([]);
    const v = new DataView(msg!.buffer);
    expect(v.getUint32(0, true)).toBe(msg!.length);
    expect(v.getUint16(4, true)).toBe(FAMILY);
    expect(v.getUint16(6, true)).toBe(0x5);
    expect(v.getUint32(8, true)).toBe(9);
    expect([msg![16], msg![17], msg![18], msg![19]]).toEqual([1, 1, 0, 0]);
  });

  test("device attributes: IFNAME 2, PRIVATE_KEY 3, LISTEN_PORT 6 (u16, host order), PEERS 8 nested", () => {
    const top = rawAttrs(msg!, 20);
    expect(top.map((a) => [a.rawType, a.len])).toEqual([
      [0x0002, 12],
      [0x0003, 36],
      [0x0006, 6],
      [0x8008, top[3]!.len],
    ]);
    expect(hex(top[1]!.payload)).toBe(keyHex(1));
    expect(hex(top[2]!.payload)).toBe("6cca"); // 51820 little-endian
  });

  test("a peer: one type-0 nest with PUBLIC_KEY 1, FLAGS 3 = REPLACE_ALLOWEDIPS, PSK 2, ENDPOINT 4, KEEPALIVE 5, ALLOWEDIPS 9", () => {
    const peers = rawAttrs(rawAttrs(msg!, 20)[3]!.payload);
    expect(peers.map((p) => p.rawType)).toEqual([0x8000]);
    const p = rawAttrs(peers[0]!.payload);
    expect(p.map((a) => a.rawType)).toEqual([0x0001, 0x0003, 0x0002, 0x0004, 0x0005, 0x8009]);
    expect(hex(p[0]!.payload)).toBe(keyHex(2));
    expect(hex(p[1]!.payload)).toBe("02000000"); // WGPEER_F_REPLACE_ALLOWEDIPS
    expect(hex(p[2]!.payload)).toBe(keyHex(3));
    // struct sockaddr_in: family AF_INET in host order, port and address in network order, 8 zero bytes
    expect(hex(p[3]!.payload)).toBe("0200" + "ca6c" + "c000020c" + "0000000000000000");
    expect(hex(p[4]!.payload)).toBe("1900"); // 25 s, u16
    const ips = rawAttrs(p[5]!.payload);
    expect(ips.map((a) => a.rawType)).toEqual([0x8000]);
    // FAMILY 1 (u16 AF_INET), IPADDR 2 (struct in_addr), CIDR_MASK 3 (u8, padded to 8 bytes)
    expect(hex(ips[0]!.payload)).toBe("0600010002000000" + "080002000af40200" + "0500030018000000");
  });

  test("removing a peer sends its key and WGPEER_F_REMOVE_ME only", () => {
    expect(hex(encodePeer({ publicKey: key(4), remove: true }))).toBe("30000080" + "24000100" + keyHex(4) + "08000300" + "01000000");
  });

  test("no PSK is sent as 32 zero bytes, which removes one the device had", () => {
    const p = rawAttrs(rawAttrs(encodePeer({ ...cfg.peers[0]!, presharedKey: null }))[0]!.payload);
    expect(p[2]!.rawType).toBe(2);
    expect(hex(p[2]!.payload)).toBe("00".repeat(32));
  });

  test("without device fields only IFNAME and PEERS are sent", () => {
    const [m] = encodeSetDevice(FAMILY, 1, "weft-wg", { peers: [{ publicKey: key(2), remove: true }] });
    expect(rawAttrs(m!, 20).map((a) => a.rawType)).toEqual([0x0002, 0x8008]);
    const [empty] = encodeSetDevice(FAMILY, 1, "weft-wg", { peers: [] });
    expect(rawAttrs(empty!, 20).map((a) => a.rawType)).toEqual([0x0002]);
  });

  test("a large change splits by peers: each message names the device, device fields only in the first", () => {
    const peers = Array.from({ length: 200 }, (_, i) => ({
      publicKey: Buffer.alloc(32, i + 1).toString("base64"),
      presharedKey: null,
      endpoint: `192.0.2.${(i % 250) + 1}:51820`,
      persistentKeepaliveInterval: 0,
      allowedIps: [`10.244.${i}.0/24`],
    }));
    const msgs = encodeSetDevice(FAMILY, 100, "weft-wg", { privateKey: key(1), listenPort: 51820, peers });
    expect(msgs.length).toBeGreaterThan(1);
    const seen: string[] = [];
    msgs.forEach((m, i) => {
      expect(m.length).toBeLessThanOrEqual(8192);
      expect(new DataView(m.buffer).getUint32(8, true)).toBe(100 + i);
      const top = rawAttrs(m, 20);
      expect(top[0]!.rawType).toBe(2);
      expect(top.some((a) => a.rawType === 3)).toBe(i === 0);
      for (const p of rawAttrs(top[top.length - 1]!.payload)) seen.push(hex(rawAttrs(p.payload)[0]!.payload));
    });
    expect(seen).toEqual(peers.map((p) => Buffer.from(p.publicKey, "base64").toString("hex")));
  });

  test("keys are checked without echoing them", () => {
    expect(() => keyBytes("c2VjcmV0", "private key")).toThrow("private key: expected base64 of 32 bytes");
    try {
      encodeSetDevice(FAMILY, 1, "weft-wg", { privateKey: "c2VjcmV0", peers: [] });
    } catch (e) {
      expect((e as Error).message).not.toContain("c2VjcmV0");
    }
    expect(() => sockaddr("192.0.2.1")).toThrow(/expected IP:PORT/);
  });
});

describe("sockaddr", () => {
  test("IPv6 endpoints use sockaddr_in6 (28 bytes) and read back", () => {
    const b = sockaddr("[2001:db8::1]:51821");
    expect(b.length).toBe(28);
    expect(hex(b.subarray(0, 8))).toBe("0a00" + "ca6d" + "00000000");
    expect(hex(b.subarray(8, 24))).toBe("20010db8000000000000000000000001");
    expect(parseSockaddr(b)).toBe("[2001:db8::1]:51821");
    expect(parseSockaddr(unhex("0200ca6cc000020c0000000000000000"))).toBe("192.0.2.12:51820");
    expect(parseSockaddr(new Uint8Array(16))).toBeUndefined(); // AF_UNSPEC: no endpoint yet
  });
  test("IPv6 allowed IPs: FAMILY AF_INET6 (10), a 16-byte in6_addr, the prefix length", () => {
    const p = rawAttrs(rawAttrs(encodePeer({ publicKey: key(2), presharedKey: null, endpoint: "[2001:db8::12]:51821", persistentKeepaliveInterval: 0, allowedIps: ["10.244.2.0/24", "fd00:10:244:2::/64"] }))[0]!.payload);
    const ips = rawAttrs(p[5]!.payload);
    expect(ips.map((a) => a.rawType)).toEqual([0x8000, 0x8000]);
    expect(hex(ips[1]!.payload)).toBe("06000100" + "0a000000" + "14000200" + "fd000010024400020000000000000000" + "05000300" + "40000000");
  });
});

describe("WG_CMD_GET_DEVICE replies", () => {
  const genl = (attrs: Uint8Array[]) => new Uint8Array([0x00, 0x01, 0x00, 0x00, ...attrs.flatMap((a) => [...a])]);
  const timespec = unhex("40e2010000000000" + "00e1f50500000000"); // 123456 s, 100 000 000 ns
  const u64 = (n: bigint) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, n, true);
    return b;
  };
  const ipNest = (a: string, mask: number) => nest(0, [attr(1, u16(2)), attr(2, unhex(a)), attr(3, Uint8Array.of(mask))]);

  test("device fields, peers, and a peer continued in the next message coalesce", () => {
    const first = genl([
      attr(1, u32(7)),
      attr(2, new TextEncoder().encode("weft-wg\0")),
      attr(3, unhex(keyHex(1))),
      attr(4, unhex(keyHex(9))),
      attr(6, u16(51820)),
      attr(7, u32(0)),
      nest(8, [
        nest(0, [
          attr(1, unhex(keyHex(2))),
          attr(2, new Uint8Array(32)),
          attr(4, unhex("0200ca6cc000020c0000000000000000")),
          attr(5, u16(0)),
          attr(6, timespec),
          attr(7, u64(1000n)),
          attr(8, u64(2000n)),
          nest(9, [ipNest("0af40200", 24)]),
          attr(10, u32(1)),
        ]),
      ]),
    ]);
    // The kernel repeats the peer with only its key and the allowed IPs that did not fit.
    const second = genl([attr(2, new TextEncoder().encode("weft-wg\0")), nest(8, [nest(0, [attr(1, unhex(keyHex(2))), nest(9, [ipNest("0af40300", 24)])]), nest(0, [attr(1, unhex(keyHex(5))), attr(2, unhex(keyHex(6)))])])]);
    expect(decodeGetDevice([first, second])).toEqual({
      privateKey: key(1),
      listenPort: 51820,
      fwmark: 0,
      peers: [
        { publicKey: key(2), endpoint: "192.0.2.12:51820", allowedIps: ["10.244.2.0/24", "10.244.3.0/24"], persistentKeepaliveInterval: 0, lastHandshakeMs: 123456100, rxBytes: 1000, txBytes: 2000 },
        { publicKey: key(5), presharedKey: key(6), allowedIps: [], persistentKeepaliveInterval: 0, lastHandshakeMs: 0, rxBytes: 0, txBytes: 0 },
      ],
    });
  });

  test("an IPv6 peer reads back: sockaddr_in6 endpoint, AF_INET6 allowed IPs", () => {
    const ip6Nest = (a: string, mask: number) => nest(0, [attr(1, u16(10)), attr(2, unhex(a)), attr(3, Uint8Array.of(mask))]);
    const reply = genl([attr(6, u16(51821)), nest(8, [nest(0, [attr(1, unhex(keyHex(2))), attr(4, sockaddr("[2001:db8::12]:51821")), nest(9, [ip6Nest("fd000010024400020000000000000000", 64), ipNest("0af40200", 24)])])])]);
    expect(decodeGetDevice([reply]).peers.map((x) => [x.endpoint, x.allowedIps])).toEqual([["[2001:db8::12]:51821", ["fd00:10:244:2::/64", "10.244.2.0/24"]]]);
  });

  test("a device without a private key reports none", () => {
    expect(decodeGetDevice([genl([attr(3, new Uint8Array(32)), attr(6, u16(0))])])).toEqual({ listenPort: 0, fwmark: 0, peers: [] });
  });

  test("a truncated attribute is an error, not a silent misread", () => {
    expect(() => parseAttrs(unhex("0800010001"))).toThrow(/length 8, 5 bytes left/);
    expect(parseAttrs(unhex("0500038018000000"))).toEqual([{ type: 3, nested: true, payload: unhex("18") }]);
  });
});
