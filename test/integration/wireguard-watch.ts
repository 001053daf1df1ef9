/**
 * Run inside a node (its network and mount namespace): watches the agent's /v1/nodes and
 * the device (`wg show weft-wg dump`, WireGuard's own reader) every 10 ms and prints when
 * a lease change became visible to the agent and when the device had applied it.
 *   argv[2] = {"node": "node3", "gone": "<old public key>"?, "removed": "<key>"?, "timeoutMs": 40000}
 * The change: the agent's lease table shows `node` with a public key other than `gone`;
 * applied: that key is a peer on weft-wg and `gone` is not. With `removed`, the change is
 * the agent's lease table no longer showing `node`, applied once `removed` is no peer.
 * Prints "watching" once, then one JSON line {key, apiAt, wgAt} (epoch ms, null if never).
 */
const want = JSON.parse(process.argv[2] ?? "{}") as { node: string; gone?: string; removed?: string; timeoutMs?: number };
const end = Date.now() + (want.timeoutMs ?? 40_000);
let key: string | null = null;
let apiAt: number | null = null;
let wgAt: number | null = null;
console.log("watching");
while (Date.now() < end && wgAt === null) {
  if (apiAt === null) {
    const nodes = (await fetch("http://127.0.0.1:7947/v1/nodes").then((r) => r.json()).catch(() => [])) as { name: string; publicKey?: string }[];
    const k = nodes.find((n) => n.name === want.node)?.publicKey;
    if (want.removed !== undefined) {
      if (nodes.length > 0 && k === undefined) {
        key = want.removed;
        apiAt = Date.now();
      }
    } else if (k && k !== want.gone) {
      key = k;
      apiAt = Date.now();
    }
  }
  // Read the device even before the API shows the change, so an apply that beats the
  // next API poll is timed from that poll, not missed.
  const peers = Bun.spawnSync(["wg", "show", "weft-wg", "dump"]).stdout.toString().trim().split("\n").slice(1).map((l) => l.split("\t")[0]);
  if (want.removed !== undefined) {
    if (key && !peers.includes(want.removed)) wgAt = Date.now();
  } else if (key && peers.includes(key) && !(want.gone && peers.includes(want.gone))) wgAt = Date.now();
  await Bun.sleep(10);
}
console.log(JSON.stringify({ key, apiAt, wgAt }));
export {};
