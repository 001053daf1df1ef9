import { describe, expect, test } from "bun:test";
import { formatMac, hex, isUsableMac, macBytes, unhex } from "../../src/net/mac.ts";

describe("MAC bytes", () => {
  test("round trip, lowercased", () => {
    expect([...macBytes("02:AA:00:00:0f:ff")]).toEqual([2, 0xaa, 0, 0, 0x0f, 0xff]);
    expect(formatMac(macBytes("02:AA:00:00:0f:ff"))).toBe("02:aa:00:00:0f:ff");
    expect(formatMac(new Uint8Array(0))).toBeUndefined();
  });
  test.each(["02:aa:00:00:00", "02-aa-00-00-00-01", "02:aa:00:00:00:0g", "", "02:aa:00:00:00:001"])("refuses %j", (m) => {
    expect(() => macBytes(m)).toThrow(`${JSON.stringify(m)} is not a MAC address (aa:bb:cc:dd:ee:ff)`);
  });
});

describe("hex", () => {
  test("bytes to lowercase hex and back, with or without separators", () => {
    const b = new Uint8Array([0, 0x0f, 0xab, 0xff]);
    expect(hex(b)).toBe("000fabff");
    expect(hex(b, ":")).toBe("00:0f:ab:ff");
    expect([...unhex("000fabff")]).toEqual([...b]);
    expect([...unhex("00:0f:ab:ff")]).toEqual([...b]);
  });
});

describe("isUsableMac", () => {
  test.each([
    ["02:aa:00:00:00:01", true],
    ["3e:12:34:56:78:9a", true],
    ["00:00:00:00:00:00", false],
    ["03:aa:00:00:00:01", false],
    ["02:AA:00:00:00:01", false],
    ["02:aa:00:00:00", false],
  ])("%s -> %p", (mac, ok) => expect(isUsableMac(mac)).toBe(ok));
});
