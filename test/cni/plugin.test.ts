/**
 * One plugin invocation end to end over fake ports: environment + stdin in, exactly one
 * JSON document (or nothing) on stdout, exit 0 or 1 — what a runtime parses.
 */
import { describe, expect, test } from "bun:test";
import { runPlugin, type PluginIo } from "../../src/cni/plugin.ts";
import { fakeDeps } from "../fakes/cni.ts";

async function invoke(env: Record<string, string>, stdin: string, opts: { tty?: boolean; f?: ReturnType<typeof fakeDeps> } = {}) {
  const f = opts.f ?? fakeDeps();
  const out: string[] = [];
  const err: string[] = [];
  let made = 0;
  const io: PluginIo = { env, readStdin: async () => stdin, stdinIsTty: !!opts.tty, out: (s) => void out.push(s), err: (s) => void err.push(s) };
  const code = await runPlugin(io, async () => {
    made++;
    return { deps: f.deps, close: () => f.dp.close() };
  });
  return { code, stdout: out.join(""), stderr: err.join(""), json: out.length ? JSON.parse(out.join("")) : undefined, made, f };
}

const ADD = { CNI_COMMAND: "ADD", CNI_CONTAINERID: "c1", CNI_NETNS: "/run/netns/pod1", CNI_IFNAME: "eth0", CNI_PATH: "/opt/cni/bin" };
const conf = (v = "0.4.0", o: object = {}) => JSON.stringify({ cniVersion: v, name: "weft", type: "weft", ...o });

describe("plugin invocation", () => {
  test("ADD prints one result in the requested version and exits 0; the kernel port is closed", async () => {
    const r = await invoke(ADD, conf("0.4.0"));
    expect(r.code).toBe(0);
    expect(r.stdout.endsWith("}\n")).toBe(true);
    expect(r.json.cniVersion).toBe("0.4.0");
    expect(r.json.ips).toEqual([{ version: "4", address: "10.244.3.2/24", gateway: "10.244.3.1", interface: 2 }]);
    expect(r.f.dp.closed).toBe(true);
  });

  test("DEL, CHECK, GC and STATUS print nothing on success", async () => {
    const f = fakeDeps();
    const add = await invoke(ADD, conf("1.0.0"), { f });
    for (const [command, extra] of [
      ["CHECK", { prevResult: add.json }],
      ["STATUS", {}],
      ["GC", { "cni.dev/valid-attachments": [{ containerID: "c1", ifname: "eth0" }] }],
      ["DEL", {}],
    ] as const) {
      const r = await invoke({ ...ADD, CNI_COMMAND: command }, conf("1.1.0", extra), { f });
      expect([command, r.code, r.stdout, r.stderr]).toEqual([command, 0, "", ""]);
    }
  });

  test("an error is the spec's JSON on stdout in the caller's version, a line on stderr, exit 1", async () => {
    const r = await invoke(ADD, conf("0.3.1", { subnetFile: "/nope/subnet.env" }));
    expect(r.code).toBe(1);
    expect(r.json).toEqual({ cniVersion: "0.3.1", code: 11, msg: "subnet file /nope/subnet.env not found" });
    expect(r.stderr).toBe("weft cni ADD: subnet file /nope/subnet.env not found\n");
  });

  test.each([
    ["missing stdin", ADD, "", 6],
    ["garbled stdin", ADD, "{", 6],
    ["unknown cniVersion", ADD, conf("0.1.0"), 1],
    ["missing CNI_NETNS", { ...ADD, CNI_NETNS: "" }, conf(), 4],
    ["a path that is no namespace", { ...ADD, CNI_NETNS: "/etc/hostname" }, conf(), 4],
    ["an interface name too long", { ...ADD, CNI_IFNAME: "a-name-too-long-x" }, conf(), 4],
    ["no CNI_COMMAND", { CNI_CONTAINERID: "c1" }, conf(), 4],
  ])("%s: its error code, nothing attached", async (_, env, stdin, code) => {
    const r = await invoke(env as Record<string, string>, stdin as string);
    expect([r.code, r.json.code]).toEqual([1, code]);
    expect(r.f.dp.ops).toEqual([]);
    expect(r.f.store().list()).toEqual([]);
  });

  test.each([
    ["CHECK", "0.3.1", "0.4.0"],
    ["STATUS", "1.0.0", "1.1.0"],
    ["GC", "0.4.0", "1.1.0"],
  ])("%s with a config of version %s is refused (code 1): it arrived in %s", async (command, v) => {
    const r = await invoke({ ...ADD, CNI_COMMAND: command }, conf(v, { prevResult: {}, "cni.dev/valid-attachments": [] }));
    expect([r.code, r.json.code, r.json.msg, r.made]).toEqual([1, 1, `config version ${v} does not allow ${command}`, 0]);
  });

  test("VERSION answers without touching the kernel, echoing the runtime's version", async () => {
    const r = await invoke({ CNI_COMMAND: "VERSION" }, JSON.stringify({ cniVersion: "0.4.0" }));
    expect([r.code, r.json, r.made]).toEqual([0, { cniVersion: "0.4.0", supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] }, 0]);
    const bare = await invoke({ CNI_COMMAND: "VERSION" }, "", { tty: true });
    expect(bare.json.cniVersion).toBe("1.1.0");
  });
});
