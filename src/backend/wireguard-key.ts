/**
 * The node's WireGuard key pair. The private key is made once, at the first start with
 * the wireguard backend, and kept in the state directory as `wireguard.key` (base64,
 * as `wg genkey` writes it; mode 0600, created with O_EXCL so two starts cannot both
 * write one). It never leaves this module except towards the device: it is not logged,
 * not in the lease, the API or metrics. The public key is derived from it at every start
 * and published in the lease; a lost state directory means a new key, which reaches
 * peers like any lease change.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, statSync, chmodSync, writeSync, constants } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../log.ts";
import { isBase64Key } from "../net-conf.ts";

export const WIREGUARD_KEY_FILE = "wireguard.key";

export interface WireguardKeys {
  /** base64 of the 32-byte clamped Curve25519 private key. */
  privateKey: string;
  /** base64 of the 32-byte public key, as `wg pubkey` prints it. */
  publicKey: string;
}

/** PKCS#8 DER prefix of an X25519 private key (RFC 8410); the 32 raw bytes follow. */
const X25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");

/**
 * Clamps as Curve25519 (and WireGuard, which stores and reports keys clamped) does, so the
 * key we hold is byte for byte the key the device reads back.
 */
export function clampPrivateKey(raw: Uint8Array): Uint8Array {
  const k = Uint8Array.from(raw);
  k[0]! &= 248;
  k[31]! &= 127;
  k[31]! |= 64;
  return k;
}

/** The public key of a base64 private key (node:crypto X25519). */
export function publicKeyOf(privateKey: string): string {
  const der = Buffer.concat([X25519_PKCS8_PREFIX, Buffer.from(privateKey, "base64")]);
  const jwk = createPublicKey(createPrivateKey({ key: der, format: "der", type: "pkcs8" })).export({ format: "jwk" });
  return Buffer.from(jwk.x!, "base64url").toString("base64");
}

/** A fresh key pair. */
export function generateWireguardKeys(): WireguardKeys {
  const jwk = generateKeyPairSync("x25519").privateKey.export({ format: "jwk" });
  const privateKey = Buffer.from(clampPrivateKey(Buffer.from(jwk.d!, "base64url"))).toString("base64");
  return { privateKey, publicKey: publicKeyOf(privateKey) };
}

/**
 * Reads `<stateDir>/wireguard.key`, or makes it when missing. Throws (the agent exits 1)
 * on a file that is not one base64 32-byte key, naming the file but not its content.
 */
export function loadOrCreateWireguardKeys(stateDir: string, logger: Logger): WireguardKeys {
  const path = join(stateDir, WIREGUARD_KEY_FILE);
  const log = logger.child("wireguard");
  for (let attempt = 0; ; attempt++) {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT" || attempt > 0) throw new Error(`read WireGuard private key ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      const keys = generateWireguardKeys();
      if (writeKeyFile(stateDir, path, keys.privateKey)) {
        log.info("Generated the node's WireGuard key", { file: path, publicKey: keys.publicKey });
        return keys;
      }
      continue; // another start made it first: read that one
    }
    const key = text.trim();
    if (!isBase64Key(key)) throw new Error(`read WireGuard private key ${path}: expected one base64 32-byte key (as \`wg genkey\` writes); move the file away to make a new key`);
    const mode = statSync(path).mode & 0o777;
    if (mode & 0o077) {
      chmodSync(path, 0o600);
      log.warn("WireGuard private key file was readable by others; set its mode to 0600", { file: path, was: `0${mode.toString(8)}` });
    }
    const privateKey = Buffer.from(clampPrivateKey(Buffer.from(key, "base64"))).toString("base64");
    return { privateKey, publicKey: publicKeyOf(privateKey) };
  }
}

/** Writes the key into a new file (O_EXCL, 0600, fsync); false when the file appeared meanwhile. */
function writeKeyFile(dir: string, path: string, privateKey: string): boolean {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw new Error(`create WireGuard private key ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    writeSync(fd, `${privateKey}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return true;
}
