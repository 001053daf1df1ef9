/**
 * weft's plugin under a real container runtime (root; skipped without podman and
 * busybox-static, Debian packages `podman busybox-static`): podman 4 with its CNI network
 * backend, the plugin installed by `weft install-cni` into a temp dir, two containers
 * from a busybox rootfs (no image pull) on a node namespace with a hand-written subnet.env.
 *
 * Isolation: podman runs inside the node's network namespace (nsenter, so the host's
 * cgroup mounts stay visible) and a private mount namespace; its storage, run and tmp
 * directories, containers.conf, CNI dirs and IPAM records are all under the temp dir.
 * In that mount namespace only, the cgroup2 mount of a hybrid cgroup host is unmounted
 * (crun refuses hybrid mode) and containers run with --cgroups disabled.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BIN } from "./cni-invoke.ts";
import { ipJson, listNamespaces, NamespaceGroup, requireRoot } from "../../sim/netns.ts";

const PODMAN = Bun.which("podman");
const BUSYBOX = ["/bin/busybox", "/usr/bin/busybox"].find((p) => existsSync(p));
const skip =
  requireRoot() ??
  (!existsSync(BIN) ? "dist/weft is not built (npm test builds it)" : undefined) ??
  (!PODMAN ? "podman is not installed (apt install podman)" : undefined) ??
  (!BUSYBOX ? "busybox is not installed (apt install busybox-static)" : undefined) ??
  (Bun.which("netavark") ? "netavark is installed: podman would not use its CNI backend" : undefined);

describe.skipIf(!!skip)("podman (CNI backend) runs containers on weft's plugin", () => {
  let group: NamespaceGroup;
  let node: string;
  let dir: string;

  /** Runs a shell script with podman set up, inside the node's netns and a private mount ns. */
  const podman = (script: string) => {
    const p = join(dir, "podman.sh");
    writeFileSync(
      p,
      `set -eu
export CONTAINERS_CONF=${dir}/containers.conf
P="podman --root ${dir}/storage --runroot ${dir}/run --storage-driver vfs --tmpdir ${dir}/tmp"
RUN="--cgroups disabled --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --network weft --rootfs ${dir}/rootfs"
if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
${script}
`,
    );
    const r = Bun.spawnSync(["nsenter", `--net=/run/netns/${node}`, "unshare", "--mount", "--propagation", "private", "sh", p], { stdout: "pipe", stderr: "pipe", timeout: 90_000 });
    return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
  };
  const records = () => (existsSync(join(dir, "ipam", "weft")) ? readdirSync(join(dir, "ipam", "weft")).filter((f) => /^\d/.test(f)) : []);

  beforeAll(() => {
    group = new NamespaceGroup("wpod-");
    node = group.add("n");
    dir = mkdtempSync(join(tmpdir(), "weft-podman-"));
    writeFileSync(join(dir, "subnet.env"), "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n");
    const install = Bun.spawnSync([BIN, "install-cni", "--cni-bin-dir", join(dir, "bin"), "--cni-conf-dir", join(dir, "net.d"), "--subnet-file", join(dir, "subnet.env"), "--data-dir", join(dir, "ipam")]);
    expect(install.exitCode).toBe(0);
    const rootfs = join(dir, "rootfs");
    for (const d of ["bin", "etc", "proc", "sys", "dev", "tmp", "run"]) mkdirSync(join(rootfs, d), { recursive: true });
    copyFileSync(BUSYBOX!, join(rootfs, "bin", "busybox"));
    for (const a of ["sh", "ip", "ping", "sleep", "cat"]) symlinkSync("busybox", join(rootfs, "bin", a));
    writeFileSync(
      join(dir, "containers.conf"),
      `[network]\nnetwork_backend = "cni"\ncni_plugin_dirs = ["${dir}/bin"]\nnetwork_config_dir = "${dir}/net.d"\ndefault_network = "weft"\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nevents_logfile_path = "${dir}/events.log"\n`,
    );
  });

  afterAll(async () => {
    if (dir) podman(`$P rm -af >/dev/null 2>&1 || true`);
    await group?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
    expect(listNamespaces("wpod-")).toEqual([]);
  });

  test("podman sees the network installed by install-cni, driver weft", () => {
    const r = podman(`$P network ls --format '{{.Name}} {{.Driver}}'`);
    expect(r.code).toBe(0);
    expect(r.out.split("\n")).toContain("weft weft");
  });

  test("two containers get addresses from the node subnet and reach each other; podman's DEL frees them", () => {
    const r = podman(`
ID=$($P run -d $RUN /bin/sleep 60)
A=$($P inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' $ID)
echo "A=$A"
echo "ID=$ID"
echo "RECORDS=$(ls ${dir}/ipam/weft | grep '^[0-9]' | tr '\\n' ' ')"
echo "RECORD=$(cat ${dir}/ipam/weft/$A | tr '\\r\\n' '|')"
$P run --rm $RUN /bin/sh -c "ip -4 -o addr show eth0; ip route; ping -c 1 -W 2 $A" 2>&1 | sed 's/^/B: /'
$P rm -f $ID >/dev/null
echo "AFTER=$(ls ${dir}/ipam/weft | grep '^[0-9]' | tr '\\n' ' ')"
`);
    if (r.code !== 0) console.error(r.out, r.err);
    expect(r.code).toBe(0);
    const line = (k: string) => r.out.split("\n").find((l) => l.startsWith(`${k}=`))?.slice(k.length + 1).trim() ?? "";
    const a = line("A");
    expect(a).toMatch(/^10\.244\.5\.\d+$/);
    expect(line("RECORD")).toBe(`${line("ID")}||eth0`);
    expect(r.out).toMatch(/B: .*inet 10\.244\.5\.\d+\/24/);
    expect(r.out).toContain("B: default via 10.244.5.1 dev eth0");
    expect(r.out).toMatch(new RegExp(`B: 1 packets transmitted, 1 packets received`));
    expect(line("RECORDS").split(" ").length).toBe(1);
    expect(line("AFTER")).toBe("");
    expect(records()).toEqual([]);
    // Both containers' host veths are gone; the bridge stays for the next pod.
    expect(ipJson(node, "link", "show", "type", "veth")).toEqual([]);
    expect(ipJson(node, "link", "show", "dev", "cni0").length).toBe(1);
  }, 120_000);
});
