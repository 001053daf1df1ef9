/**
 * The CNI input rules as tables: the CNI_* environment per command and the network
 * configuration, each bad input with the spec's error code and a message naming it.
 */
import { describe, expect, test } from "bun:test";
import { CniCode, CniError, DEFAULTS, parseEnv, parseNetConf } from "../../src/cni/spec.ts";

const codeOf = (fn: () => unknown): { code: number; msg: string } => {
  try {
    fn();
  } catch (e) {
    if (e instanceof CniError) return { code: e.code, msg: e.message };
    throw e;
  }
  throw new Error("did not throw");
};

const base = { CNI_CONTAINERID: "abc123", CNI_NETNS: "/run/netns/p", CNI_IFNAME: "eth0" };

describe("CNI environment", () => {
  test.each([
    ["ADD", base, { command: "ADD", containerId: "abc123", netns: "/run/netns/p", ifname: "eth0" }],
    ["CHECK", base, { command: "CHECK", containerId: "abc123", netns: "/run/netns/p", ifname: "eth0" }],
    ["DEL without CNI_NETNS", { CNI_CONTAINERID: "a", CNI_IFNAME: "eth0" }, { command: "DEL", containerId: "a", ifname: "eth0" }],
    ["VERSION needs nothing", {}, { command: "VERSION" }],
    ["STATUS needs nothing", {}, { command: "STATUS" }],
    ["GC with CNI_PATH", { CNI_PATH: "/opt/cni/bin" }, { command: "GC", path: "/opt/cni/bin" }],
    // libcni's config validation: VERSION with placeholder values it does not use.
    ["VERSION with placeholders", { CNI_CONTAINERID: "dummy", CNI_NETNS: "dummy", CNI_IFNAME: "dummy" }, { command: "VERSION" }],
  ] as const)("%s is accepted", (_, env, want) => {
    const command = _.split(" ")[0]!;
    expect(parseEnv({ CNI_COMMAND: command, ...env }) as unknown).toEqual(want);
  });

  test.each([
    ["no CNI_COMMAND", {}, /CNI_COMMAND: unknown command ""/],
    ["unknown command", { CNI_COMMAND: "GET" }, /unknown command "GET"/],
    ["ADD without CNI_NETNS", { CNI_COMMAND: "ADD", CNI_CONTAINERID: "a", CNI_IFNAME: "eth0" }, /missing CNI_NETNS/],
    ["ADD with nothing", { CNI_COMMAND: "ADD" }, /missing CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME/],
    ["CHECK without CNI_IFNAME", { CNI_COMMAND: "CHECK", CNI_CONTAINERID: "a", CNI_NETNS: "/n" }, /missing CNI_IFNAME/],
    ["DEL without container id", { CNI_COMMAND: "DEL", CNI_IFNAME: "eth0" }, /missing CNI_CONTAINERID/],
    ["interface name too long", { CNI_COMMAND: "ADD", ...base, CNI_IFNAME: "eth0123456789012" }, /CNI_IFNAME: .*longer than 15 bytes/],
    ["interface name with a slash", { CNI_COMMAND: "ADD", ...base, CNI_IFNAME: "a/b" }, /CNI_IFNAME/],
    ["container id with a slash", { CNI_COMMAND: "DEL", CNI_CONTAINERID: "../x", CNI_IFNAME: "eth0" }, /CNI_CONTAINERID "..\/x"/],
    ["relative netns path", { CNI_COMMAND: "ADD", ...base, CNI_NETNS: "netns/p" }, /CNI_NETNS "netns\/p" must be an absolute path/],
  ] as const)("%s: code 4 naming the variable", (_, env, msg) => {
    const e = codeOf(() => parseEnv(env));
    expect(e.code).toBe(CniCode.InvalidEnvironment);
    expect(e.msg).toMatch(msg);
  });
});

describe("network configuration", () => {
  const conf = (o: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: "1.0.0", name: "weft", type: "weft", ...o });

  test("defaults follow the contract", () => {
    const c = parseNetConf(conf());
    expect(c).toEqual({
      cniVersion: "1.0.0",
      name: "weft",
      type: "weft",
      subnetFile: "/run/flannel/subnet.env",
      dataDir: "/var/lib/cni/networks",
      bridge: "cni0",
      mtu: undefined,
      hairpinMode: true,
      dns: undefined,
      prevResult: undefined,
      validAttachments: undefined,
    });
    expect(DEFAULTS.dataDir).toBe("/var/lib/cni/networks");
  });

  test("every weft key and the runtime's keys are read", () => {
    const c = parseNetConf(
      conf({
        cniVersion: "0.3.1",
        subnetFile: "/s/subnet.env",
        dataDir: "/d",
        bridge: "br-pods",
        mtu: 1400,
        hairpinMode: false,
        dns: { nameservers: ["10.96.0.10"] },
        runtimeConfig: { portMappings: [] },
        capabilities: { portMappings: true },
        args: { labels: {} },
        "cni.dev/valid-attachments": [{ containerID: "c1", ifname: "eth0" }],
        "cni.dev/future-key": 1,
      }),
    );
    expect([c.cniVersion, c.subnetFile, c.dataDir, c.bridge, c.mtu, c.hairpinMode, c.dns, c.validAttachments]).toEqual([
      "0.3.1",
      "/s/subnet.env",
      "/d",
      "br-pods",
      1400,
      false,
      { nameservers: ["10.96.0.10"] },
      [{ containerID: "c1", ifname: "eth0" }],
    ]);
  });

  test("libcni's older attachments key is read when the newer one is absent", () => {
    expect(parseNetConf(conf({ "cni.dev/attachments": [{ containerID: "c", ifname: "e" }] })).validAttachments).toEqual([{ containerID: "c", ifname: "e" }]);
  });

  test.each([
    ["empty stdin", "", CniCode.DecodeFailure, /no network configuration on stdin/],
    ["whitespace", " \n", CniCode.DecodeFailure, /no network configuration/],
    ["garbled JSON", '{"cniVersion": "1.0.0",', CniCode.DecodeFailure, /not valid JSON/],
    ["an array", "[]", CniCode.DecodeFailure, /expected a JSON object/],
    ["no cniVersion", JSON.stringify({ name: "n", type: "weft" }), CniCode.InvalidConfig, /cniVersion is missing/],
    ["cniVersion 0.2.0", conf({ cniVersion: "0.2.0" }), CniCode.IncompatibleVersion, /incompatible CNI version "0.2.0"/],
    ["cniVersion 2.0.0", conf({ cniVersion: "2.0.0" }), CniCode.IncompatibleVersion, /"2.0.0"/],
    ["cniVersion a number", conf({ cniVersion: 1 }), CniCode.IncompatibleVersion, /incompatible CNI version 1/],
    ["no name", JSON.stringify({ cniVersion: "1.0.0", type: "weft" }), CniCode.InvalidConfig, /name:/],
    ["a name that is no directory name", conf({ name: "../etc" }), CniCode.InvalidConfig, /name: must start with a letter or digit/],
    ["no type", JSON.stringify({ cniVersion: "1.0.0", name: "n" }), CniCode.InvalidConfig, /type:/],
    ["a typo", conf({ hairpinmode: false }), CniCode.UnsupportedField, /unsupported field "hairpinmode": false/],
    ["an ipam section", conf({ ipam: { type: "host-local" } }), CniCode.UnsupportedField, /unsupported field "ipam"/],
    ["ipMasq", conf({ ipMasq: true }), CniCode.UnsupportedField, /"ipMasq": true/],
    ["relative subnetFile", conf({ subnetFile: "subnet.env" }), CniCode.InvalidConfig, /subnetFile: subnetFile must be an absolute path/],
    ["relative dataDir", conf({ dataDir: "data" }), CniCode.InvalidConfig, /dataDir/],
    ["bridge name too long", conf({ bridge: "a-very-long-bridge" }), CniCode.InvalidConfig, /bridge: must be a valid interface name/],
    ["mtu a string", conf({ mtu: "1450" }), CniCode.InvalidConfig, /mtu:/],
    ["mtu too small", conf({ mtu: 10 }), CniCode.InvalidConfig, /mtu:/],
    ["hairpinMode a string", conf({ hairpinMode: "yes" }), CniCode.InvalidConfig, /hairpinMode:/],
    ["attachments without ifname", conf({ "cni.dev/valid-attachments": [{ containerID: "c" }] }), CniCode.InvalidConfig, /cni.dev\/valid-attachments.0.ifname/],
  ] as const)("%s is refused with its code", (_, text, code, msg) => {
    const e = codeOf(() => parseNetConf(text));
    expect(e.code).toBe(code);
    expect(e.msg).toMatch(msg);
  });
});
