/**
 * The udp backend against a hostile neighbourhood (root, namespaces): another local user
 * trying to take over its socket, and datagrams from a peer's public IP (which anyone on
 * the underlay can spoof) carrying a forged inner source or a crafted virtio_net_hdr.
 * Two node namespaces run the real backend (node-agent over libnl); pod0 listens on UDP
 * 9999 and prints every payload it receives. Each injection ends with a legitimate packet
 * on the same path: once that one has arrived, anything sent before it that did not
 * arrive was dropped (the loop and the TUN queue keep order), so no test waits blindly.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { exec, Lines, listNamespaces, ping, requireRoot, runTs, tempScript, type Topology } from "../../sim/netns.ts";
import { startCluster, pollUntil, type Cluster } from "../integration/backend-cluster.ts";
import { marked, tcpPacket, udp6Packet, udpPacket, vnetHdr } from "../backend/packets.ts";

const skip = requireRoot();
const NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];

describe.skipIf(!!skip)("udp backend: socket takeover and spoofed datagrams (root)", () => {
  const open: Topology[] = [];
  let c: Cluster;
  let listener: Lines;
  let removeScript = () => {};
  let seq = 0;

  beforeAll(async () => {
    c = await startCluster({ type: "udp", port: 8285 }, { prefix: "wut-", ipv6: true, onTopology: (t) => open.push(t) });
    const script = tempScript(`
      await Bun.udpSocket({ port: 9999, socket: { data(_s, buf) { console.log(Buffer.from(buf).toString()); } } });
      console.log("bound");
      await new Promise(() => {});`);
    removeScript = script.remove;
    listener = new Lines(c.topo.spawn(c.pods[0]!.ns, [process.execPath, script.file]).stdout);
    await listener.waitFor((l) => l === "bound", 10_000);
  }, 60_000);

  afterAll(async () => {
    for (const t of open) await t.cleanup();
    removeScript();
    expect(listNamespaces("wut-").filter((n) => open.some((t) => n.startsWith(t.id)))).toEqual([]);
  });

  const counters = async () => (await c.agents[0]!.call({ counters: 1 })).counters;

  /** Sends the datagrams from node1 (a peer's public IP) to node0's udp port, in order. */
  const fromPeer = (datagrams: Uint8Array[]) =>
    runTs(c.topo.nodes[1]!.ns, `
      const list = await Bun.stdin.json();
      const s = await Bun.udpSocket({});
      for (const d of list) s.send(new Uint8Array(d), 8285, "192.0.2.11");
      s.close(); console.log("{}");`, datagrams.map((d) => [...d]));

  /** Sends `hostile` then a legitimate packet; returns the payloads pod0 received up to the legitimate one. */
  async function injectThenControl(hostile: Uint8Array[], control: (payload: string) => Uint8Array): Promise<string[]> {
    const tag = `control-${++seq}`;
    const from = listener.seen.length;
    await fromPeer([...hostile, control(tag)]);
    await listener.waitFor((l) => l === tag, 5000);
    return listener.seen.slice(from);
  }
  const plainControl = (p: string) => udpPacket("10.244.2.7", "10.244.1.2", 9999, p);

  test("another local user cannot bind the backend's address and port, with or without SO_REUSEADDR/SO_REUSEPORT; pod traffic keeps flowing", async () => {
    const n0 = c.topo.nodes[0]!.ns;
    expect(exec(n0, [...NOBODY, "id", "-u"]).stdout.trim()).toBe("65534");
    for (const spec of ["bind=192.0.2.11,reuseaddr", "bind=0.0.0.0,reuseaddr", "bind=192.0.2.11,reuseport", "bind=192.0.2.11"]) {
      const r = exec(n0, [...NOBODY, "socat", "-u", `UDP4-RECV:8285,${spec}`, "OPEN:/dev/null"], { check: false, timeoutMs: 3000 });
      // A socat that bound would still be waiting for data when the timeout kills it.
      expect({ spec, code: r.code, refused: r.stderr.includes("Address already in use") }).toEqual({ spec, code: 1, refused: true });
    }
    const before = await counters();
    expect(ping(c.pods[1]!.ns, c.pods[0]!.ip)).toBe(true);
    expect((await injectThenControl([], plainControl)).length).toBe(1);
    expect((await counters()).rxPackets).toBeGreaterThan(before.rxPackets);
  }, 30_000);

  test("a datagram from a peer's IP whose inner source is outside that peer's subnet never reaches a pod, and is counted", async () => {
    const before = await counters();
    const got = await injectThenControl(
      [
        udpPacket("10.244.9.9", "10.244.1.2", 9999, "spoofed-unleased"), // no node's subnet
        udpPacket("10.244.1.7", "10.244.1.2", 9999, "spoofed-local-pod"), // a pod of the receiving node
        udpPacket("192.0.2.99", "10.244.1.2", 9999, "spoofed-outside"), // outside the pod network
      ],
      plainControl,
    );
    expect(got).toEqual([`control-${seq}`]);
    const after = await pollUntil(counters, (x) => x.droppedSpoofedSource >= before.droppedSpoofedSource + 3);
    expect(after.droppedSpoofedSource - before.droppedSpoofedSource).toBe(3);
    expect(after.packetsDropped - before.packetsDropped).toBe(3);
    expect(after.rxPackets - before.rxPackets).toBe(1);
  }, 30_000);

  test("the inner-source check holds per family: an IPv6 packet from a peer's IP must come from that peer's IPv6 subnet", async () => {
    const before = await counters();
    const got = await injectThenControl(
      [
        udp6Packet("fd00:10:244:9::9", "fd00:10:244:1::2", 9999, "spoofed6-unleased"), // no node's IPv6 subnet
        udp6Packet("fd00:10:244:1::7", "fd00:10:244:1::2", 9999, "spoofed6-local-pod"), // a pod of the receiving node
        udp6Packet("2001:db8::99", "fd00:10:244:1::2", 9999, "spoofed6-outside"), // outside the IPv6 pod network
        udp6Packet("fd00:10:244:2::7", "fd00:10:244:1::2", 9999, "legit6"), // the sending peer's IPv6 subnet
      ],
      plainControl,
    );
    expect(got).toEqual([`control-${seq}`]); // (pod0's listener is IPv4: the legitimate IPv6 packet shows in rxPackets)
    const after = await pollUntil(counters, (x) => x.droppedSpoofedSource >= before.droppedSpoofedSource + 3);
    expect(after.droppedSpoofedSource - before.droppedSpoofedSource).toBe(3);
    expect(after.rxPackets - before.rxPackets).toBe(2);
  }, 30_000);

  test("a marked datagram whose virtio_net_hdr is malformed or does not fit its packet is dropped before the TUN and counted", async () => {
    const udp = (p: string) => udpPacket("10.244.2.7", "10.244.1.2", 9999, p, { partial: true });
    const tcp = tcpPacket("10.244.2.7", "10.244.1.2", { payloadBytes: 3000 });
    const csum = { flags: 1, csumStart: 20 };
    const hostile = [
      marked(vnetHdr({ ...csum, csumOffset: 6, gsoType: 1, gsoSize: 100 }), udp("bad-gso-on-udp")), // TCP segmentation of a UDP packet
      marked(vnetHdr({ flags: 1, csumStart: 400, csumOffset: 6 }), udp("bad-csum-start")), // checksum start past the packet
      marked(vnetHdr({ ...csum, csumOffset: 16 }), udp("bad-csum-offset")), // TCP's offset on UDP: would overwrite payload
      marked(vnetHdr({ flags: 0x80 }), udp("bad-flags")),
      marked(vnetHdr({ gsoSize: 1400 }), udp("bad-gso-size-without-gso")),
      marked(vnetHdr({ gsoType: 3, gsoSize: 100, ...csum, csumOffset: 6 }), udp("bad-udp-gso")), // a type the TUN was not set up for
      marked(vnetHdr({ gsoType: 1, gsoSize: 1000, hdrLen: 40 }), tcp), // GSO without a partial checksum
      marked(vnetHdr({ gsoType: 1, gsoSize: 1000, hdrLen: 9000, ...csum, csumOffset: 16 }), tcp), // hdr_len past the packet
      marked(vnetHdr({ gsoType: 1, gsoSize: 1, hdrLen: 40, ...csum, csumOffset: 16 }), tcp), // 3000 one-byte segments
    ];
    const before = await counters();
    const got = await injectThenControl(hostile, (p) => marked(vnetHdr({ ...csum, csumOffset: 6 }), udp(p)));
    expect(got).toEqual([`control-${seq}`]); // the well-formed marked datagram arrives; none of the others do
    const after = await pollUntil(counters, (x) => x.droppedBadOffloadHeader >= before.droppedBadOffloadHeader + hostile.length);
    expect(after.droppedBadOffloadHeader - before.droppedBadOffloadHeader).toBe(hostile.length);
    expect(after.packetsDropped - before.packetsDropped).toBe(hostile.length);
    expect(after.rxPackets - before.rxPackets).toBe(1);
    expect(after.rxSuperPackets - before.rxSuperPackets).toBe(1);
  }, 30_000);
});
