/**
 * `weft agent`: flags/env → Config → Agent, until SIGTERM/SIGINT.
 * Exit codes: 0 clean stop, 1 runtime failure, 2 config error (thrown as ConfigError).
 */
import { parseArgs } from "node:util";
import { Agent } from "../agent.ts";
import { agentFlagOptions, resolveAgentFlags, type AgentFlags } from "../agent-flags.ts";
import { ConfigError, type Config } from "../config.ts";
import { loadNetConf } from "../net-conf.ts";
import { KeyFileError, loadKeyFile } from "../gossip/keyring.ts";
import { createLogger, type LogLevel } from "../log.ts";
import { readLogLevelFile, reload } from "../reload.ts";
import { createNotifier } from "../sys/sdnotify.ts";

export async function agentCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: agentFlagOptions, strict: true, allowPositionals: true });
  if (positionals.length) throw Object.assign(new TypeError(`unexpected argument ${JSON.stringify(positionals[0])}`), { code: "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL" });
  const flags = resolveAgentFlags(values);
  const config: Config = { agent: flags, net: loadNetConf(flags.netConfPath) };
  const keyring = flags.keyFile ? loadKeyring(flags.keyFile) : null;
  const logger = createLogger({ level: startLevel(flags), format: flags.logFormat, component: "weft" });
  if (!keyring) logger.warn("Running without encryption (--insecure): anyone who can reach the gossip port can join and announce leases");
  else if (flags.gossipLegacyWire !== "off") logger.warn("Gossip accepts the legacy wire format, which has no replay protection: finish the upgrade with --gossip-legacy-wire off", { mode: flags.gossipLegacyWire });
  const notifier = createNotifier(process.env, { logger: logger.child("systemd") });
  const agent = new Agent({ config, keyring, logger, notifier });

  let stopping: Promise<void> | undefined;
  const done = new Promise<number>((resolve) => {
    const onSignal = (sig: string) => {
      if (stopping) return;
      logger.info("Stopping", { signal: sig });
      stopping = agent.stop().then(
        () => resolve(0),
        (e) => {
          logger.error("Stop failed", { error: e as Error });
          resolve(1);
        },
      );
    };
    process.on("SIGTERM", () => onSignal("SIGTERM"));
    process.on("SIGINT", () => onSignal("SIGINT"));
  });
  // systemctl reload: re-read the key file and the log level; what does not read keeps its value.
  process.on("SIGHUP", () => {
    logger.info("Reloading", { signal: "SIGHUP" });
    reload({
      ...(flags.keyFile ? { keyFile: flags.keyFile } : {}),
      ...(flags.logLevelFile ? { logLevelFile: flags.logLevelFile } : {}),
      logLevel: flags.logLevel,
      loadKeyring: (path) => loadKeyFile(path),
      setKeyring: (k) => agent.setKeyring(k),
      setLevel: (l) => logger.setLevel(l),
      logger,
    });
  });

  try {
    await agent.start();
  } catch (e) {
    if (stopping) return done;
    logger.error("Agent failed", { error: e as Error });
    await agent.stop().catch(() => {});
    process.stderr.write(`weft agent: ${(e as Error).message}\n`);
    return 1;
  }
  return done;
}

/** The level at start: the log-level file's while it exists, else --log-level; a bad file is a configuration error (exit 2). */
function startLevel(flags: AgentFlags): LogLevel {
  if (!flags.logLevelFile) return flags.logLevel;
  try {
    return readLogLevelFile(flags.logLevelFile) ?? flags.logLevel;
  } catch (e) {
    throw new ConfigError(`--log-level-file: ${(e as Error).message}`, { cause: e });
  }
}

/** The cluster key file; an unusable one is a configuration error (exit 2). */
function loadKeyring(path: string) {
  try {
    return loadKeyFile(path);
  } catch (e) {
    if (e instanceof KeyFileError) throw new ConfigError(e.message, { cause: e });
    throw e;
  }
}
