import { commit, version } from "../version.ts";

export async function versionCommand(): Promise<number> {
  process.stdout.write(`weft ${version}\nbun ${Bun.version}\ncommit ${commit}\n`);
  return 0;
}
