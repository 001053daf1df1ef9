/**
 * Replay from the wire against real agents (root): three `dist/weft agent` processes in
 * node namespaces. node2's underlay is captured with tcpdump while node3 joins (its
 * push-pull streams) and gossips (its pings); node3 is then killed, and what was captured
 * is sent again as an attacker on the path would: the UDP packets from node3's own
 * address and from another node's, the TCP streams from node3's address. node2 must
 * refuse every one (counted in its /metrics), answer none, and go on seeing node3 as
 * down.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { api, logOf, nodesOf, startAgentCluster, until, type AgentCluster, type AgentNode } from "../../sim/agents.ts";
import { Lines, listNamespaces, requireRoot, runTs } from "../../sim/netns.ts";
import { readPcap } from "../../sim/pcap.ts";
import { BIN } from "./cni-invoke.ts";

const PREFIX = "wrp-";
const skip = requireRoot() ?? (!existsSync(BIN) ? "dist/weft is not built (npm test builds it)" : undefined) ?? (!Bun.which("tcpdump") ? "tcpdump missing (apt install tcpdump)" : undefined) ?? (!Bun.which("curl") ? "curl is needed to read the agents' API" : undefined);

/** Sends the captured bytes from inside a node namespace; reports what came back. */
const SENDER = `
import { connect } from "node:net";
const input = await Bun.stdin.json();
const got = [];
const sock = await Bun.udpSocket({ hostname: input.bind, port: input.port, socket: { data: (_s, d) => void got.push(d.length) } });
for (const b64 of input.udp) {
  const d = Buffer.from(b64, "base64");
  while (!sock.send(d, 7946, input.target)) await Bun.sleep(1);
}
const tcp = [];
for (const b64 of input.tcp) {
  tcp.push(await new Promise((resolve) => {
    let n = 0;
    const s = connect({ host: input.target, port: 7946 });
    s.on("connect", () => s.write(Buffer.from(b64, "base64")));
    s.on("data", (d) => void (n += d.length));
    s.on("close", () => resolve(n));
    s.on("error", () => {});
    s.setTimeout(3000, () => s.destroy());
  }));
}
await Bun.sleep(input.listenMs);
sock.close();
console.log(JSON.stringify({ udpReplies: got.length, tcpReplyBytes: tcp }));
`;

interface Sent {
  udpReplies: number;
  tcpReplyBytes: number[];
}

const metric = (body: string, name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(body)?.[1] ?? NaN);

describe.skipIf(!!skip)("replayed gossip from the wire against real agents", () => {
  let c: AgentCluster;
  let udp: Uint8Array[] = [];
  let tcp: Uint8Array[] = [];

  beforeAll(async () => {
    c = await startAgentCluster({ prefix: PREFIX, nodes: 3, running: 2, netConf: { Network: "10.244.0.0/16", Backend: { Type: "vxlan" } } });
    const [, n2, n3] = c.nodes as [AgentNode, AgentNode, AgentNode];
    const file = join(c.dir, "node2.pcap");
    const cap = Bun.spawn(["ip", "netns", "exec", n2.ns, "tcpdump", "-i", "eth0", "--immediate-mode", "-U", "-n", "-w", file, "port 7946"], { stdout: "ignore", stderr: "pipe" });
    await new Lines(cap.stderr).waitFor((l) => l.includes("listening on"), 10_000);
    c.start(n3);
    await until("node3 ready", 30_000, () => c.ready(n3)).catch((e) => Promise.reject(new Error(`${(e as Error).message}\n${logOf(n3)}`)));
    // A few probe rounds with node3 in the cluster: its pings to node2 are on the wire.
    await Bun.sleep(3_000);
    cap.kill("SIGINT");
    await cap.exited;
    const { udp: dgrams, tcp: flows } = readPcap(new Uint8Array(readFileSync(file)));
    udp = dgrams.filter((d) => d.src === n3.ip && d.srcPort === 7946 && d.dst === n2.ip && d.dstPort === 7946).map((d) => d.payload);
    tcp = flows.filter((f) => f.src === n3.ip && f.dst === n2.ip && f.dstPort === 7946).map((f) => f.payload);
  }, 90_000);

  afterAll(async () => {
    await c?.stop();
    expect(listNamespaces(PREFIX)).toEqual([]);
  }, 30_000);

  test("node3's packets and streams, sent again after it died, from its address and from another, are all refused, answered by nothing, and do not bring it back", async () => {
    const [n1, n2, n3] = c.nodes as [AgentNode, AgentNode, AgentNode];
    expect({ packets: udp.length >= 5, streams: tcp.length >= 1 }).toEqual({ packets: true, streams: true });
    n3.proc!.kill("SIGKILL");
    await n3.proc!.exited;
    const down = () => nodesOf(n2)?.find((r) => r.name === "node3")?.state;
    await until("node2 sees node3 down", 20_000, () => down() !== undefined && down() !== "alive");
    const metrics = () => api(n2, "/metrics")!.body;
    const b64 = (xs: Uint8Array[]) => xs.map((x) => Buffer.from(x).toString("base64"));

    // From node3's own address and port, as the packets were sealed.
    const m0 = metrics();
    const own = await runTs<Sent>(n3.ns, SENDER, { bind: n3.ip, port: 7946, target: n2.ip, udp: b64(udp), tcp: b64(tcp), listenMs: 1_000 });
    const refused = () => metric(metrics(), "weft_gossip_replays_rejected_total") - metric(m0, "weft_gossip_replays_rejected_total");
    await until("node2 to count the replays", 5_000, () => refused() >= udp.length + tcp.length).catch(() => {});
    expect({ refused: refused(), tcpReplyBytes: own.tcpReplyBytes }).toEqual({ refused: udp.length + tcp.length, tcpReplyBytes: tcp.map(() => 0) });

    // From another node's address (node1's, a port node2 never sends to of its own accord).
    const m1 = metrics();
    const other = await runTs<Sent>(n1.ns, SENDER, { bind: n1.ip, port: 0, target: n2.ip, udp: b64(udp), tcp: [], listenMs: 1_000 });
    const mismatched = () => metric(metrics(), "weft_gossip_sender_mismatches_total") - metric(m1, "weft_gossip_sender_mismatches_total");
    await until("node2 to count the foreign sender", 5_000, () => mismatched() >= udp.length).catch(() => {});
    expect({ mismatched: mismatched(), udpReplies: other.udpReplies }).toEqual({ mismatched: udp.length, udpReplies: 0 });

    // node3 stays down on node2 (no replayed ping or push-pull revived it).
    await Bun.sleep(2_000);
    expect(down()).not.toBe("alive");
    expect(n2.proc!.exitCode).toBeNull();
  }, 60_000);
});
