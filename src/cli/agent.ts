/** Placeholder until the agent command lands; exits 1 with a clear message. */
export async function agentCommand(): Promise<number> {
  process.stderr.write("weft agent: not implemented in this build\n");
  return 1;
}
