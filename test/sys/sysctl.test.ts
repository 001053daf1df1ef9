import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readSysctl, sysctlComponents, sysctlPath, writeSysctl } from "../../src/sys/sysctl.ts";

describe("sysctl names", () => {
  test.each([
    ["net.ipv4.ip_forward", ["net", "ipv4", "ip_forward"]],
    ["net.ipv6.conf.weft/1.accept_ra", ["net", "ipv6", "conf", "weft.1", "accept_ra"]],
  ])("%s", (name, parts) => expect(sysctlComponents(name)).toEqual(parts));
  test("arrays are taken verbatim, so device names keep their dots", () => {
    expect(sysctlPath(["net", "ipv6", "conf", "weft.1", "accept_ra"])).toBe("/proc/sys/net/ipv6/conf/weft.1/accept_ra");
  });
  test.each([
    ["net..ip_forward", '"net..ip_forward": bad component ""'],
    [["net", "..", "x"], '"net....x": bad component ".."'],
    [["net", "a/b"], '"net.a/b": bad component "a/b"'],
    [[], '"": empty'],
  ])("refuses %j", (name, detail) => expect(() => sysctlComponents(name as string)).toThrow(`invalid sysctl name ${detail}`));
});

describe("read/write under a fake root", () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), "wtf-sysctl-"));
    mkdirSync(join(root, "net/ipv4"), { recursive: true });
    mkdirSync(join(root, "net/ipv6/conf/weft.1"), { recursive: true });
    writeFileSync(join(root, "net/ipv4/ip_forward"), "0\n");
    writeFileSync(join(root, "net/ipv6/conf/weft.1/accept_ra"), "1\n");
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  test("writes the value with a newline and reads it back trimmed", () => {
    writeSysctl("net.ipv4.ip_forward", 1, { root });
    expect(readFileSync(join(root, "net/ipv4/ip_forward"), "utf8")).toBe("1\n");
    expect(readSysctl("net.ipv4.ip_forward", { root })).toBe("1");
    writeSysctl("net.ipv6.conf.weft/1.accept_ra", 0, { root });
    expect(readSysctl(["net", "ipv6", "conf", "weft.1", "accept_ra"], { root })).toBe("0");
  });

  test("a missing key is not created and the error says what and where", () => {
    expect(() => writeSysctl("net.ipv4.nope", 1, { root })).toThrow(
      `write sysctl net.ipv4.nope=1 (${root}/net/ipv4/nope): no such sysctl (module not loaded or device missing?)`,
    );
    expect(() => readSysctl("net.ipv4.nope", { root })).toThrow(`read sysctl net.ipv4.nope (${root}/net/ipv4/nope): no such sysctl`);
  });

  test("values with newlines are refused", () => {
    expect(() => writeSysctl("net.ipv4.ip_forward", "1\n0", { root })).toThrow('write sysctl net.ipv4.ip_forward: value "1\\n0" contains a newline or NUL');
  });

  test.skipIf(process.getuid?.() === 0)("permission errors are explained (non-root only: root bypasses modes)", () => {
    chmodSync(join(root, "net/ipv4/ip_forward"), 0o444);
    expect(() => writeSysctl("net.ipv4.ip_forward", 1, { root })).toThrow("permission denied");
  });
});

describe.skipIf(process.platform !== "linux")("the real /proc/sys (read only)", () => {
  test("reads a value that always exists", () => {
    expect(readSysctl("net.ipv4.ip_forward")).toMatch(/^[01]$/);
  });
});
