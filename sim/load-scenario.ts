/**
 * The 1000-lease scenario shared by test/hardening/load.test.ts (correctness only) and
 * bench/load.ts (figures): one real `dist/weft agent` (vxlan) in a namespace, and one
 * fake peer process in a second namespace — a key-holding gossip node (createGossip +
 * real UDP/TCP transport on the underlay) whose push-pull state is `leases` valid lease
 * records of fictitious nodes. The agent joins through the fake peer, so the whole table
 * arrives in its first push-pull and must be programmed into the kernel.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Lines, REPO, createTopology, exec, ipJson, listNamespaces, runTs, type Topology } from "./netns.ts";
import { agentNode, logOf, readiness, rssMb, startAgent, stopAgent, until } from "./agents.ts";

export interface LoadOptions {
  /** Fictitious leases the fake peer serves (at most 1000 with the /26 layout below). */
  leases?: number;
  /** Namespace prefix. */
  prefix?: string;
  /** /v1/nodes requests timed after programming. */
  requests?: number;
  /** Give up waiting for the routes after this long, ms. */
  timeoutMs?: number;
  /**
   * Afterwards, flood the agent's gossip TCP port from the peer namespace with `flood`
   * connections, each sending (without the key) all but the last bytes of a maximal
   * (8 MB) push-pull request, and record the agent's RSS while they are pending.
   */
  flood?: number;
}

export interface LoadResult {
  leases: number;
  /** weft routes (proto 87) in the agent's namespace once programmed. */
  routes: number;
  /** Permanent neighbour entries on weft.1 and FDB entries (vxlan's other per-peer state). */
  neighbours: number;
  fdb: number;
  /** Agent start → ready (lease committed, dataplane up), ms. */
  readyMs: number;
  /** Agent start → all routes present, ms. */
  programMs: number;
  /** Agent resident set after programming and the API requests, MB; peak over its life. */
  rssMb: number;
  rssPeakMb: number;
  /** /v1/nodes: entries returned and latency percentiles, ms. */
  nodesListed: number;
  nodesP50Ms: number;
  nodesP99Ms: number;
  nodesMaxMs: number;
  nodesBytes: number;
  /** With `flood`: connections opened, the agent's peak RSS while they were pending (MB), and whether it stayed ready. */
  floodConnections?: number;
  floodRssPeakMb?: number;
  /** RSS 2 s after the flood finished sending (its connections still open), MB. */
  floodRssAfterMb?: number;
  floodStillReady?: boolean;
}

const FLOOD_SOURCE = `
const { host, n } = JSON.parse(process.argv[2]);
const size = 8 * 1024 * 1024 - 64;
const body = new Uint8Array(size - 16).fill(1);
let opened = 0;
for (let i = 0; i < n; i++) {
  try {
    const s = await Bun.connect({ hostname: host, port: 7946, socket: { data() {}, drain() {}, close() {}, error() {} } });
    const hdr = new Uint8Array(4);
    new DataView(hdr.buffer).setUint32(0, size);
    s.write(hdr);
    let off = 0;
    const end = Date.now() + 5000;
    while (off < body.length && Date.now() < end) {
      const w = s.write(body.subarray(off));
      if (w <= 0) await Bun.sleep(2);
      else off += w;
    }
    opened++;
  } catch {}
}
console.log("flood sent " + opened);
setInterval(() => {}, 1 << 30);
`;

const PEER_SOURCE = (repo: string) => `
import { createGossip, createUdpTransport, lanConfig, loadKeyFile } from ${JSON.stringify(join(repo, "src/gossip/index.ts"))};
import { encodeState } from ${JSON.stringify(join(repo, "src/lease/record-codec.ts"))};
import { realClock } from ${JSON.stringify(join(repo, "src/clock.ts"))};
import { silentLogger } from ${JSON.stringify(join(repo, "src/log.ts"))};
const { n, keyFile, bind } = JSON.parse(process.argv[2]);
const now = Date.now();
const hex = (v, w) => v.toString(16).padStart(w, "0");
const leases = [];
for (let i = 0; i < n; i++) {
  // 10.244.0.0/16 cut into /26s: subnet k starts at 64·k; k = 2.. leaves room for the agent.
  const k = i + 2;
  const a = 64 * k;
  leases.push({
    nodeName: "ghost-" + hex(i, 4), nodeId: hex(i + 1, 32), generation: 1, version: 0,
    subnet: "10.244." + (a >> 8) + "." + (a & 255) + "/26",
    publicIp: "192.0.2." + (100 + (i % 151)),
    backend: { type: "vxlan", vtepMac: "0e:00:00:00:" + hex(i >> 8, 2) + ":" + hex(i & 255, 2) },
    claimedAt: now - 60000, renewedAt: now,
  });
}
const state = encodeState(leases);
const transport = await createUdpTransport({ bindAddr: bind, port: 7946, logger: silentLogger });
const g = createGossip({ name: "loadpeer", advertiseAddr: transport.localAddr(), transport, config: lanConfig(),
  deps: { clock: realClock, logger: silentLogger, keyring: loadKeyFile(keyFile), clusterName: "weft",
    delegate: { notifyMessage() {}, localState: () => state, mergeRemoteState() {} } } });
await g.start();
console.log("peer ready " + state.length + " bytes");
setInterval(() => {}, 1 << 30);
`;

const LATENCY_SOURCE = `
const { requests } = await Bun.stdin.json();
const times = [];
let listed = 0, bytes = 0;
for (let i = 0; i < requests; i++) {
  const t = performance.now();
  const r = await fetch("http://127.0.0.1:7947/v1/nodes");
  const body = await r.text();
  times.push(performance.now() - t);
  if (r.status !== 200) throw new Error("status " + r.status);
  listed = JSON.parse(body).length; bytes = body.length;
}
times.sort((a, b) => a - b);
const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
console.log(JSON.stringify({ listed, bytes, p50: q(0.5), p99: q(0.99), max: times[times.length - 1] }));
`;

const countRoutes = (ns: string) => ipJson<unknown[]>(ns, "route", "show", "proto", "87").length;

/** Runs the scenario; always tears down its namespaces and processes. */
export async function runLoadScenario({ leases = 1000, prefix = "whd-l", requests = 200, timeoutMs = 120_000, flood = 0 }: LoadOptions = {}): Promise<LoadResult> {
  if (leases < 1 || leases > 1000) throw new RangeError(`leases: 1..1000, got ${leases}`);
  let topo: Topology | undefined;
  const dir = mkdtempSync(join(tmpdir(), "weft-load-"));
  const agent = { node: undefined as ReturnType<typeof agentNode> | undefined };
  try {
    topo = createTopology({ prefix, nodes: 2 });
    const [a, p] = topo.nodes as [Topology["nodes"][0], Topology["nodes"][0]];
    writeFileSync(join(dir, "key"), Buffer.alloc(32, 77).toString("base64") + "\n", { mode: 0o600 });
    writeFileSync(join(dir, "net-conf.json"), JSON.stringify({ Network: "10.244.0.0/16", SubnetLen: 26, Backend: { Type: "vxlan" } }));
    writeFileSync(join(dir, "peer.ts"), PEER_SOURCE(REPO));
    const peer = topo.spawn(p.ns, [process.execPath, join(dir, "peer.ts"), JSON.stringify({ n: leases, keyFile: join(dir, "key"), bind: p.ip })]);
    const out = new Lines(peer.stdout);
    await out.waitFor((l) => l.startsWith("peer ready"), 20_000).catch(async (e: Error) => {
      throw new Error(`fake peer did not start: ${e.message}; stderr: ${await new Response(peer.stderr).text()}`);
    });

    const n = (agent.node = agentNode("load1", a.ns, a.ip, dir));
    const t0 = performance.now();
    startAgent(n, { netConf: join(dir, "net-conf.json"), keyFile: join(dir, "key"), join: [`${p.ip}:7946`], extra: ["--log-level", "info"] });
    const withLog = (e: Error) => {
      throw new Error(`${e.message}\n--- agent log (tail) ---\n${logOf(n).slice(-3000)}`);
    };
    await until("agent ready", timeoutMs, () => readiness(n)?.ready === true, 100).catch(withLog);
    const readyMs = performance.now() - t0;
    await until(`${leases} weft routes`, timeoutMs, () => countRoutes(a.ns) >= leases, 100).catch(withLog);
    const programMs = performance.now() - t0;
    const routes = countRoutes(a.ns);
    const neighbours = ipJson<unknown[]>(a.ns, "neigh", "show", "dev", "weft.1", "nud", "permanent").length;
    const fdbOut = exec(a.ns, ["bridge", "-j", "fdb", "show", "dev", "weft.1"]).stdout.trim();
    const fdb = (fdbOut ? (JSON.parse(fdbOut) as { dst?: string }[]) : []).filter((e) => e.dst).length;
    const lat = await runTs<{ listed: number; bytes: number; p50: number; p99: number; max: number }>(a.ns, LATENCY_SOURCE, { requests });
    const pid = n.proc!.pid;
    const comm = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
    if (comm !== "weft") throw new Error(`pid ${pid} is ${comm}, not the agent`);
    const mem = rssMb(pid)!;
    const floodFigures: Partial<LoadResult> = {};
    if (flood > 0) {
      writeFileSync(join(dir, "flood.ts"), FLOOD_SOURCE);
      const f = topo.spawn(p.ns, [process.execPath, join(dir, "flood.ts"), JSON.stringify({ host: a.ip, n: flood })]);
      const fout = new Lines(f.stdout);
      let peak = rssMb(pid)!.rss;
      const sampler = setInterval(() => {
        const m = rssMb(pid);
        if (m) peak = Math.max(peak, m.rss);
      }, 100);
      const line = await fout.waitFor((l) => l.startsWith("flood sent"), 60_000);
      await Bun.sleep(2000);
      clearInterval(sampler);
      floodFigures.floodConnections = Number(line.split(" ")[2]);
      floodFigures.floodRssPeakMb = Math.round(peak * 10) / 10;
      floodFigures.floodRssAfterMb = Math.round((rssMb(pid)?.rss ?? NaN) * 10) / 10;
      floodFigures.floodStillReady = readiness(n)?.ready === true;
      f.kill("SIGKILL");
      await f.exited;
    }
    return {
      ...floodFigures,
      leases,
      routes,
      neighbours,
      fdb,
      readyMs: Math.round(readyMs),
      programMs: Math.round(programMs),
      rssMb: Math.round(mem.rss * 10) / 10,
      rssPeakMb: Math.round(mem.hwm * 10) / 10,
      nodesListed: lat.listed,
      nodesP50Ms: Math.round(lat.p50 * 100) / 100,
      nodesP99Ms: Math.round(lat.p99 * 100) / 100,
      nodesMaxMs: Math.round(lat.max * 100) / 100,
      nodesBytes: lat.bytes,
    };
  } finally {
    if (agent.node) await stopAgent(agent.node);
    await topo?.cleanup();
    rmSync(dir, { recursive: true, force: true });
    const left = topo ? listNamespaces(topo.id) : [];
    if (left.length) throw new Error(`namespaces left behind: ${left.join(", ")}`);
  }
}
