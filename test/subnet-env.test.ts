import { afterEach, expect, test } from "bun:test";
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatSubnetEnv, parseSubnetEnv, writeSubnetEnv } from "../src/subnet-env.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "weft-senv-"));
  dirs.push(d);
  return d;
};

test("flannel's exact format", () => {
  expect(formatSubnetEnv({ network: "10.244.0.0/16", subnet: "10.244.3.0/24", mtu: 1450, ipMasq: false })).toBe(
    "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n",
  );
});

test("dual-stack: flannel's lines in flannel's order (pkg/subnet WriteSubnetFile), one by one", () => {
  const text = formatSubnetEnv({ network: "10.244.0.0/16", subnet: "10.244.3.0/24", ipv6Network: "fd00:10:244::/56", ipv6Subnet: "fd00:10:244:3::/64", mtu: 1430, ipMasq: true });
  expect(text.split("\n")).toEqual([
    "FLANNEL_NETWORK=10.244.0.0/16",
    "FLANNEL_SUBNET=10.244.3.1/24",
    "FLANNEL_IPV6_NETWORK=fd00:10:244::/56",
    "FLANNEL_IPV6_SUBNET=fd00:10:244:3::1/64",
    "FLANNEL_MTU=1430",
    "FLANNEL_IPMASQ=true",
    "",
  ]);
});

test("IPv6-only: no IPv4 lines at all, as flannel writes it with EnableIPv4 false", () => {
  const text = formatSubnetEnv({ ipv6Network: "FD00:10:244:0::/56", ipv6Subnet: "fd00:10:244:a::/64", mtu: 1430, ipMasq: false });
  expect(text.split("\n")).toEqual(["FLANNEL_IPV6_NETWORK=fd00:10:244::/56", "FLANNEL_IPV6_SUBNET=fd00:10:244:a::1/64", "FLANNEL_MTU=1430", "FLANNEL_IPMASQ=false", ""]);
  expect(parseSubnetEnv(text)).toEqual({ FLANNEL_IPV6_NETWORK: "fd00:10:244::/56", FLANNEL_IPV6_SUBNET: "fd00:10:244:a::1/64", FLANNEL_MTU: "1430", FLANNEL_IPMASQ: "false" });
});

test("written atomically into a new directory, rewritten only on change", () => {
  const path = join(tmp(), "run", "flannel", "subnet.env");
  const e = { network: "10.244.0.0/16", subnet: "10.244.7.0/24", mtu: 1450, ipMasq: true };
  expect(writeSubnetEnv(path, e)).toBe(true);
  expect(writeSubnetEnv(path, e)).toBe(false);
  expect(parseSubnetEnv(readFileSync(path, "utf8"))).toEqual({
    FLANNEL_NETWORK: "10.244.0.0/16",
    FLANNEL_SUBNET: "10.244.7.1/24",
    FLANNEL_MTU: "1450",
    FLANNEL_IPMASQ: "true",
  });
  expect(writeSubnetEnv(path, { ...e, mtu: 1400 })).toBe(true);
  expect(readdirSync(join(path, ".."))).toEqual(["subnet.env"]); // no temp files left
});

test("a failed write leaves no temp file and names the path", () => {
  const d = tmp();
  const path = join(d, "subnet.env");
  // A directory where the file should go makes rename fail.
  mkdirSync(path);
  expect(() => writeSubnetEnv(path, { network: "10.244.0.0/16", subnet: "10.244.7.0/24", mtu: 1450, ipMasq: false })).toThrow(/write .*subnet.env/);
  expect(readdirSync(d)).toEqual(["subnet.env"]);
});

const env = { network: "10.244.0.0/16", subnet: "10.244.7.0/24", mtu: 1450, ipMasq: false };
const isRoot = process.geteuid?.() === 0;

test("a symlink planted at a predictable temp name (<file>.tmp-<pid>) is not followed: its target keeps its content", () => {
  const d = tmp();
  const victim = join(tmp(), "victim");
  writeFileSync(victim, "precious\n");
  const path = join(d, "subnet.env");
  symlinkSync(victim, `${path}.tmp-${process.pid}`);
  expect(writeSubnetEnv(path, env)).toBe(true);
  expect(readFileSync(victim, "utf8")).toBe("precious\n");
  expect(lstatSync(path).isFile()).toBe(true);
  expect(parseSubnetEnv(readFileSync(path, "utf8")).FLANNEL_SUBNET).toBe("10.244.7.1/24");
  // the temp file has a random name created with O_EXCL; nothing else is left
  expect(readdirSync(d).sort()).toEqual(["subnet.env", `subnet.env.tmp-${process.pid}`]);
});

test("a symlink at subnet.env itself is replaced by the real file, never written through", () => {
  const d = tmp();
  const victim = join(tmp(), "victim");
  writeFileSync(victim, formatSubnetEnv(env)); // even with the very content weft would write
  const path = join(d, "subnet.env");
  symlinkSync(victim, path);
  expect(writeSubnetEnv(path, env)).toBe(true);
  expect(lstatSync(path).isSymbolicLink()).toBe(false);
  expect(readFileSync(victim, "utf8")).toBe(formatSubnetEnv(env));
  writeFileSync(victim, "precious\n");
  expect(writeSubnetEnv(path, { ...env, mtu: 1400 })).toBe(true);
  expect(readFileSync(victim, "utf8")).toBe("precious\n");
});

test("a directory others may write to without the sticky bit is refused, naming it; with the sticky bit (like /tmp) it is used", () => {
  const d = join(tmp(), "run");
  mkdirSync(d);
  chmodSync(d, 0o777);
  const path = join(d, "subnet.env");
  expect(() => writeSubnetEnv(path, env)).toThrow(`write ${path}: directory ${d} (mode 0777) is writable by group and others without the sticky bit, so they could replace files in it; run: chmod go-w ${d}`);
  chmodSync(d, 0o775);
  expect(() => writeSubnetEnv(path, env)).toThrow("is writable by group without the sticky bit");
  expect(readdirSync(d)).toEqual([]);
  chmodSync(d, 0o1777);
  expect(writeSubnetEnv(path, env)).toBe(true);
});

test("a new file gets mode 0644 whatever the umask", () => {
  const path = join(tmp(), "subnet.env");
  const old = process.umask(0o077);
  try {
    writeSubnetEnv(path, env);
  } finally {
    process.umask(old);
  }
  expect(statSync(path).mode & 0o777).toBe(0o644);
});

test("a rewrite keeps the existing file's mode (as flannel does); a symlink at the path is replaced by a 0644 file", () => {
  const d = tmp();
  const path = join(d, "subnet.env");
  writeSubnetEnv(path, env);
  chmodSync(path, 0o600);
  expect(writeSubnetEnv(path, { ...env, mtu: 1400 })).toBe(true);
  expect(statSync(path).mode & 0o777).toBe(0o600);
  expect(readFileSync(path, "utf8")).toContain("FLANNEL_MTU=1400");
  chmodSync(path, 0o640);
  expect(writeSubnetEnv(path, { ...env, mtu: 1300 })).toBe(true);
  expect(statSync(path).mode & 0o777).toBe(0o640);
  const link = join(d, "linked.env");
  writeFileSync(join(d, "target"), "x", { mode: 0o600 });
  symlinkSync(join(d, "target"), link);
  writeSubnetEnv(link, env);
  expect(lstatSync(link).isFile()).toBe(true);
  expect(statSync(link).mode & 0o777).toBe(0o644);
});

test.skipIf(!isRoot)("a directory owned by another user is refused (root)", () => {
  const d = join(tmp(), "run");
  mkdirSync(d, { mode: 0o755 });
  chownSync(d, 65534, 65534);
  expect(() => writeSubnetEnv(join(d, "subnet.env"), env)).toThrow(`directory ${d} is owned by uid 65534, who could replace files in it`);
});
