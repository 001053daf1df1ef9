/**
 * `weft probe [--timeout-ms N] ADDRESS` (internal): one ICMP echo exchange with ADDRESS
 * from the current network namespace — `weft demo` runs it inside pod namespaces so the
 * demo needs no iputils. Exit 0 on a reply, 1 without one, 2 on bad usage.
 */
import { parseArgs } from "node:util";
import { parseIp } from "../net/cidr.ts";
import { ConfigError } from "../config.ts";

export async function probeCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { "timeout-ms": { type: "string" } }, strict: true, allowPositionals: true });
  const [target, ...extra] = positionals;
  if (target === undefined || extra.length) throw new ConfigError("usage: weft probe [--timeout-ms N] ADDRESS (one IPv4 address)");
  let ip;
  try {
    ip = parseIp(target);
  } catch (e) {
    throw new ConfigError(`ADDRESS: ${(e as Error).message}`);
  }
  if (ip.family !== 4) throw new ConfigError(`ADDRESS: ${target} is not an IPv4 address`);
  const timeoutText = values["timeout-ms"] ?? "5000";
  const timeoutMs = Number(timeoutText);
  if (!/^\d+$/.test(timeoutText) || timeoutMs < 1 || timeoutMs > 600_000) throw new ConfigError(`--timeout-ms: expected 1..600000, got ${JSON.stringify(timeoutText)}`);
  const { icmpProbe } = await import("../sys/icmp.ts");
  const r = icmpProbe(target, { timeoutMs });
  if (r.ok) {
    process.stdout.write(`reply from ${target} in ${r.rttMs} ms\n`);
    return 0;
  }
  process.stdout.write(`no reply from ${target} within ${timeoutMs} ms (${r.sent} sent${r.error ? `, ${r.error}` : ""})\n`);
  return 1;
}
