import { describe, expect, test } from "bun:test";
import {
  canonicalCidr,
  contains,
  countBetween,
  formatCidr,
  formatIp,
  nthAddress,
  overlaps,
  parseCidr,
  parseIp,
  subnetsBetween,
} from "../../src/net/cidr.ts";

describe("parseIp / formatIp round trip", () => {
  const cases: [string, 4 | 6, string][] = [
    ["10.244.3.0", 4, "10.244.3.0"],
    ["0.0.0.0", 4, "0.0.0.0"],
    ["255.255.255.255", 4, "255.255.255.255"],
    ["fd00::1", 6, "fd00::1"],
    ["FD00:0:0:0:0:0:0:1", 6, "fd00::1"],
    ["::", 6, "::"],
  ];
  for (const [input, family, out] of cases) {
    test(input, () => {
      const ip = parseIp(input);
      expect(ip.family).toBe(family);
      expect(formatIp(ip)).toBe(out);
    });
  }
});

describe("parseIp rejects", () => {
  for (const bad of ["", "10.1", "10.244.3", "256.1.1.1", "10.0.0.0.1", "hello", "1::2::3", " "]) {
    test(JSON.stringify(bad), () => expect(() => parseIp(bad)).toThrow(/Cannot parse IP address/));
  }
});

describe("parseCidr", () => {
  test("keeps host bits, canonicalCidr masks them", () => {
    expect(formatCidr(parseCidr("10.244.3.7/24"))).toBe("10.244.3.7/24");
    expect(canonicalCidr("10.244.3.7/24")).toBe("10.244.3.0/24");
    expect(canonicalCidr("fd00:1::5/64")).toBe("fd00:1::/64");
  });
  for (const bad of ["10.0.0.0", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/", "fd00::/129", "x/8", "10.0.0.0/8/8"]) {
    test(`rejects ${bad}`, () => expect(() => parseCidr(bad)).toThrow(/Cannot parse/));
  }
});

describe("contains / overlaps", () => {
  const table: [string, string, boolean, boolean][] = [
    // outer, inner, contains, overlaps
    ["10.244.0.0/16", "10.244.3.0/24", true, true],
    ["10.244.0.0/16", "10.245.0.0/24", false, false],
    ["10.244.3.0/24", "10.244.0.0/16", false, true],
    ["10.244.3.0/24", "10.244.3.0/24", true, true],
    ["10.244.3.0/25", "10.244.3.128/25", false, false],
    ["0.0.0.0/0", "192.0.2.1/32", true, true],
    ["10.0.0.0/8", "fd00::/8", false, false],
  ];
  for (const [a, b, c, o] of table) {
    test(`${a} vs ${b}`, () => {
      expect(contains(parseCidr(a), parseCidr(b))).toBe(c);
      expect(overlaps(parseCidr(a), parseCidr(b))).toBe(o);
    });
  }
  test("contains an address", () => {
    expect(contains(parseCidr("10.244.0.0/16"), parseIp("10.244.255.255"))).toBe(true);
    expect(contains(parseCidr("10.244.0.0/16"), parseIp("10.245.0.0"))).toBe(false);
  });
});

describe("subnet enumeration", () => {
  test("flannel default range of a /16 in /24s", () => {
    const min = parseIp("10.244.1.0").addr;
    const max = parseIp("10.244.255.0").addr;
    expect(countBetween(4, 24, min, max)).toBe(255n);
    const all = [...subnetsBetween(4, 24, min, max)].map(formatCidr);
    expect(all.length).toBe(255);
    expect(all[0]).toBe("10.244.1.0/24");
    expect(all.at(-1)).toBe("10.244.255.0/24");
  });
  test("empty when max < min", () => {
    expect([...subnetsBetween(4, 24, 10n, 5n)]).toEqual([]);
    expect(countBetween(4, 24, 10n, 5n)).toBe(0n);
  });
  test("nthAddress", () => {
    expect(formatIp(nthAddress(parseCidr("10.244.3.0/24"), 1))).toBe("10.244.3.1");
    expect(() => nthAddress(parseCidr("10.244.3.0/24"), 256)).toThrow(/out of range/);
  });
});
