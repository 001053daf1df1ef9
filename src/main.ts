/**
 * weft's entry point: argv → command. Each command lives in src/cli/ and returns an exit
 * code; a ConfigError anywhere becomes exit 2 with its message (contract: usage/config).
 */
import { ConfigError } from "./config.ts";

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, { run: () => Promise<Command>; help: string; hidden?: boolean }> = {
  agent: { run: async () => (await import("./cli/agent.ts")).agentCommand, help: "run the node agent in the foreground" },
  status: { run: async () => (await import("./cli/status.ts")).statusCommand, help: "show this node and the cluster, from the local agent" },
  forget: { run: async () => (await import("./cli/forget.ts")).forgetCommand, help: "remove a dead node's lease for the whole cluster, through the local agent" },
  keygen: { run: async () => (await import("./cli/keygen.ts")).keygenCommand, help: "print a new random cluster key (--out FILE: write it with mode 0600)" },
  version: { run: async () => (await import("./cli/version.ts")).versionCommand, help: "print version, Bun version and git commit" },
  "check-config": { run: async () => (await import("./cli/check-config.ts")).checkConfigCommand, help: "validate a net-conf.json" },
  demo: { run: async () => (await import("./cli/demo.ts")).demoCommand, help: "(root) a local cluster in network namespaces" },
  "install-cni": { run: async () => (await import("./cli/install-cni.ts")).installCniCommand, help: "install weft as the node's CNI plugin (binary + conflist)" },
  cni: { run: async () => (await import("./cni/plugin.ts")).pluginMain, help: "act as a CNI plugin (what runtimes do by setting CNI_COMMAND)" },
  // Internal: the demo's connectivity check inside pod namespaces.
  probe: { run: async () => (await import("./cli/probe.ts")).probeCommand, help: "", hidden: true },
};

function usage(): string {
  const lines = Object.entries(commands)
    .filter(([, c]) => !c.hidden)
    .map(([name, c]) => `  ${name.padEnd(13)} ${c.help}`);
  return `usage: weft <command> [flags]\n\ncommands:\n${lines.join("\n")}\n`;
}

export async function main(argv: string[]): Promise<number> {
  // A container runtime runs the plugin with CNI_COMMAND set and its own argv: that wins
  // over any subcommand, and nothing else is loaded.
  if (process.env.CNI_COMMAND !== undefined) return (await import("./cni/plugin.ts")).pluginMain();
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version") return main(["version"]);
  const cmd = commands[name];
  if (!cmd) {
    process.stderr.write(`weft: unknown command ${JSON.stringify(name)}\n${usage()}`);
    return 2;
  }
  try {
    return await (await cmd.run())(rest);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`weft ${name}: ${e.message}\n`);
      return 2;
    }
    // parseArgs throws TypeError with code ERR_PARSE_ARGS_* for unknown/malformed flags.
    const code = (e as { code?: string }).code;
    if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`weft ${name}: ${(e as Error).message}\n`);
      return 2;
    }
    process.stderr.write(`weft ${name}: ${(e as Error).stack ?? e}\n`);
    return 1;
  }
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2));
  process.exit(code);
}
