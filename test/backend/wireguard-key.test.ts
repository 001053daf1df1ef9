/** The node's WireGuard key file: made once (0600, O_EXCL), kept across restarts, never logged. */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../src/log.ts";
import { clampPrivateKey, generateWireguardKeys, loadOrCreateWireguardKeys, publicKeyOf } from "../../src/backend/wireguard-key.ts";

const root = mkdtempSync(join(tmpdir(), "weft-wgkey-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `s${n++}`, "state");
const capture = () => {
  const lines: string[] = [];
  return { lines, logger: createLogger({ level: "debug", write: (l) => lines.push(l) }) };
};

describe("WireGuard key file", () => {
  test("first start makes wireguard.key, mode 0600, one base64 key; the log names only the public key", () => {
    const dir = fresh();
    const { lines, logger } = capture();
    const keys = loadOrCreateWireguardKeys(dir, logger);
    const file = join(dir, "wireguard.key");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, "utf8")).toBe(`${keys.privateKey}\n`);
    expect(Buffer.from(keys.privateKey, "base64").length).toBe(32);
    expect(keys.publicKey).toBe(publicKeyOf(keys.privateKey));
    expect(lines.join("\n")).toContain(keys.publicKey);
    expect(lines.join("\n")).not.toContain(keys.privateKey);
  });

  test("a restart reads the same key", () => {
    const dir = fresh();
    const a = loadOrCreateWireguardKeys(dir, capture().logger);
    const b = loadOrCreateWireguardKeys(dir, capture().logger);
    expect(b).toEqual(a);
  });

  test("a lost state directory gives a new key", () => {
    expect(loadOrCreateWireguardKeys(fresh(), capture().logger).publicKey).not.toBe(loadOrCreateWireguardKeys(fresh(), capture().logger).publicKey);
  });

  test("a key file others can read is tightened to 0600, with a warning", () => {
    const dir = fresh();
    const keys = loadOrCreateWireguardKeys(dir, capture().logger);
    chmodSync(join(dir, "wireguard.key"), 0o644);
    const { lines, logger } = capture();
    expect(loadOrCreateWireguardKeys(dir, logger)).toEqual(keys);
    expect(statSync(join(dir, "wireguard.key")).mode & 0o777).toBe(0o600);
    expect(lines.join("\n")).toMatch(/readable by others/);
  });

  test("a corrupt key file is an error naming the file, not its content", () => {
    const dir = fresh();
    loadOrCreateWireguardKeys(dir, capture().logger);
    writeFileSync(join(dir, "wireguard.key"), "s3cr3t-but-not-a-key\n");
    expect(() => loadOrCreateWireguardKeys(dir, capture().logger)).toThrow(/wireguard\.key: expected one base64 32-byte key/);
    try {
      loadOrCreateWireguardKeys(dir, capture().logger);
    } catch (e) {
      expect((e as Error).message).not.toContain("s3cr3t");
    }
  });

  test("keys are clamped as WireGuard stores them, and X25519 matches RFC 7748", () => {
    for (let i = 0; i < 20; i++) {
      const k = Buffer.from(generateWireguardKeys().privateKey, "base64");
      expect([k[0]! & 7, k[31]! & 0x80, k[31]! & 0x40]).toEqual([0, 0, 0x40]);
    }
    // RFC 7748 section 6.1, Alice
    const alice = Buffer.from(clampPrivateKey(Buffer.from("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", "hex"))).toString("base64");
    expect(Buffer.from(publicKeyOf(alice), "base64").toString("hex")).toBe("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  });

  test.skipIf(!Bun.which("wg"))("the public key is what `wg pubkey` derives", () => {
    const keys = generateWireguardKeys();
    const p = Bun.spawnSync(["wg", "pubkey"], { stdin: Buffer.from(`${keys.privateKey}\n`) });
    expect(p.stdout.toString().trim()).toBe(keys.publicKey);
  });
});
