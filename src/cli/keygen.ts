import { randomBytes } from "node:crypto";

/** A cluster key is 32 random bytes (AES-256), printed as base64 for a key file. */
export async function keygenCommand(): Promise<number> {
  process.stdout.write(randomBytes(32).toString("base64") + "\n");
  return 0;
}
