/**
 * Built-in IPAM rules on an in-memory store: which addresses a pool hands out, in what
 * order, what a renumbered node does with its old records, exhaustion, release and GC.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { allocate, assignable, freeCount, pickAddress, poolBounds, poolCapacity, poolOf, release, staleAllocations } from "../../src/cni/ipam.ts";
import { CniCode, CniError } from "../../src/cni/spec.ts";
import { formatIp, parseIp } from "../../src/net/cidr.ts";
import { MemStore } from "../fakes/cni.ts";

const ip = (t: string) => parseIp(t).addr;
const text = (family: 4 | 6, a: bigint | undefined) => (a === undefined ? undefined : formatIp({ family, addr: a }));

describe("pools", () => {
  test.each([
    ["10.244.3.1/24", "10.244.3.1", "10.244.3.254", 253n],
    ["10.244.3.77/24", "10.244.3.1", "10.244.3.254", 253n],
    ["10.244.0.1/30", "10.244.0.1", "10.244.0.2", 1n],
    ["10.244.0.1/22", "10.244.0.1", "10.244.3.254", 1021n],
    ["fd00:1::1/120", "fd00:1::1", "fd00:1::ff", 254n],
  ])("%s: gateway %s, last %s, %d assignable", (subnet, gw, last, capacity) => {
    const p = poolOf(subnet, "0");
    expect(formatIp(p.gateway)).toBe(gw);
    expect(text(p.family, poolBounds(p).last)).toBe(last);
    expect(poolCapacity(p)).toBe(capacity);
  });

  test.each([
    ["10.244.3.0", false, "network address"],
    ["10.244.3.1", false, "gateway"],
    ["10.244.3.2", true, "first pod address"],
    ["10.244.3.254", true, "last pod address"],
    ["10.244.3.255", false, "broadcast"],
    ["10.244.4.2", false, "another subnet"],
  ])("%s assignable: %s (%s)", (a, want) => {
    expect(assignable(poolOf("10.244.3.1/24", "0"), parseIp(a))).toBe(want);
  });
});

describe("pickAddress", () => {
  const p = poolOf("10.244.3.1/29", "0"); // .2 .. .6
  test("first free after the last reserved one, wrapping, never the gateway", () => {
    expect(text(4, pickAddress(p, new Set()))).toBe("10.244.3.2");
    expect(text(4, pickAddress(p, new Set(), ip("10.244.3.3")))).toBe("10.244.3.4");
    expect(text(4, pickAddress(p, new Set([ip("10.244.3.4")]), ip("10.244.3.3")))).toBe("10.244.3.5");
    expect(text(4, pickAddress(p, new Set(), ip("10.244.3.6")))).toBe("10.244.3.2");
    expect(text(4, pickAddress(p, new Set([ip("10.244.3.2")]), ip("10.244.3.6")))).toBe("10.244.3.3");
  });
  test("a last-reserved address outside the pool (an old subnet) restarts at the beginning", () => {
    expect(text(4, pickAddress(p, new Set(), ip("10.244.9.3")))).toBe("10.244.3.2");
  });
  test("full: undefined", () => {
    expect(pickAddress(p, new Set(["10.244.3.2", "10.244.3.3", "10.244.3.4", "10.244.3.5", "10.244.3.6"].map(ip)))).toBeUndefined();
  });
  test("a large IPv6 pool is searched only as far as needed", () => {
    const v6 = poolOf("fd00::1/64", "1");
    expect(text(6, pickAddress(v6, new Set([ip("fd00::2")])))).toBe("fd00::3");
  });
});

describe("allocate / release", () => {
  const v4 = poolOf("10.244.3.1/24", "0");

  test("one address per pool, host-local's order across calls", () => {
    const s = new MemStore();
    const got = ["a", "b", "c"].map((id) => s.locked(() => allocate(s, [v4], id, "eth0")).map((x) => x.ip));
    expect(got).toEqual([["10.244.3.2"], ["10.244.3.3"], ["10.244.3.4"]]);
    expect(s.lastReserved("0")).toBe("10.244.3.4");
    // A freed address is not handed out again at once.
    s.locked(() => release(s, "b", "eth0"));
    expect(s.locked(() => allocate(s, [v4], "d", "eth0"))[0]!.ip).toBe("10.244.3.5");
  });

  test("a second ADD of the same attachment is refused (code 100), another ifname is fine", () => {
    const s = new MemStore();
    s.locked(() => allocate(s, [v4], "a", "eth0"));
    const e = (() => {
      try {
        s.locked(() => allocate(s, [v4], "a", "eth0"));
      } catch (err) {
        return err as CniError;
      }
    })();
    expect(e?.code).toBe(CniCode.AlreadyExists);
    expect(s.locked(() => allocate(s, [v4], "a", "net1"))[0]!.ip).toBe("10.244.3.3");
  });

  test("a renumbered node never hands out its old subnet and ignores records there", () => {
    const s = new MemStore();
    const old = poolOf("10.244.7.1/24", "0");
    s.locked(() => allocate(s, [old], "a", "eth0"));
    s.locked(() => allocate(s, [old], "b", "eth0"));
    // Container a is still running with its old address while the node now owns 10.244.3.0/24.
    const fresh = s.locked(() => allocate(s, [v4], "c", "eth0"));
    expect(fresh.map((x) => x.ip)).toEqual(["10.244.3.2"]);
    // a's old record does not count as an attachment in the new pool...
    expect(s.locked(() => allocate(s, [v4], "a", "eth0")).map((x) => x.ip)).toEqual(["10.244.3.3"]);
    // ...and DEL of a removes both its records.
    expect(s.locked(() => release(s, "a", "eth0")).sort()).toEqual(["10.244.3.3", "10.244.7.2"]);
    expect(s.list().map((r) => r.ip).sort()).toEqual(["10.244.3.2", "10.244.7.3"]);
  });

  test("exhaustion is code 11 naming the subnet, and leaves nothing behind", () => {
    const s = new MemStore();
    const tiny = poolOf("10.244.0.1/30", "0");
    s.locked(() => allocate(s, [tiny], "a", "eth0"));
    let err: CniError | undefined;
    try {
      s.locked(() => allocate(s, [tiny], "b", "eth0"));
    } catch (e) {
      err = e as CniError;
    }
    expect(err?.code).toBe(CniCode.TryAgainLater);
    expect(err?.message).toBe("no free address in 10.244.0.0/30: all 1 are allocated");
    expect(s.list().map((r) => r.containerId)).toEqual(["a"]);
  });

  test("with two pools, a full second pool gives the first pool's address back", () => {
    const s = new MemStore();
    const v6 = poolOf("fd00::1/126", "1"); // fd00::2, fd00::3
    s.records.set("fd00::2", { ip: "fd00::2", containerId: "x", ifname: "eth0" });
    s.records.set("fd00::3", { ip: "fd00::3", containerId: "y", ifname: "eth0" });
    expect(() => s.locked(() => allocate(s, [v4, v6], "a", "eth0"))).toThrow(/no free address in fd00::\/126/);
    expect(s.list().map((r) => r.ip).sort()).toEqual(["fd00::2", "fd00::3"]);
  });

  test("dual-stack: one address per family, each with its own last_reserved_ip id", () => {
    const s = new MemStore();
    const v6 = poolOf("fd00:3::1/64", "1");
    expect(s.locked(() => allocate(s, [v4, v6], "a", "eth0")).map((x) => x.ip)).toEqual(["10.244.3.2", "fd00:3::2"]);
    expect([s.lastReserved("0"), s.lastReserved("1")]).toEqual(["10.244.3.2", "fd00:3::2"]);
  });

  test("a record file the store cannot create (taken meanwhile) is skipped, not overwritten", () => {
    const s = new MemStore();
    const reserve = s.reserve.bind(s);
    let first = true;
    s.reserve = (a, id) => {
      if (first) {
        first = false;
        return false;
      }
      return reserve(a, id);
    };
    expect(s.locked(() => allocate(s, [v4], "a", "eth0"))[0]!.ip).toBe("10.244.3.3");
  });

  test("release matches host-local's oldest records (container id only) too", () => {
    const s = new MemStore();
    s.records.set("10.244.3.9", { ip: "10.244.3.9", containerId: "a" });
    s.records.set("10.244.3.10", { ip: "10.244.3.10", containerId: "a", ifname: "net1" });
    expect(s.locked(() => release(s, "a", "eth0"))).toEqual(["10.244.3.9"]);
  });

  test("property: n allocations in a /26 are distinct, assignable, and exhaust at capacity", () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { maxLength: 120 }), (ops) => {
        const s = new MemStore();
        const pool = poolOf("10.244.3.65/26", "0");
        const held: string[] = [];
        let n = 0;
        for (const add of ops) {
          if (add || held.length === 0) {
            try {
              const [a] = s.locked(() => allocate(s, [pool], `c${n++}`, "eth0"));
              held.push(a!.containerId);
            } catch (e) {
              if ((e as CniError).code !== CniCode.TryAgainLater || BigInt(held.length) !== poolCapacity(pool)) throw e;
            }
          } else {
            s.locked(() => release(s, held.shift()!, "eth0"));
          }
          const ips = s.list().map((r) => r.ip);
          if (new Set(ips).size !== ips.length || ips.length !== held.length) return false;
          if (!ips.every((x) => assignable(pool, parseIp(x)))) return false;
          if (freeCount(pool, s.list()) !== poolCapacity(pool) - BigInt(held.length)) return false;
        }
        return true;
      }),
      { numRuns: 200 },
    );
  });
});

describe("GC selection", () => {
  const records = [
    { ip: "10.244.3.2", containerId: "a", ifname: "eth0" },
    { ip: "10.244.3.3", containerId: "a", ifname: "net1" },
    { ip: "10.244.3.4", containerId: "b", ifname: "eth0" },
    { ip: "10.244.3.5", containerId: "c" },
    { ip: "10.244.3.6", containerId: "d" },
  ];
  test("records of attachments not in the valid list are stale; an id-only record follows its container", () => {
    const stale = staleAllocations(records, [
      { containerID: "a", ifname: "eth0" },
      { containerID: "c", ifname: "eth0" },
    ]);
    expect(stale.map((r) => r.ip)).toEqual(["10.244.3.3", "10.244.3.4", "10.244.3.6"]);
  });
  test("an empty valid list makes everything stale", () => {
    expect(staleAllocations(records, []).length).toBe(5);
  });
});
