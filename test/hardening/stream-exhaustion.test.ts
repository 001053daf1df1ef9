/**
 * Unauthenticated pressure on the push-pull (TCP) port, over real sockets on 127.0.0.x:
 * connections that never finish their request must not lock honest peers out of joining.
 */
import { afterAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { realClock } from "../../src/clock.ts";
import { createGossip, createUdpTransport, localConfig, type GossipNode } from "../../src/gossip/index.ts";
import type { Keyring } from "../../src/gossip/types.ts";
import { silentLogger } from "../../src/log.ts";
import { RecordingDelegate } from "../../sim/gossip-sim.ts";

const k = new Uint8Array(32).fill(3);
const keyring: Keyring = { primary: k, keys: [k] };

async function node(ip: string): Promise<{ g: GossipNode; addr: string }> {
  const transport = await createUdpTransport({ bindAddr: ip, port: 0, logger: silentLogger });
  const g = createGossip({ name: ip, advertiseAddr: transport.localAddr(), transport, config: localConfig(), deps: { clock: realClock, logger: silentLogger, delegate: new RecordingDelegate(), keyring, clusterName: "hx" } });
  await g.start();
  return { g, addr: transport.localAddr() };
}

/** Keeps `n` connections open to host:port, each promising a request it never finishes; reopens any that close. */
function slowloris(host: string, port: number, n: number) {
  let stopped = false;
  let opened = 0;
  const socks = new Set<Socket<undefined>>();
  const open = async (): Promise<void> => {
    if (stopped) return;
    try {
      const s = await Bun.connect({
        hostname: host,
        port,
        socket: {
          data() {},
          close(sock) {
            socks.delete(sock);
            if (!stopped) setTimeout(() => void open(), 0);
          },
          error() {},
        },
      });
      opened++;
      s.write(Uint8Array.of(0, 0, 0x03, 0xe8)); // a 1000-byte request follows... one byte at a time
      socks.add(s);
    } catch {
      if (!stopped) setTimeout(() => void open(), 10);
    }
  };
  const trickle = setInterval(() => socks.forEach((s) => s.write(Uint8Array.of(0x42))), 1000);
  return {
    start: async () => {
      for (let i = 0; i < n; i++) await open();
    },
    opened: () => opened,
    stop() {
      stopped = true;
      clearInterval(trickle);
      for (const s of socks) s.end();
    },
  };
}

describe("slow unauthenticated streams on the gossip TCP port", () => {
  const nodes: GossipNode[] = [];
  const attackers: ReturnType<typeof slowloris>[] = [];
  afterAll(async () => {
    for (const a of attackers) a.stop();
    await Promise.all(nodes.map((n) => n.shutdown()));
  });

  test("without an attacker the join answers at once (control)", async () => {
    const a = await node("127.0.0.86");
    const b = await node("127.0.0.87");
    nodes.push(a.g, b.g);
    expect(await b.g.join([a.addr], AbortSignal.timeout(10_000))).toBe(1);
  });

  // docs/hardening-findings.md F2: 32 connections that trickle a never-finished request and
  // reconnect when closed would hold every slot of a total cap with an idle timer. The
  // transport's stream admission (per-source cap, evicting the oldest incomplete request,
  // whole-request deadline) must keep a slot for an honest join.
  test("32 trickling connections that reconnect when closed do not stop an honest join", async () => {
    const a = await node("127.0.0.81");
    const b = await node("127.0.0.82");
    nodes.push(a.g, b.g);
    const [host, port] = a.addr.split(":") as [string, string];
    const attacker = slowloris(host, Number(port), 32);
    attackers.push(attacker);
    await attacker.start();
    await Bun.sleep(300);
    const answered = await b.g.join([a.addr], AbortSignal.timeout(12_000));
    expect({ answered, attackerConnections: attacker.opened() }).toMatchObject({ answered: 1 });
  }, 30_000);
});
