import { parseArgs } from "node:util";
import { commit, version } from "../version.ts";

/** `weft version`: takes no arguments (anything else is a usage error, exit 2). */
export async function versionCommand(argv: string[] = []): Promise<number> {
  parseArgs({ args: argv, options: {}, strict: true, allowPositionals: false });
  process.stdout.write(`weft ${version}\nbun ${Bun.version}\ncommit ${commit}\n`);
  return 0;
}
