import { parseArgs } from "node:util";
import { ConfigError } from "../config.ts";
import { loadNetConf } from "../net-conf.ts";

/** Validates a net-conf.json and prints the effective config (defaults filled in) as JSON. */
export async function checkConfigCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { "net-conf": { type: "string" } }, strict: true });
  const path = values["net-conf"];
  if (!path) throw new ConfigError("--net-conf: required, the path of a net-conf.json file");
  const net = loadNetConf(path);
  for (const k of net.ignoredKeys) process.stderr.write(`weft check-config: note: ${k} is a flannel key weft does not act on; ignored\n`);
  // A pre-shared key is a secret: say that it is set, never print it.
  const shown = net.backend.type === "wireguard" && net.backend.psk ? { ...net, backend: { ...net.backend, psk: "(set, not shown)" } } : net;
  process.stdout.write(JSON.stringify(shown, null, 2) + "\n");
  return 0;
}
