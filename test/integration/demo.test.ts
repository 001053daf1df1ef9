/**
 * `weft demo`: its pure parts (the lab plan, command lines, CNI config) as tables; the
 * cleanup against real namespaces; and, once `dist/weft agent` works, the whole demo end
 * to end (root): every pod reaches every other pod and nothing is left behind — for every
 * backend on a machine without containernetworking-plugins or iputils ping, made so for
 * the demo alone by a private mount namespace (tmpfs over /usr/lib/cni, /dev/null over
 * ping, an empty CNI_PATH) rather than by uninstalling anything.
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { demoCommand, demoDirs, demoNamespaces, makeDemoDir } from "../../src/cli/demo.ts";
import { cniConfig, DEMO_MARKER, planDemo, setupCommands, type DemoOptions } from "../../src/cli/demo-plan.ts";

const isRoot = process.getuid?.() === 0;
const bin = resolve(import.meta.dir, "../../dist/weft");
const rand = () => Math.random().toString(36).slice(2, 7);

/** Where the host keeps the CNI plugins and ping (the mount namespace hides both). */
const CNI_PLUGINS = "/usr/lib/cni";
const PING = Bun.which("ping") ?? "/usr/bin/ping";

/**
 * argv that runs `cmd` in a private mount namespace where CNI_PLUGINS is an empty tmpfs
 * and ping cannot be executed; mounts made there never reach the host (propagation is
 * private), and they vanish with the namespace.
 */
function withoutCniPluginsOrPing(cmd: string[]): string[] {
  const hide = [
    existsSync(CNI_PLUGINS) ? `mount -t tmpfs tmpfs ${CNI_PLUGINS}` : "true",
    existsSync(PING) ? `mount --bind /dev/null ${PING}` : "true",
    `test ! -x ${CNI_PLUGINS}/bridge`,
    `! ping -c 1 -W 1 127.0.0.1 >/dev/null 2>&1`,
  ].join(" && ");
  return ["unshare", "--mount", "--propagation", "private", "sh", "-c", `${hide} && exec "$@"`, "sh", ...cmd];
}

const opts = (o: Partial<DemoOptions> = {}): DemoOptions => ({ backend: "vxlan", nodes: 3, prefix: "wop-dplan", dir: "/tmp/wop-dplan", weft: ["/usr/local/bin/weft"], network: "10.244.0.0/16", ...o });

function capture() {
  const o = { out: "", err: "" };
  return { o, io: { out: (s: string) => void (o.out += s), err: (s: string) => void (o.err += s) } };
}

describe("demo plan (pure)", () => {
  test("names, addresses and files per node", () => {
    const p = planDemo(opts());
    expect(p.underlayNs).toBe("wop-dplan-ul");
    expect(p.nodes.map((n) => [n.name, n.ns, n.podNs, n.ip, n.ulIf])).toEqual([
      ["node1", "wop-dplan-node1", "wop-dplan-pod1", "192.0.2.11", "n1"],
      ["node2", "wop-dplan-node2", "wop-dplan-pod2", "192.0.2.12", "n2"],
      ["node3", "wop-dplan-node3", "wop-dplan-pod3", "192.0.2.13", "n3"],
    ]);
    expect(p.nodes[1]!.subnetFile).toBe("/tmp/wop-dplan/node2/subnet.env");
    expect(new Set(p.nodes.map((n) => n.keyFile)).size).toBe(1);
    expect(p.netConf).toEqual({ Network: "10.244.0.0/16", SubnetLen: 24, Backend: { Type: "vxlan" } });
  });

  test("agent command line follows the contract's flags and runs in the node namespace", () => {
    const n = planDemo(opts({ weft: ["/usr/bin/bun", "/src/main.ts"] })).nodes[1]!;
    expect(n.agentArgv.join(" ")).toBe(
      "ip netns exec wop-dplan-node2 /usr/bin/bun /src/main.ts agent --net-conf /tmp/wop-dplan/node2/net-conf.json --node-name node2 --iface eth0 --public-ip 192.0.2.12 --gossip-port 7946 --join 192.0.2.11:7946 --key-file /tmp/wop-dplan/cluster.key --state-dir /tmp/wop-dplan/node2/state --subnet-file /tmp/wop-dplan/node2/subnet.env --api-listen 127.0.0.1:7947 --bridge cni0 --log-level info",
    );
  });

  test("wireguard: each agent runs with its own /var/run/wireguard (a tmpfs in the mount namespace of ip netns exec), so the nodes' wireguard-go control sockets do not collide", () => {
    const n = planDemo(opts({ backend: "wireguard", weft: ["/usr/local/bin/weft"] })).nodes[0]!;
    expect(n.agentArgv.slice(0, 8)).toEqual(["ip", "netns", "exec", "wop-dplan-node1", "sh", "-c", 'mkdir -p /var/run/wireguard && mount -t tmpfs -o mode=0700 weft-demo /var/run/wireguard && exec "$@"', "weft-demo-agent"]);
    expect(n.agentArgv.slice(8, 10)).toEqual(["/usr/local/bin/weft", "agent"]);
    expect(planDemo(opts({ backend: "vxlan" })).nodes[0]!.agentArgv).not.toContain("sh");
  });

  test("every setup command acts inside a demo namespace, never the host's", () => {
    const p = planDemo(opts());
    const cmds = setupCommands(p);
    expect(cmds.slice(0, 4).map((c) => c.join(" "))).toEqual(["ip netns add wop-dplan-ul", "ip -n wop-dplan-ul link set lo up", "ip -n wop-dplan-ul link add br0 type bridge", "ip -n wop-dplan-ul link set br0 up"]);
    for (const c of cmds) {
      const target = c[1] === "-n" ? c[2] : c[1] === "netns" ? c[3] : undefined;
      expect([c.join(" "), target?.startsWith("wop-dplan-")]).toEqual([c.join(" "), true]);
    }
    expect(cmds.filter((c) => c[2] === "add" && c[1] === "netns").length).toBe(1 + 2 * 3);
  });

  test.each([
    [{ nodes: 1 }, /--nodes: expected 2..50/],
    [{ nodes: 51 }, /--nodes/],
    [{ prefix: "Bad_Prefix" }, /--prefix/],
    [{ prefix: "x".repeat(30) }, /--prefix/],
  ] as const)("planDemo rejects %j", (o, err) => {
    expect(() => planDemo(opts(o))).toThrow(err);
  });

  test("pods are attached by weft's own CNI plugin, fed the node's subnet.env", () => {
    const n = planDemo(opts()).nodes[1]!;
    expect(cniConfig(n)).toEqual({ cniVersion: "1.1.0", name: "weft", type: "weft", subnetFile: "/tmp/wop-dplan/node2/subnet.env", dataDir: "/tmp/wop-dplan/node2/cni" });
  });

  test("only namespaces under the prefix are demo's", () => {
    const list = "wop-dplan-node1 (id: 3)\nwop-dplan-ul (id: 1)\nwop-dplanx-node1\nother-ns\nwop-dplan-pod1\n";
    expect(demoNamespaces("wop-dplan", list)).toEqual(["wop-dplan-node1", "wop-dplan-ul", "wop-dplan-pod1"]);
  });

  test.each([[["--backend", "gre"]], [["--nodes", "abc"]], [["--nodes", "1"]], [["--bogus"]], [["stray"]], [["--prefix", "UPPER"]]])("bad flags %j exit 2", async (argv) => {
    const { o, io } = capture();
    expect(await demoCommand(argv, io)).toBe(2);
    expect(o.err).toContain("weft demo:");
  });
});

describe("demo directory", () => {
  test("each run gets a fresh private directory (mkdtemp, 0700, ours) with a marker; --cleanup finds only such directories", () => {
    const parent = mkdtempSync(join(tmpdir(), "wop-ddir-"));
    try {
      const a = makeDemoDir("wop-x", parent);
      const b = makeDemoDir("wop-x", parent);
      expect(a).not.toBe(b);
      expect(a).toMatch(new RegExp(`^${parent}/wop-x-[A-Za-z0-9]{6}$`));
      const st = statSync(a);
      expect([st.mode & 0o777, st.uid]).toEqual([0o700, process.geteuid!()]);
      expect(lstatSync(join(a, DEMO_MARKER)).isFile()).toBe(true);
      // look-alikes that are not the demo's: a symlink, a directory without the marker, one others may enter
      const elsewhere = mkdtempSync(join(parent, "target-"));
      writeFileSync(join(elsewhere, DEMO_MARKER), "");
      symlinkSync(elsewhere, join(parent, "wop-x-link00"));
      mkdirSync(join(parent, "wop-x-nomark"), { mode: 0o700 });
      mkdirSync(join(parent, "wop-x-opened"));
      chmodSync(join(parent, "wop-x-opened"), 0o755);
      writeFileSync(join(parent, "wop-x-opened", DEMO_MARKER), "");
      mkdirSync(join(parent, "wop-xy-abcdef"), { mode: 0o700 });
      writeFileSync(join(parent, "wop-xy-abcdef", DEMO_MARKER), "");
      expect(demoDirs("wop-x", parent).sort()).toEqual([a, b].sort());
      if (isRoot) {
        chownSync(b, 65534, 65534);
        expect(demoDirs("wop-x", parent)).toEqual([a]);
      }
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });
});

/** Nothing of a demo run may be left in the temp dir (its directory is `<prefix>-XXXXXX`). */
const leftInTmp = (prefix: string) => readdirSync(tmpdir()).filter((n) => n === prefix || n.startsWith(`${prefix}-`));

describe.skipIf(!isRoot)("demo cleanup against real namespaces (root)", () => {
  test("--cleanup stops processes inside the prefix's namespaces and deletes them, nothing else", async () => {
    const prefix = `wop-dc${rand()}`;
    const bystander = `wop-dcby${rand()}`;
    const made = [`${prefix}-ul`, `${prefix}-node1`, `${prefix}-pod1`, bystander];
    try {
      for (const ns of made) expect(Bun.spawnSync(["ip", "netns", "add", ns]).exitCode).toBe(0);
      Bun.spawnSync(["ip", "-n", `${prefix}-ul`, "link", "add", "n1", "type", "veth", "peer", "name", "eth0", "netns", `${prefix}-node1`]);
      const sleeper = Bun.spawn(["ip", "netns", "exec", `${prefix}-node1`, "sleep", "300"]);
      await waitUntil(() => Bun.spawnSync(["ip", "netns", "pids", `${prefix}-node1`]).stdout.toString().trim() !== "", 5000);
      const { o, io } = capture();
      expect(await demoCommand(["--cleanup", "--prefix", prefix], io)).toBe(0);
      expect(o.out).toContain("removed 3 namespaces");
      expect(await sleeper.exited).not.toBe(0);
      const list = Bun.spawnSync(["ip", "netns", "list"]).stdout.toString();
      expect(demoNamespaces(prefix, list)).toEqual([]);
      expect(list).toContain(bystander);
    } finally {
      for (const ns of made) Bun.spawnSync(["ip", "netns", "del", ns]);
    }
  });
});

/** True when dist/weft has a working agent (not the placeholder). */
function agentAvailable(): boolean {
  if (!existsSync(bin)) return false;
  const r = Bun.spawnSync([bin, "agent", "--net-conf", "/nonexistent/wop.json", "--insecure"], { stderr: "pipe", stdout: "pipe", timeout: 5000 });
  return !(r.stderr.toString() + r.stdout.toString()).includes("not implemented");
}

describe.skipIf(!isRoot || !agentAvailable())("dist/weft demo end to end (root, needs a working `weft agent`)", () => {
  test.each([
    ["vxlan", 3],
    ["host-gw", 2],
    ["udp", 2],
    // Through wireguard-go where the kernel has no WireGuard module (the test packages install it).
    ...(existsSync("/sys/module/wireguard") || Bun.which("wireguard-go") ? ([["wireguard", 2]] as const) : []),
  ] as const)("%s with %d nodes, no CNI plugins and no ping on the machine: all pods reachable, nothing left behind; a path prepared in the temp dir by another user is not used", async (backend, nodes) => {
    const prefix = `wop-d${rand()}`;
    const emptyCniPath = mkdtempSync(join(tmpdir(), "wop-cnipath-"));
    // What another user could prepare at the predictable path: a symlink to a directory of theirs.
    const trap = mkdtempSync(join(tmpdir(), "wop-trap-"));
    chmodSync(trap, 0o777);
    chownSync(trap, 65534, 65534);
    symlinkSync(trap, join(tmpdir(), prefix));
    try {
      const p = Bun.spawn(withoutCniPluginsOrPing([bin, "demo", "--backend", backend, "--nodes", String(nodes), "--prefix", prefix]), {
        stdout: "pipe",
        stderr: "pipe",
        env: { ...process.env, CNI_PATH: emptyCniPath },
      });
      const timer = setTimeout(() => p.kill("SIGINT"), 110_000);
      const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      clearTimeout(timer);
      if (code !== 0) console.error(out, err);
      expect(code).toBe(0);
      const pairs = nodes * (nodes - 1);
      expect(out).toContain(`all ${pairs} pod-to-pod probes answered`);
      expect(out).not.toContain("FAIL");
      expect(readdirSync(emptyCniPath)).toEqual([]);
      for (let i = 1; i <= nodes; i++) expect(out).toMatch(new RegExp(`node${i}\\s+192\\.0\\.2\\.${10 + i}\\s+10\\.244\\.\\d+\\.0/24\\s+${backend}`));
      expect(readdirSync(trap)).toEqual([]);
      expect(lstatSync(join(tmpdir(), prefix)).isSymbolicLink()).toBe(true);
    } finally {
      rmSync(emptyCniPath, { recursive: true, force: true });
      rmSync(join(tmpdir(), prefix), { force: true });
      rmSync(trap, { recursive: true, force: true });
      // Whatever happened, nothing of ours may remain.
      const left = demoNamespaces(prefix, Bun.spawnSync(["ip", "netns", "list"]).stdout.toString());
      if (left.length) await demoCommand(["--cleanup", "--prefix", prefix], capture().io);
      expect(left).toEqual([]);
      expect(leftInTmp(prefix)).toEqual([]);
      expect(processesMentioning(prefix)).toEqual([]);
    }
  }, 120_000);

  test("--keep leaves a working cluster; --cleanup removes it", async () => {
    const prefix = `wop-d${rand()}`;
    try {
      const p = Bun.spawnSync([bin, "demo", "--nodes", "2", "--keep", "--prefix", prefix], { stdout: "pipe", stderr: "pipe", timeout: 110_000 });
      const out = p.stdout.toString();
      if (p.exitCode !== 0) console.error(out, p.stderr.toString());
      expect(p.exitCode).toBe(0);
      expect(out).toContain(`weft demo --cleanup --prefix ${prefix}`);
      expect(demoNamespaces(prefix, Bun.spawnSync(["ip", "netns", "list"]).stdout.toString()).sort()).toEqual([`${prefix}-node1`, `${prefix}-node2`, `${prefix}-pod1`, `${prefix}-pod2`, `${prefix}-ul`]);
      expect(processesMentioning(prefix).length).toBe(2);
      // The cluster still answers after the demo process is gone.
      const st = Bun.spawnSync(["ip", "netns", "exec", `${prefix}-node2`, bin, "status", "--json"], { stdout: "pipe", stderr: "pipe" });
      expect(st.exitCode).toBe(0);
      expect((JSON.parse(st.stdout.toString()) as { nodes: unknown[] }).nodes.length).toBe(2);
      const c = Bun.spawnSync([bin, "demo", "--cleanup", "--prefix", prefix], { stdout: "pipe", stderr: "pipe" });
      expect(c.exitCode).toBe(0);
      expect(c.stdout.toString()).toContain("removed 5 namespaces");
    } finally {
      const left = demoNamespaces(prefix, Bun.spawnSync(["ip", "netns", "list"]).stdout.toString());
      if (left.length) await demoCommand(["--cleanup", "--prefix", prefix], capture().io);
      expect(left).toEqual([]);
      expect(leftInTmp(prefix)).toEqual([]);
      expect(processesMentioning(prefix)).toEqual([]);
    }
  }, 120_000);

  test("Ctrl-C during the demo stops the agents and removes everything (exit 130)", async () => {
    const prefix = `wop-d${rand()}`;
    try {
      const p = Bun.spawn([bin, "demo", "--nodes", "2", "--prefix", prefix], { stdout: "pipe", stderr: "pipe" });
      const reader = p.stdout.getReader();
      let out = "";
      // Interrupt once the agents are running, i.e. mid-build.
      while (!out.includes("agent pid")) {
        const { value, done } = await reader.read();
        if (done) break;
        out += new TextDecoder().decode(value);
      }
      p.kill("SIGINT");
      expect(await p.exited).toBe(130);
      reader.releaseLock();
    } finally {
      const left = demoNamespaces(prefix, Bun.spawnSync(["ip", "netns", "list"]).stdout.toString());
      if (left.length) await demoCommand(["--cleanup", "--prefix", prefix], capture().io);
      expect(left).toEqual([]);
      expect(leftInTmp(prefix)).toEqual([]);
      expect(processesMentioning(prefix)).toEqual([]);
    }
  }, 60_000);
});

/** Pids whose command line mentions `text` (demo agents carry their /tmp/<prefix>/ paths). */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, "utf8").includes(text)) pids.push(Number(d));
    } catch {}
  }
  return pids;
}

async function waitUntil(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await Bun.sleep(20);
  }
}
