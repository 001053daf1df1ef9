/** Placeholder until the demo command lands; exits 1 with a clear message. */
export async function demoCommand(): Promise<number> {
  process.stderr.write("weft demo: not implemented in this build\n");
  return 1;
}
