/**
 * Cluster key files: one or more base64-encoded 32-byte AES-256 keys, one per line,
 * `#` starts a comment. The first key is primary (seals everything we send); every key
 * opens, so keys can be rotated by adding the new one second, then moving it first,
 * then removing the old one.
 */
import { readFileSync } from "node:fs";
import { ConfigError } from "../config.ts";
import type { Keyring } from "./types.ts";

const base64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Parses key-file text; `source` names the file in errors. Throws ConfigError naming file and line. */
export function parseKeyFile(text: string, source = "key file"): Keyring {
  const keys: Uint8Array[] = [];
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*/, "").trim();
    if (line === "") return;
    const where = `${source} line ${i + 1}`;
    if (!base64.test(line) || line.length % 4 !== 0) throw new ConfigError(`read cluster key: ${where}: not valid base64 (expected the output of \`weft keygen\`)`);
    const key = new Uint8Array(Buffer.from(line, "base64"));
    if (key.length !== 32) throw new ConfigError(`read cluster key: ${where}: key is ${key.length} bytes, expected 32 (AES-256)`);
    if (seen.has(line)) return;
    seen.add(line);
    keys.push(key);
  });
  if (keys.length === 0) throw new ConfigError(`read cluster key: ${source}: no key found (expected one base64 key per line)`);
  return { primary: keys[0]!, keys };
}

/** Reads and parses a key file. Throws ConfigError naming the file (and line). */
export function loadKeyFile(path: string): Keyring {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`read cluster key ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parseKeyFile(text, path);
}
