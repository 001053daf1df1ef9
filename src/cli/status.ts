/** Placeholder until the status command lands; exits 1 with a clear message. */
export async function statusCommand(): Promise<number> {
  process.stderr.write("weft status: not implemented in this build\n");
  return 1;
}
