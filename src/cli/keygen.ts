/**
 * `weft keygen [--out FILE [--force]]`: a new cluster key (32 random bytes, AES-256) as
 * base64. Without --out it goes to stdout. With --out it is written with mode 0600 from
 * the first byte on (a shell redirect creates the file world-readable until a chmod),
 * created exclusively so an existing key is never lost; --force replaces one atomically.
 * The directory must not be writable by other users (src/atomic-file.ts).
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { createFileExclusive, writeFileAtomic } from "../atomic-file.ts";
import { ConfigError } from "../config.ts";

const usage = "usage: weft keygen [--out FILE [--force]]";

export interface KeygenIo {
  out: (s: string) => void;
  err: (s: string) => void;
}

export async function keygenCommand(argv: string[] = [], io: KeygenIo = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) }): Promise<number> {
  let values: { out?: string; force?: boolean };
  try {
    ({ values } = parseArgs({ args: argv, options: { out: { type: "string", short: "o" }, force: { type: "boolean" } }, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new ConfigError(`${(e as Error).message}\n${usage}`, { cause: e });
  }
  if (values.out === "") throw new ConfigError(`--out: expected a file path\n${usage}`);
  if (values.force && values.out === undefined) throw new ConfigError(`--force only applies with --out FILE\n${usage}`);
  const key = randomBytes(32).toString("base64") + "\n";
  if (values.out === undefined) {
    io.out(key);
    return 0;
  }
  const path = values.out;
  try {
    if (values.force) writeFileAtomic(path, key, 0o600);
    else createFileExclusive(path, key, 0o600);
  } catch (e) {
    const exists = ((e as Error).cause as { code?: string } | undefined)?.code === "EEXIST";
    io.err(`weft keygen: ${exists ? `${path} exists; not replacing a key (pass --force to replace it)` : (e as Error).message}\n`);
    return 1;
  }
  io.err(`weft keygen: wrote a new cluster key to ${path} (mode 0600)\n`);
  return 0;
}
