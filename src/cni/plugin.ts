/**
 * `weft` as a CNI plugin: what runs when CNI_COMMAND is set (or `weft cni`). Reads the
 * CNI_* environment and the network configuration on stdin, runs one verb, prints the
 * result or the spec's error JSON on stdout, and exits 0 or 1. Nothing agent-like starts
 * here; only the modules the verbs need are loaded.
 */
import { cmdAdd, cmdCheck, cmdDel, cmdGc, cmdStatus, type PluginDeps } from "./commands.ts";
import { formatError, formatResult, toCniError, versionInfo } from "./result.ts";
import { CniCode, CniError, isSupportedVersion, LATEST_VERSION, parseEnv, parseNetConf, SUPPORTED_VERSIONS, type CniCommand, type CniVersion } from "./spec.ts";

export interface PluginIo {
  env: Record<string, string | undefined>;
  /** The whole of stdin ("" when it is empty or closed). */
  readStdin(): Promise<string>;
  /** True when stdin is a terminal (VERSION then does not wait for input). */
  stdinIsTty: boolean;
  out(s: string): void;
  err(s: string): void;
}

/** The real ports: kernel through libnl, host-local records on disk, subnet.env. */
export async function kernelDeps(): Promise<{ deps: PluginDeps; close(): void }> {
  const [{ KernelDataplane }, { DiskStore }, { readNodeSubnet }] = await Promise.all([import("./kernel-dataplane.ts"), import("./store.ts"), import("./subnet-file.ts")]);
  let dp: InstanceType<typeof KernelDataplane> | undefined;
  return {
    deps: {
      dataplane: () => (dp ??= new KernelDataplane()),
      store: (dataDir, network) => new DiskStore(dataDir, network),
      readSubnet: readNodeSubnet,
    },
    close: () => dp?.close(),
  };
}

/** Verbs younger than the oldest spec weft speaks, and the version that brought them. */
const SINCE: Partial<Record<CniCommand, CniVersion>> = { CHECK: "0.4.0", STATUS: "1.1.0", GC: "1.1.0" };

/** cniVersion from raw stdin, if it is one weft speaks (to answer errors in the caller's version). */
function requestedVersion(text: string): CniVersion | undefined {
  try {
    const v = (JSON.parse(text) as { cniVersion?: unknown }).cniVersion;
    return isSupportedVersion(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Runs one plugin invocation; returns the process exit code. */
export async function runPlugin(io: PluginIo, makeDeps: () => Promise<{ deps: PluginDeps; close(): void }> = kernelDeps): Promise<number> {
  let version: CniVersion = LATEST_VERSION;
  let command = io.env.CNI_COMMAND ?? "";
  let ports: { deps: PluginDeps; close(): void } | undefined;
  try {
    const env = parseEnv(io.env);
    command = env.command;
    if (env.command === "VERSION") {
      const text = io.stdinIsTty ? "" : await io.readStdin();
      io.out(JSON.stringify(versionInfo(requestedVersion(text))) + "\n");
      return 0;
    }
    const text = await io.readStdin();
    version = requestedVersion(text) ?? LATEST_VERSION;
    const conf = parseNetConf(text);
    const since = SINCE[env.command];
    if (since && SUPPORTED_VERSIONS.indexOf(conf.cniVersion) < SUPPORTED_VERSIONS.indexOf(since)) {
      throw new CniError(CniCode.IncompatibleVersion, `config version ${conf.cniVersion} does not allow ${env.command}`, `${env.command} arrived in CNI spec ${since}`);
    }
    ports = await makeDeps();
    const { deps } = ports;
    switch (env.command) {
      case "ADD":
        io.out(JSON.stringify(formatResult(cmdAdd(env, conf, deps), conf.cniVersion)) + "\n");
        break;
      case "DEL":
        cmdDel(env, conf, deps);
        break;
      case "CHECK":
        cmdCheck(env, conf, deps);
        break;
      case "GC":
        cmdGc(conf, deps);
        break;
      case "STATUS":
        cmdStatus(conf, deps);
        break;
    }
    return 0;
  } catch (e) {
    const err = toCniError(e);
    io.out(JSON.stringify(formatError(err, version)) + "\n");
    io.err(`weft cni ${command || "?"}: ${err.message}${err.details && err.code !== 999 ? ` (${err.details})` : ""}\n`);
    return 1;
  } finally {
    ports?.close();
  }
}

/** Entry from main.ts with the process's own stdin/stdout/env. */
export function pluginMain(): Promise<number> {
  return runPlugin({
    env: process.env,
    readStdin: () => Bun.stdin.text(),
    stdinIsTty: process.stdin.isTTY === true,
    out: (s) => void process.stdout.write(s),
    err: (s) => void process.stderr.write(s),
  });
}
