import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { isIPv4 } from "node:net";
import { formatIpBytes, formatIpv4Bytes, ipv4Bytes, ipv4Mask, ipv4ToU32, isDottedQuad, parseIpv4U32, u32ToIpv4 } from "../../src/net/ipv4.ts";

describe("IPv4 text and unsigned 32-bit numbers", () => {
  test.each([
    ["0.0.0.0", 0],
    ["10.244.2.255", 0x0af402ff],
    ["255.255.255.255", 0xffffffff],
    ["192.0.2.1", 0xc0000201],
  ])("%s <-> %d", (text, n) => {
    expect(ipv4ToU32(text)).toBe(n);
    expect(u32ToIpv4(n)).toBe(text);
  });

  test.each(["", "10.1", "10.0.0.1.", "1.2.3.4.5", "01.2.3.4", "256.0.0.1", "1.2.3.-4", " 1.2.3.4", "1.2.3.4 ", "1e1.0.0.1", "::1", "a.b.c.d"])("%j is not a dotted quad", (text) => {
    expect(isDottedQuad(text)).toBe(false);
    expect(ipv4ToU32(text)).toBe(-1);
    expect(() => parseIpv4U32(text)).toThrow(`Cannot parse IPv4 address ${JSON.stringify(text)}`);
  });

  test("isDottedQuad agrees with node:net on dotted strings, and numbers round-trip", () => {
    const octet = fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.constantFrom("00", "01", "007", "", "x"));
    fc.assert(
      fc.property(fc.array(octet, { minLength: 3, maxLength: 5 }), (parts) => {
        const text = parts.join(".");
        expect(isDottedQuad(text)).toBe(isIPv4(text) && !/(^|\.)0\d/.test(text));
      }),
    );
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xffffffff }), (n) => expect(ipv4ToU32(u32ToIpv4(n))).toBe(n)));
  });

  test.each([
    [0, 0],
    [1, 0x80000000],
    [24, 0xffffff00],
    [32, 0xffffffff],
  ])("ipv4Mask(%d) = %d", (prefix, mask) => expect(ipv4Mask(prefix)).toBe(mask));
});

describe("IPv4 bytes", () => {
  test("round trip", () => {
    expect([...ipv4Bytes("10.244.2.255")]).toEqual([10, 244, 2, 255]);
    expect(formatIpv4Bytes(ipv4Bytes("192.0.2.1"))).toBe("192.0.2.1");
    expect(formatIpv4Bytes(new Uint8Array(0))).toBe("0.0.0.0");
  });
  test("refuses IPv6 and junk, naming the input", () => {
    expect(() => ipv4Bytes("fd00::1")).toThrow('"fd00::1" is not an IPv4 address');
    expect(() => ipv4Bytes("10.1")).toThrow('Cannot parse IP address "10.1"');
    expect(() => formatIpv4Bytes(new Uint8Array(16))).toThrow("IPv4 address must be 4 bytes, got 16");
  });
});

describe("formatIpBytes", () => {
  test("4 bytes are IPv4, 16 bytes IPv6 in canonical (compressed) form, network order", () => {
    expect(formatIpBytes(new Uint8Array([192, 0, 2, 10]))).toBe("192.0.2.10");
    const v6 = new Uint8Array(16);
    v6.set([0x20, 0x01, 0x0d, 0xb8], 0);
    v6[15] = 1;
    expect(formatIpBytes(v6)).toBe("2001:db8::1");
    expect(formatIpBytes(new Uint8Array(16))).toBe("::");
    const mapped = new Uint8Array(16);
    mapped.set([0xfe, 0x80], 0);
    mapped.set([0x12, 0x34, 0x56, 0x78], 12);
    expect(formatIpBytes(mapped)).toBe("fe80::1234:5678");
  });

  test("any other length is an error that says so", () => {
    expect(() => formatIpBytes(new Uint8Array(0))).toThrow("IP address must be 4 or 16 bytes, got 0");
    expect(() => formatIpBytes(new Uint8Array(6))).toThrow("IP address must be 4 or 16 bytes, got 6");
  });
});
