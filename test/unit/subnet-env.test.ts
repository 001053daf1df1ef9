import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatSubnetEnv, parseSubnetEnv, writeSubnetEnv } from "../../src/subnet-env.ts";

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
  require("node:fs").mkdirSync(path);
  expect(() => writeSubnetEnv(path, { network: "10.244.0.0/16", subnet: "10.244.7.0/24", mtu: 1450, ipMasq: false })).toThrow(/write .*subnet.env/);
  expect(readdirSync(d)).toEqual(["subnet.env"]);
});
