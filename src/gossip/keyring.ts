/**
 * Cluster key files: one or more base64-encoded 32-byte AES-256 keys, one per line,
 * `#` starts a comment. The first key is primary (seals everything we send); every key
 * opens, so keys can be rotated by adding the new one second, then moving it first,
 * then removing the old one.
 *
 * Whoever can read a key file can join the cluster and write leases; whoever can write
 * it can make the agent use their key. So a key file is accepted only when it is a
 * regular file owned by root or by the agent's own user, with no permission bits for
 * group or others (as ssh treats private keys). The checks run on the opened file
 * (fstat), so a swap between check and read cannot slip another file in.
 */
import { createHash } from "node:crypto";
import { closeSync, constants, fstatSync, openSync, readFileSync, type Stats } from "node:fs";
import type { Keyring } from "./types.ts";

/**
 * A key file that cannot be used: its text names the file (and line, or what is wrong
 * with it, and the fix). The agent's command line turns it into a configuration error.
 */
export class KeyFileError extends Error {
  override name = "KeyFileError";
}

const base64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Parses key-file text; `source` names the file in errors. Throws KeyFileError naming file and line. */
export function parseKeyFile(text: string, source = "key file"): Keyring {
  const keys: Uint8Array[] = [];
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*/, "").trim();
    if (line === "") return;
    const where = `${source} line ${i + 1}`;
    if (!base64.test(line) || line.length % 4 !== 0) throw new KeyFileError(`read cluster key: ${where}: not valid base64 (expected the output of \`weft keygen\`)`);
    const key = new Uint8Array(Buffer.from(line, "base64"));
    if (key.length !== 32) throw new KeyFileError(`read cluster key: ${where}: key is ${key.length} bytes, expected 32 (AES-256)`);
    if (seen.has(line)) return;
    seen.add(line);
    keys.push(key);
  });
  if (keys.length === 0) throw new KeyFileError(`read cluster key: ${source}: no key found (expected one base64 key per line)`);
  return { primary: keys[0]!, keys };
}

/**
 * Why a key file with these stats must not be used, or undefined. `uid` is the agent's
 * effective uid: the file may belong to it or to root.
 */
export function keyFileProblem(st: Pick<Stats, "mode" | "uid" | "isFile">, path: string, uid: number): string | undefined {
  if (!st.isFile()) return "not a regular file";
  if (st.uid !== 0 && st.uid !== uid) return `owned by uid ${st.uid}, not by root${uid !== 0 ? ` or the agent's user (uid ${uid})` : ""}: that user can replace the key; run: chown ${uid === 0 ? "root" : uid} ${path}`;
  const loose = st.mode & 0o077;
  if (loose !== 0) {
    const who = [loose & 0o070 ? "group" : "", loose & 0o007 ? "others" : ""].filter(Boolean).join(" and ");
    return `mode ${(st.mode & 0o7777).toString(8).padStart(4, "0")} gives ${who} access to the cluster key (anyone who reads it can join the cluster and forge leases); run: chmod 600 ${path}`;
  }
  return undefined;
}

/**
 * Reads and parses a key file after checking its owner and mode ({@link keyFileProblem}).
 * Throws KeyFileError naming the file (and line, or what is wrong with it).
 */
export function loadKeyFile(path: string, { uid = process.geteuid?.() ?? 0 }: { uid?: number } = {}): Keyring {
  let text: string;
  let fd: number | undefined;
  try {
    // O_NONBLOCK: opening a FIFO planted at the path must not hang the agent; it fails the regular-file check.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
    const problem = keyFileProblem(fstatSync(fd), path, uid);
    if (problem) throw new KeyFileError(`read cluster key ${path}: ${problem}`);
    text = readFileSync(fd, "utf8");
  } catch (err) {
    if (err instanceof KeyFileError) throw err;
    throw new KeyFileError(`read cluster key ${path}: ${(err as Error).message}`, { cause: err });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return parseKeyFile(text, path);
}

/**
 * A short name for a key that reveals nothing of it: the first 16 hex digits of its
 * SHA-256. Operators compare it across nodes (status, metrics) to see which key seals.
 */
export function keyFingerprint(key: Uint8Array): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 16);
}
