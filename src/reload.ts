/**
 * What a running agent re-reads on SIGHUP (`systemctl reload weft`): the cluster key
 * file (with the owner and mode checks of the start) and the log level from
 * --log-level-file. Each is applied only when it reads well; otherwise the error is
 * logged and the value in use stays. The key file is how keys rotate without restarts:
 * add the new key second on every node and reload, move it first and reload, remove the
 * old one and reload (every node opens with all its keys, seals with the first).
 *
 * The log level cannot come back from the flags or the environment: a running process
 * sees neither change (systemd re-reads EnvironmentFile only for a new process). So a
 * level that must change at run time lives in a file of its own (--log-level-file), read
 * at start and at every reload: while the file exists its level wins, without it
 * --log-level applies.
 */
import { readFileSync } from "node:fs";
import { keyFingerprint } from "./gossip/keyring.ts";
import type { Keyring } from "./gossip/types.ts";
import { LOG_LEVELS, type LogLevel, type Logger } from "./log.ts";

/** Parses a log-level file: one level word; blank lines and `#` comments are ignored. Throws naming the file. */
export function parseLogLevelFile(text: string, path: string): LogLevel {
  const words = text
    .split(/\r?\n/)
    .map((l) => l.replace(/#.*/, "").trim())
    .filter(Boolean);
  if (words.length !== 1 || !(LOG_LEVELS as readonly string[]).includes(words[0]!)) {
    throw new Error(`read log level ${path}: expected one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(words.join(" "))}`);
  }
  return words[0] as LogLevel;
}

/** Reads a log-level file: its level, or undefined when there is no such file; throws naming the file otherwise. */
export function readLogLevelFile(path: string): LogLevel | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`read log level ${path}: ${(e as Error).message}`, { cause: e });
  }
  return parseLogLevelFile(text, path);
}

/** The key count and the primary key's fingerprint: what status and metrics show of a keyring. */
export function keyringInfo(k: Keyring): { count: number; primary: string } {
  return { count: k.keys.length, primary: keyFingerprint(k.primary) };
}

export interface ReloadOptions {
  /** --key-file; undefined with --insecure (nothing to re-read). */
  keyFile?: string;
  /** --log-level-file; undefined: the level stays as it is. */
  logLevelFile?: string;
  /** --log-level: the level while the log-level file does not exist. */
  logLevel: LogLevel;
  /** Reads and checks the key file (loadKeyFile); throws naming what is wrong. */
  loadKeyring(path: string): Keyring;
  /** Puts the new keyring in use (the gossip layer seals and opens with it). */
  setKeyring(k: Keyring): void;
  setLevel(level: LogLevel): void;
  logger: Logger;
}

/** Re-reads the key file and the log level; returns whether everything read and applied. */
export function reload(o: ReloadOptions): boolean {
  const log = o.logger;
  let ok = true;
  if (o.logLevelFile !== undefined) {
    try {
      const fromFile = readLogLevelFile(o.logLevelFile);
      const level = fromFile ?? o.logLevel;
      o.setLevel(level);
      log.info("Log level set", { level, from: fromFile ? o.logLevelFile : "--log-level (no log-level file)" });
    } catch (e) {
      ok = false;
      log.error("Cannot reload the log level; keeping the one in use", { error: e as Error });
    }
  }
  if (o.keyFile !== undefined) {
    try {
      const k = o.loadKeyring(o.keyFile);
      o.setKeyring(k);
      log.info("Reloaded the cluster key file", { file: o.keyFile, keys: k.keys.length, primary: keyFingerprint(k.primary) });
    } catch (e) {
      ok = false;
      log.error("Cannot reload the cluster key file; keeping the keys in use", { error: e as Error });
    }
  }
  return ok;
}
