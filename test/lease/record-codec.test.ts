/**
 * Lease records on the wire: validation (the hand-written checks against zod and
 * subnetProblem), exact round trips, golden bytes, and records made from the same bytes
 * shared between nodes of a process (interning).
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { pack, unpack } from "msgpackr";
import { parseNetConf } from "../../src/net-conf.ts";
import { u32ToIpv4 } from "../../src/net/ipv4.ts";
import { checkDecoded, decodePayload } from "../../src/lease/payload.ts";
import { canonicalText, encodeRecord, encodeState, isRecordTuple, recordTupleSchemaAccepts } from "../../src/lease/record-codec.ts";
import { RecordValidator, rangeOf, rangesOf, subnetProblem } from "../../src/lease/record-validate.ts";
import { stateDigest } from "../../src/lease/state-digest.ts";
import type { Lease } from "../../src/lease/types.ts";
import { arbLease } from "./arbitrary.ts";

describe("records made from the same bytes (interning)", () => {
  const v1 = new RecordValidator(rangesOf(parseNetConf({ Network: "10.244.0.0/16" })));
  const v2 = new RecordValidator(rangesOf(parseNetConf({ Network: "10.244.0.0/16" })));
  const decodeOne = (payload: Uint8Array) => {
    const d = decodePayload(payload);
    if ("error" in d) throw new Error(d.error);
    return d;
  };
  const checked = (v: RecordValidator, payload: Uint8Array) => checkDecoded(v, decodeOne(payload), 0, payload);
  const tupleOf = (payload: Uint8Array) => (unpack(payload) as unknown[])[2];

  test("validators of different nodes get one object for the same broadcast bytes, equal to the record", () => {
    fc.assert(
      fc.property(arbLease, (l) => {
        const payload = encodeRecord(l);
        const a = checked(v1, payload);
        const b = checked(v2, payload.slice());
        expect(typeof a).toBe("object");
        expect(b).toBe(a);
        expect(canonicalText(a as Lease)).toBe(canonicalText(l));
        // Bytes seen before are not decoded again.
        const again = decodeOne(payload);
        expect(again.known[0]?.lease).toBe(a as Lease);
        expect(again.raw[0]).toBeUndefined();
        // Without the bytes: a new object, equal in value.
        const c = v1.check(tupleOf(payload));
        expect(c).not.toBe(a);
        expect(canonicalText(c as Lease)).toBe(canonicalText(l));
      }),
      { numRuns: 200 },
    );
  });

  test("a record another node accepted is still checked against this node's range", () => {
    const l: Lease = { nodeName: "a", nodeId: "0".repeat(32), generation: 1, version: 0, subnet: "10.244.9.0/24", publicIp: "192.0.2.1", backend: { type: "vxlan" }, claimedAt: 1, renewedAt: 1 };
    const payload = encodeRecord(l);
    expect(typeof checked(v1, payload)).toBe("object");
    const narrow = new RecordValidator(rangesOf(parseNetConf({ Network: "10.244.0.0/16", SubnetMax: "10.244.5.0" })));
    expect(checked(narrow, payload)).toMatch(/outside SubnetMin..SubnetMax/);
  });

  test("…and against this node's pod network for its public IP", () => {
    const l: Lease = { nodeName: "b", nodeId: "1".repeat(32), generation: 1, version: 0, subnet: "10.244.9.0/24", publicIp: "10.245.0.5", backend: { type: "vxlan" }, claimedAt: 1, renewedAt: 1 };
    const payload = encodeRecord(l);
    expect(typeof checked(v1, payload)).toBe("object");
    const wide = new RecordValidator(rangesOf(parseNetConf({ Network: "10.240.0.0/12" })));
    expect(decodeOne(payload).known[0]).toBeDefined(); // judged from the bytes seen before
    expect(checked(wide, payload)).toBe("publicIp 10.245.0.5 is inside the pod network 10.240.0.0/12");
  });

  test("non-canonical bytes of a record give the same record, digest included, and are not shared", () => {
    const l: Lease = { nodeName: "node-1", nodeId: "f".repeat(32), generation: 3, version: 2, subnet: "10.244.3.0/24", publicIp: "192.0.2.2", backend: { type: "vxlan" }, claimedAt: 5, renewedAt: 5 };
    const canonical = encodeRecord(l);
    // The generation as uint16 (0xcd 00 03) instead of a fixint: valid msgpack, other bytes.
    const i = 3 + 1 + 7 + 18; // head, fixarray(12), "node-1", the 16-byte node id
    expect(canonical[i]).toBe(3);
    const odd = new Uint8Array([...canonical.subarray(0, i), 0xcd, 0, 3, ...canonical.subarray(i + 1)]);
    expect(tupleOf(odd)).toStrictEqual(tupleOf(canonical));
    const a = checked(v1, odd) as Lease;
    const b = checked(v2, odd) as Lease;
    expect(b).not.toBe(a);
    expect(canonicalText(a)).toBe(canonicalText(l));
    expect([...stateDigest([a])]).toEqual([...stateDigest([l])]);
  });
});

describe("record validation", () => {
  test("the numeric range check accepts exactly the subnets subnetProblem() accepts", () => {
    const confArb = fc
      .record({ a: fc.integer({ min: 1, max: 223 }), b: fc.nat(255), prefix: fc.integer({ min: 8, max: 20 }), extra: fc.integer({ min: 2, max: 10 }), cut: fc.nat(3) })
      .map(({ a, b, prefix, extra, cut }) => {
        const netAddr = (((a << 24) | (b << 16)) >>> 0) - ((((a << 24) | (b << 16)) >>> 0) % 2 ** (32 - prefix));
        const subnetLen = Math.min(30, prefix + extra);
        const conf: Record<string, unknown> = { Network: `${u32ToIpv4(netAddr)}/${prefix}`, SubnetLen: subnetLen };
        // Sometimes a narrower SubnetMin..SubnetMax.
        cut = Math.min(cut, 2 ** (subnetLen - prefix - 1) - 1);
        if (cut > 0) {
          conf.SubnetMin = u32ToIpv4(netAddr + cut * 2 ** (32 - subnetLen));
          conf.SubnetMax = u32ToIpv4(netAddr + 2 ** (32 - prefix) - cut * 2 ** (32 - subnetLen));
        }
        return { netAddr, prefix, subnetLen, range: rangeOf(parseNetConf(conf)) };
      });
    fc.assert(
      fc.property(confArb, fc.integer({ min: -2, max: 2 }), fc.nat(), fc.integer({ min: 0, max: 32 }), fc.boolean(), fc.nat(5), ({ netAddr, prefix, subnetLen, range }, shift, r, len, sameLen, pick) => {
        // Addresses in and around the network, on and off subnet boundaries, and the
        // subnets at and next to SubnetMin and SubnetMax.
        const sub = 2 ** (32 - subnetLen);
        const edges = [Number(range.min), Number(range.max), Number(range.min) - sub, Number(range.max) + sub];
        const near = netAddr + shift * 2 ** (32 - prefix) + (r % 2 ** (32 - prefix + 1));
        const addr = Math.max(0, Math.min(0xffffffff, pick < edges.length ? edges[pick]! : near));
        const l = sameLen ? subnetLen : len;
        // A public IP outside the pod network (one inside it is refused on its own).
        const publicIp = netAddr >>> 24 === 192 ? 0x0a000001 : 0xc0000201;
        const tuple = ["a", new Uint8Array(16), 1, 0, addr, l, publicIp, 0, null, 1, 1, false];
        const got = new RecordValidator({ 4: range }).check(tuple);
        const want = subnetProblem(`${u32ToIpv4(addr)}/${l}`, range);
        expect(typeof got === "string" ? got : undefined).toBe(want);
      }),
      { numRuns: 3000 },
    );
  });

  test("the hand-written tuple check accepts exactly what the zod schema accepts", () => {
    // Each cell: mostly valid values, else boundary values just inside and outside, or wrong types.
    const junk = fc.oneof(fc.constant(null), fc.constant(undefined), fc.string({ maxLength: 3 }), fc.boolean(), fc.constant([]), fc.constant({}));
    const cell = (valid: fc.Arbitrary<unknown>, edge: fc.Arbitrary<unknown>) =>
      fc.oneof({ arbitrary: valid, weight: 12 }, { arbitrary: edge, weight: 1 }, { arbitrary: junk, weight: 1 });
    const int = (lo: number, hi: number) => cell(fc.integer({ min: lo, max: Math.min(hi, 2 ** 31 - 1) }), fc.constantFrom(lo, hi, lo - 1, hi + 1, 0.5, NaN, Infinity, -0));
    const bytesOf = (n: number) => cell(fc.uint8Array({ minLength: n, maxLength: n }), fc.uint8Array({ maxLength: n + 2 }));
    const cells = [
      cell(fc.constantFrom("n1", "node-7.a_b", "a".repeat(63)), fc.constantFrom("a".repeat(64), "", "-x", "x y", "ü")),
      bytesOf(16),
      int(1, 2 ** 40),
      int(0, Number.MAX_SAFE_INTEGER),
      int(0, 0xffffffff),
      int(0, 32),
      int(0, 0xffffffff),
      int(0, 3),
      fc.oneof(bytesOf(6), bytesOf(32), fc.constant(null)),
      int(0, Number.MAX_SAFE_INTEGER),
      int(0, Number.MAX_SAFE_INTEGER),
      cell(fc.boolean(), fc.constantFrom(0, 1)),
    ] as const;
    // The extension cell: bytes of a length around the accepted 2..512, or junk.
    const ext = cell(fc.uint8Array({ minLength: 2, maxLength: 40 }), fc.oneof(fc.uint8Array({ maxLength: 1 }), fc.uint8Array({ minLength: 511, maxLength: 514 })));
    const tuple = fc
      .tuple(...cells, ext)
      .chain(([...t]) => fc.oneof(fc.constant<unknown[]>(t.slice(0, 12)), fc.constant<unknown[]>(t), fc.constant<unknown[]>(t.slice(0, 11)), fc.constant<unknown[]>([...t, 1])));
    let accepted = 0;
    fc.assert(
      fc.property(fc.oneof(tuple, junk), (v) => {
        const ok = recordTupleSchemaAccepts(v);
        expect(isRecordTuple(v)).toBe(ok);
        if (ok) accepted++;
      }),
      { numRuns: 5000 },
    );
    expect(accepted).toBeGreaterThan(10); // the generator does reach the valid space
  });

  const range = rangeOf(parseNetConf({ Network: "10.244.0.0/16", SubnetMin: "10.244.10.0", SubnetMax: "10.244.20.0" }));
  const v = new RecordValidator({ 4: range });
  const good: Lease = { nodeName: "n1", nodeId: "ab".repeat(16), generation: 1, version: 0, subnet: "10.244.12.0/24", publicIp: "192.0.2.7", backend: { type: "vxlan", vtepMac: "0e:00:00:00:00:01" }, claimedAt: 5, renewedAt: 6 };
  const roundTrip = (l: Lease) => {
    const d = decodePayload(encodeRecord(l));
    if ("error" in d) return d.error;
    return v.check(d.raw[0]);
  };

  test("a valid record round-trips exactly", () => {
    expect(roundTrip(good)).toEqual(good);
  });

  test.each([
    ["outside Network", { subnet: "10.245.12.0/24" }, /not inside 10.244.0.0\/16/],
    ["wrong SubnetLen", { subnet: "10.244.12.0/25" }, /not a \/24/],
    ["below SubnetMin", { subnet: "10.244.9.0/24" }, /outside SubnetMin/],
    ["above SubnetMax", { subnet: "10.244.21.0/24" }, /outside SubnetMin/],
    ["host bits", { subnet: "10.244.12.1/24" }, /host bits/],
    ["garbage subnet", { subnet: "zzz" }, /malformed record: \[4\]/],
    ["not an IPv4 subnet", { subnet: "fd00::/64" }, /malformed record/],
    ["bad name", { nodeName: "-x" }, /malformed/],
    ["bad nodeId", { nodeId: "xyz" }, /malformed/],
    ["generation 0", { generation: 0 }, /malformed/],
    ["negative version", { version: -1 }, /malformed/],
    ["bad public ip", { publicIp: "1.2.3" }, /malformed/],
    ["bad mac", { backend: { type: "vxlan", vtepMac: "zz" } }, /malformed/],
    ["public ip 0.0.0.0", { publicIp: "0.0.0.0" }, /publicIp 0\.0\.0\.0 is in 0\.0\.0\.0\/8/],
    ["public ip in 0/8", { publicIp: "0.1.2.3" }, /publicIp 0\.1\.2\.3 is in 0\.0\.0\.0\/8/],
    ["loopback public ip", { publicIp: "127.0.0.1" }, /is a loopback address/],
    ["loopback public ip, not .1", { publicIp: "127.255.0.9" }, /is a loopback address/],
    ["link-local public ip", { publicIp: "169.254.169.254" }, /is a link-local address/],
    ["multicast public ip", { publicIp: "224.0.0.1" }, /is a multicast address/],
    ["multicast public ip, top", { publicIp: "239.255.255.255" }, /is a multicast address/],
    ["broadcast public ip", { publicIp: "255.255.255.255" }, /is the broadcast address/],
    ["public ip inside the pod network", { publicIp: "10.244.3.7" }, /inside the pod network 10\.244\.0\.0\/16/],
  ] as const)("rejects %s", (_n, patch, re) => {
    const r = roundTrip({ ...good, ...(patch as Partial<Lease>) });
    expect(typeof r).toBe("string");
    expect(r as string).toMatch(re);
  });

  test.each(["1.0.0.1", "10.0.0.1", "100.64.0.1", "126.255.255.255", "128.0.0.1", "169.253.255.255", "169.255.0.1", "172.16.0.1", "192.168.1.1", "223.255.255.255", "240.0.0.1", "255.255.255.254"])(
    "accepts public ip %s",
    (ip) => {
      expect(roundTrip({ ...good, publicIp: ip })).toEqual({ ...good, publicIp: ip });
    },
  );

  test("a wireguard record carries its public key and round-trips exactly", () => {
    const wg: Lease = { ...good, backend: { type: "wireguard", publicKey: Buffer.alloc(32, 3).toString("base64") } };
    expect(roundTrip(wg)).toEqual(wg);
    expect(roundTrip({ ...good, backend: { type: "wireguard" } })).toEqual({ ...good, backend: { type: "wireguard" } });
  });

  test("records without a public key keep the encoding nodes without wireguard support read (golden bytes)", () => {
    // Encodings made by the record layout that knew vxlan, host-gw and udp only: an older
    // node decodes these records exactly as before.
    const golden: [Lease["backend"], string][] = [
      [{ type: "vxlan", vtepMac: "0e:00:00:00:00:01" }, "9302019ca26e31c410abababababababababababababababab0100ce0af40c0018cec000020700c4060e00000000010506c2"],
      [{ type: "host-gw" }, "9302019ca26e31c410abababababababababababababababab0100ce0af40c0018cec000020701c00506c2"],
      [{ type: "udp" }, "9302019ca26e31c410abababababababababababababababab0100ce0af40c0018cec000020702c00506c2"],
    ];
    for (const [backend, hex] of golden) expect(Buffer.from(encodeRecord({ ...good, backend })).toString("hex")).toBe(hex);
  });

  test("a backend field of another length than a MAC or a key is rejected", () => {
    const d = decodePayload(encodeRecord({ ...good, backend: { type: "wireguard", publicKey: Buffer.alloc(31, 3).toString("base64") } }));
    if ("error" in d) throw new Error(d.error);
    expect(v.check(d.raw[0]) as string).toMatch(/malformed record: \[8\]/);
  });

  test("garbage payloads are reported, not thrown", () => {
    for (const bytes of [new Uint8Array([0xc1]), new Uint8Array([]), new Uint8Array([0x93, 1, 9, 0]), encodeRecord(good).slice(0, 10)]) {
      const d = decodePayload(bytes);
      if ("raw" in d) for (const r of d.raw) expect(typeof v.check(r)).toBe("string");
      else expect(d.error).toMatch(/^cannot decode payload/);
    }
    expect(typeof v.check({ nodeName: "x" })).toBe("string");
    expect(typeof v.check(null)).toBe("string");
  });
});

describe("IPv6 and dual-stack records (the extension cell)", () => {
  const dualNet = parseNetConf({ Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "fd00:10:244::/56" });
  const v6Net = parseNetConf({ EnableIPv4: false, EnableIPv6: true, IPv6Network: "fd00:10:244::/56" });
  const dual = new RecordValidator(rangesOf(dualNet));
  const v6only = new RecordValidator(rangesOf(v6Net));
  const v4only = new RecordValidator(rangesOf(parseNetConf({ Network: "10.244.0.0/16" })));
  const base: Lease = { nodeName: "n1", nodeId: "ab".repeat(16), generation: 1, version: 0, subnet: "10.244.12.0/24", publicIp: "192.0.2.7", backend: { type: "vxlan", vtepMac: "0e:00:00:00:00:01" }, claimedAt: 5, renewedAt: 6 };
  const dualLease: Lease = { ...base, ipv6Subnet: "fd00:10:244:c::/64", publicIpv6: "2001:db8::7" };
  const { subnet: _s, publicIp: _p, ...noV4 } = dualLease;
  const v6Lease: Lease = noV4;
  const rawOf = (l: Lease) => {
    const d = decodePayload(encodeRecord(l));
    if ("error" in d) throw new Error(d.error);
    return d.raw[0];
  };
  /** A record's tuple with its extension cell replaced (undefined: removed). */
  const withExt = (l: Lease, ext: number[] | undefined) => {
    const t = (rawOf(l) as unknown[]).slice(0, 12);
    return ext === undefined ? t : [...t, Uint8Array.from(ext)];
  };
  const v6SubnetEntry = [0x01, 17, 0xfd, 0x00, 0x00, 0x10, 0x02, 0x44, 0x00, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 64];
  const v6IpEntry = [0x02, 16, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];

  test("dual-stack and IPv6-only records round-trip exactly", () => {
    expect(dual.check(rawOf(dualLease))).toEqual(dualLease);
    expect(v6only.check(rawOf(v6Lease))).toEqual(v6Lease);
    expect(dual.check(rawOf(v6Lease))).toEqual(v6Lease);
  });

  test("golden bytes: an IPv4 record keeps its 12 cells; the IPv6 fields are one 13th cell; an IPv6-only record says 'no IPv4' with zeros", () => {
    const v4hex = "9302019ca26e31c410abababababababababababababababab0100ce0af40c0018cec000020700c4060e00000000010506c2";
    expect(Buffer.from(encodeRecord(base)).toString("hex")).toBe(v4hex);
    const ext = Buffer.from([...v6SubnetEntry, ...v6IpEntry]).toString("hex");
    // fixarray(13) instead of (12), the same twelve cells, then bin8 of 37 bytes.
    expect(Buffer.from(encodeRecord(dualLease)).toString("hex")).toBe(`9302019d${v4hex.slice(8)}c425${ext}`);
    // subnet 0 (fixint 00) with prefix 0, public IP 0: six bytes shorter than the IPv4 cells.
    expect(Buffer.from(encodeRecord(v6Lease)).toString("hex")).toBe(`9302019da26e31c410abababababababababababababababab010000000000c4060e00000000010506c2c425${ext}`);
  });

  test("a future version's extension entry is carried verbatim: accepted, re-encoded to the same bytes, same digest, relayed", () => {
    // Type 0x03 (not critical) with 3 bytes this version cannot read.
    const t = withExt(dualLease, [...v6SubnetEntry, ...v6IpEntry, 0x03, 3, 9, 8, 7]);
    const payload = new Uint8Array([0x93, 2, 1, ...pack(t)]);
    const got = checkDecoded(dual, (decodePayload(payload) as Exclude<ReturnType<typeof decodePayload>, { error: string }>), 0, payload);
    expect(typeof got).toBe("object");
    const l = got as Lease;
    expect(l).toMatchObject({ ipv6Subnet: "fd00:10:244:c::/64", publicIpv6: "2001:db8::7" });
    // Its canonical bytes are the bytes it came as: what this node relays and hashes.
    expect(Buffer.from(encodeRecord(l)).toString("hex")).toBe(Buffer.from(payload).toString("hex"));
    expect(Buffer.from(encodeState([l])).subarray(8).toString("hex")).toBe(Buffer.from(payload).subarray(3).toString("hex"));
    // The same record without the unknown entry is a different record (it orders and hashes apart).
    expect(canonicalText(l)).not.toBe(canonicalText(dualLease));
    expect([...stateDigest([l])]).not.toEqual([...stateDigest([dualLease])]);
    // A node that does not run IPv6 carries it the same way.
    expect(Buffer.from(encodeRecord(v4only.check(t) as Lease)).toString("hex")).toBe(Buffer.from(payload).toString("hex"));
  });

  test.each([
    ["an unknown critical entry", [...v6SubnetEntry, 0x83, 1, 0], /\[12\] extension entry type 0x83 is critical and unknown to this version/],
    ["entries out of order", [...v6IpEntry, ...v6SubnetEntry], /\[12\] extension entries are not in strictly ascending type order/],
    ["a repeated entry", [...v6SubnetEntry, ...v6SubnetEntry], /not in strictly ascending type order/],
    ["a truncated entry", [...v6SubnetEntry, 0x03, 5, 1], /\[12\] extension entry type 3 claims 5 bytes, 1 left/],
    ["a lone type byte", [...v6SubnetEntry, 0x03], /\[12\] extension entry at byte 19 is truncated/],
    ["an IPv6 subnet of 16 bytes", v6SubnetEntry.slice(0, 18).map((b, i) => (i === 1 ? 16 : b)), /extension IPv6 subnet must be 16 address bytes and a prefix length/],
    ["a prefix length of 129", [...v6SubnetEntry.slice(0, 18), 129], /prefix length 0..128/],
    ["an IPv6 public address of 4 bytes", [0x02, 4, 1, 2, 3, 4], /extension IPv6 public address must be 16 bytes/],
    ["an empty cell", [], /malformed record: \[12\] expected 2\.\.512 bytes/],
  ] as const)("rejects %s", (_n, ext, re) => {
    expect(dual.check(withExt(dualLease, [...ext])) as string).toMatch(re);
  });

  test("an extension cell of more than 512 bytes is rejected", () => {
    const big = [...v6SubnetEntry, ...v6IpEntry, 0x03, 255, ...new Array(255).fill(0), 0x04, 255, ...new Array(255).fill(0)];
    expect(dual.check(withExt(dualLease, big)) as string).toMatch(/malformed record: \[12\] expected 2\.\.512 bytes/);
  });

  test("a record needs a subnet and a public address of some family", () => {
    const noSubnet = [...(rawOf(v6Lease) as unknown[]).slice(0, 12), Uint8Array.from(v6IpEntry)];
    expect(dual.check(noSubnet)).toBe("record has no subnet (neither IPv4 nor IPv6)");
    const noIp = [...(rawOf(v6Lease) as unknown[]).slice(0, 12), Uint8Array.from(v6SubnetEntry)];
    expect(dual.check(noIp)).toBe("record has no public address (neither IPv4 nor IPv6)");
    // Without an extension cell the zero cells are what they always were: invalid IPv4.
    expect(dual.check((rawOf(v6Lease) as unknown[]).slice(0, 12)) as string).toMatch(/^subnet 0\.0\.0\.0\/0 is not a \/24/);
  });

  const v6 = (patch: Partial<Lease>) => dual.check(rawOf({ ...dualLease, ...patch }));
  test.each([
    ["outside IPv6Network", { ipv6Subnet: "fd00:10:245::/64" }, /^subnet fd00:10:245::\/64 is not inside fd00:10:244::\/56$/],
    ["wrong IPv6SubnetLen", { ipv6Subnet: "fd00:10:244:c::/65" }, /is not a \/64/],
    ["host bits", { ipv6Subnet: "fd00:10:244:c::1/64" }, /host bits/],
    ["the first subnet (below IPv6SubnetMin)", { ipv6Subnet: "fd00:10:244::/64" }, /is outside IPv6SubnetMin..IPv6SubnetMax/],
    ["unspecified public IPv6", { publicIpv6: "::" }, /^publicIpv6 :: is the unspecified address$/],
    ["loopback public IPv6", { publicIpv6: "::1" }, /^publicIpv6 ::1 is the loopback address$/],
    ["IPv4-mapped public IPv6", { publicIpv6: "::ffff:192.0.2.7" }, /is an IPv4-mapped address/],
    ["IPv4-compatible public IPv6", { publicIpv6: "::c000:207" }, /is an IPv4-compatible address/],
    ["link-local public IPv6", { publicIpv6: "fe80::7" }, /is a link-local address/],
    ["link-local public IPv6, top of fe80::/10", { publicIpv6: "febf:ffff::1" }, /is a link-local address/],
    ["site-local public IPv6", { publicIpv6: "fec0::7" }, /is a site-local address/],
    ["multicast public IPv6", { publicIpv6: "ff02::1" }, /is a multicast address/],
    ["discard-only public IPv6", { publicIpv6: "100::7" }, /discard-only/],
    ["public IPv6 inside the IPv6 pod network", { publicIpv6: "fd00:10:244:3::7" }, /^publicIpv6 fd00:10:244:3::7 is inside the pod network fd00:10:244::\/56$/],
  ] as const)("rejects %s", (_n, patch, re) => {
    expect(v6(patch as Partial<Lease>) as string).toMatch(re);
  });

  // Just outside the refused ranges too: fe7f:: below link-local, 1:: above the IPv4-compatible ::/96, 100:0:0:1:: past the discard prefix.
  test.each(["2001:db8::1", "2001:db8:ffff::ffff", "2a00:1450:4001::1", "fd12:3456::1", "fc00::1", "2002:c000:201::1", "64:ff9b::c000:207", "fe7f::1", "2001::1", "1::1", "100:0:0:1::1"])("accepts public IPv6 %s", (ip) => {
    const want = { ...dualLease, publicIpv6: ip };
    expect(dual.check(rawOf(want))).toEqual(want);
  });

  test("a node that does not run IPv6 checks an IPv6 subnet for form only; one that does not run IPv4 an IPv4 subnet", () => {
    // Outside this node's (absent) IPv6 range, still carried: the cluster is enabling IPv6.
    expect(v4only.check(rawOf({ ...dualLease, ipv6Subnet: "fd99::/64" }))).toEqual({ ...dualLease, ipv6Subnet: "fd99::/64" });
    expect(v6only.check(rawOf({ ...dualLease, subnet: "10.99.0.0/24" }))).toEqual({ ...dualLease, subnet: "10.99.0.0/24" });
    // The public address rules hold everywhere.
    expect(v4only.check(rawOf({ ...dualLease, publicIpv6: "fe80::1" })) as string).toMatch(/link-local/);
  });

  test("a dual-stack node keeps records without an IPv6 subnet (peers not switched to dual-stack yet)", () => {
    expect(dual.check(rawOf(base))).toEqual(base);
  });

  test("interned records with an extension cell are still checked against this node's IPv6 range", () => {
    const l = { ...dualLease, nodeName: "interned", ipv6Subnet: "fd00:10:244:80::/64" };
    const payload = encodeRecord(l);
    expect(typeof checked(dual, payload)).toBe("object");
    const narrow = new RecordValidator(rangesOf(parseNetConf({ Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "fd00:10:244::/56", IPv6SubnetMax: "fd00:10:244:7f::" })));
    expect(decodePayload(payload) as { known: unknown[] }).toMatchObject({ known: [expect.anything()] });
    expect(checked(narrow, payload)).toBe("subnet fd00:10:244:80::/64 is outside IPv6SubnetMin..IPv6SubnetMax");
  });

  function checked(v: RecordValidator, payload: Uint8Array) {
    const d = decodePayload(payload);
    if ("error" in d) throw new Error(d.error);
    return checkDecoded(v, d, 0, payload);
  }
});
