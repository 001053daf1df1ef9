import { describe, expect, test } from "bun:test";
import { NDMSG, NLMSGHDR, nlmsgAlign, RTATTR, SOCKADDR_NL } from "../../ffi/structs.ts";
import { decodeEvents, eventOfType } from "../../src/sys/netlink-events.ts";
import { parseAttributes, parseMessages } from "../../src/sys/rtnl-raw.ts";

/** One netlink message: header + body, padded to 4 bytes. */
function msg(type: number, body: number[] = [], seq = 0): number[] {
  const len = NLMSGHDR.size + body.length;
  const out = new Uint8Array(nlmsgAlign(len));
  const v = new DataView(out.buffer);
  v.setUint32(0, len, true);
  v.setUint16(4, type, true);
  v.setUint32(8, seq, true);
  out.set(body, NLMSGHDR.size);
  return [...out];
}

function attr(type: number, payload: number[]): number[] {
  const len = RTATTR.size + payload.length;
  const out = new Uint8Array(nlmsgAlign(len));
  const v = new DataView(out.buffer);
  v.setUint16(0, len, true);
  v.setUint16(2, type, true);
  out.set(payload, RTATTR.size);
  return [...out];
}

describe("struct layouts match linux/netlink.h", () => {
  test("sizes", () => {
    expect(SOCKADDR_NL.size).toBe(12);
    expect(NLMSGHDR.size).toBe(16);
    expect(NDMSG.size).toBe(12);
    expect(RTATTR.size).toBe(4);
    expect([nlmsgAlign(16), nlmsgAlign(17), nlmsgAlign(20), nlmsgAlign(0)]).toEqual([16, 20, 20, 0]);
  });
});

describe("event decoding", () => {
  test.each([
    [16, { kind: "link", action: "new" }],
    [17, { kind: "link", action: "del" }],
    [20, { kind: "addr", action: "new" }],
    [21, { kind: "addr", action: "del" }],
    [24, { kind: "route", action: "new" }],
    [25, { kind: "route", action: "del" }],
    [28, { kind: "neigh", action: "new" }],
    [29, { kind: "neigh", action: "del" }],
    [3, undefined],
    [2, undefined],
  ])("type %d -> %o", (type, ev) => expect(eventOfType(type)).toEqual(ev as any));

  test("several messages in one datagram, unknown types skipped, odd lengths realigned", () => {
    const buf = new Uint8Array([...msg(25, [1, 2, 3]), ...msg(3), ...msg(28, [9]), ...msg(21)]);
    expect(decodeEvents(buf, buf.length)).toEqual([
      { kind: "route", action: "del" },
      { kind: "neigh", action: "new" },
      { kind: "addr", action: "del" },
    ]);
  });

  test("a truncated or corrupt header ends parsing instead of reading past the data", () => {
    const good = msg(24);
    const buf = new Uint8Array([...good, ...msg(25)]);
    expect(decodeEvents(buf, good.length + 8)).toEqual([{ kind: "route", action: "new" }]);
    const corrupt = new Uint8Array(msg(24));
    new DataView(corrupt.buffer).setUint32(0, 4096, true);
    expect(decodeEvents(corrupt, corrupt.length)).toEqual([]);
    new DataView(corrupt.buffer).setUint32(0, 3, true);
    expect(decodeEvents(corrupt, corrupt.length)).toEqual([]);
  });

  test("messages carry seq and body; attributes are parsed by type", () => {
    const body = [7, 0, 0, 0, 5, 0, 0, 0, 0x80, 0, 2, 0, ...attr(1, [192, 0, 2, 9]), ...attr(2, [2, 0, 0, 0, 0, 9])];
    const [m] = [...parseMessages(new Uint8Array(msg(28, body, 42)), 4096)];
    expect(m!.seq).toBe(42);
    expect(m!.body.getInt32(NDMSG.ifindex, true)).toBe(5);
    const attrs = parseAttributes(m!.body, NDMSG.size);
    expect([...attrs.get(1)!]).toEqual([192, 0, 2, 9]);
    expect([...attrs.get(2)!]).toEqual([2, 0, 0, 0, 0, 9]);
  });
});
