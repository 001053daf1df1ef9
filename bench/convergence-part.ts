/**
 * One part of the convergence simulation (bench/convergence.ts): the nodes i with
 * i % parts === part, on this part's own MemNetwork and FakeClock. Parts run in worker
 * threads (or in the main thread when there is one) and advance in lockstep windows of
 * `windowMs`: after each window the parts swap what crossed between them and go on. All
 * parts see the same global status after every window (commits so far, pending leases),
 * so they all change phase in the same window.
 *
 * With windowMs equal to the shortest network hop (1 ms) this is an exact conservative
 * parallel simulation: whatever a node sends during a window arrives at the earliest at
 * the next window's start. A longer window is an approximation: a packet or stream leg
 * to another part that would land inside the window it was sent in lands at the window's
 * end instead — at most windowMs − 1 ms late, and only for delays under windowMs (with
 * 3 ms and delays uniform in 1..10 ms, 2/9 of the crossings at most, ~0.1 ms late on
 * average over all crossings). Fewer windows mean fewer swaps and less time lost to the
 * parts' uneven work per window, but the small shift is not harmless everywhere: with
 * loss and a partition the tail of convergence grows several-fold (bench/RESULTS.md,
 * 2026-12-01), so the exact 1 ms window is the default and 3 ms an opt-in for quick runs.
 */
import { describeSubnets } from "../src/lease/families.ts";
import { viewText } from "../sim/duplicates.ts";
import { createHash } from "node:crypto";
import { parseNetConf } from "../src/net-conf.ts";
import { parseKeyFile } from "../src/gossip/keyring.ts";
import type { CrossItem, MemNetworkStats } from "../sim/mem-network.ts";
import type { Lease } from "../src/lease/types.ts";
import { LeaseSim } from "../sim/lease-sim.ts";
import { flush } from "../sim/run.ts";

export interface PartOptions {
  nodes: number;
  loss: number;
  partitionMs: number;
  seed: number;
  staggered: boolean;
  /** Lockstep window with more than one part, ms (1 = exact, see above). */
  windowMs: number;
  quietMs: number;
  steadyMs: number;
  part: number;
  parts: number;
}

/** What one part tells the others after each window. */
interface WindowMsg {
  items: CrossItem[];
  /** Local nodes committed or failed. */
  done: number;
  /** Local (committed, not superseded) leases some required local node still misses. */
  pending: number;
  commits: { key: string; at: number; required: number }[];
  superseded: string[];
}

export interface PartResult {
  committed: number;
  errors: number;
  /** Per own-lease: node name and subnet (duplicates are found across parts). */
  own: { name: string; subnet: string }[];
  /** Hashes of each up node's view of the table. */
  views: string[];
  conflictsResolved: number;
  renumbers: number;
  rejectedRecords: number;
  storm: MemNetworkStats;
  steadyBytes: number;
  allCommittedAtMs: number | null;
  allConvergedAtMs: number | null;
  /** Per lease key known committed: when; superseded; local nodes still missing it; when the last required local node got it. */
  tracks: { key: string; commitAt: number; superseded: boolean; missing: number; fullAt: number }[];
}

/** Sends one window's message to every other part and resolves with theirs (ordered by part). */
export type Exchange = (out: WindowMsg[]) => Promise<WindowMsg[]>;

const HOP_MIN_MS = 1;
const DELAY: [number, number] = [HOP_MIN_MS, 10];

export async function runPart(o: PartOptions, exchange: Exchange, log: (s: string) => void): Promise<PartResult> {
  const { nodes: N, parts, part } = o;
  const local = (i: number) => i % parts === part;
  const ownerOf = new Map<string, number>();
  for (let i = 0; i < N; i++) ownerOf.set(LeaseSim.addr(i + 1), i % parts);
  const outbox: CrossItem[][] = Array.from({ length: parts }, () => []);

  // A /12 cut into /24s: 4096 subnets, room for the largest run.
  const net = parseNetConf({ Network: "10.240.0.0/12", SubnetLen: 24, Backend: { Type: "vxlan" } });
  const keyring = parseKeyFile(Buffer.alloc(32, 42).toString("base64"));
  const sim = new LeaseSim({
    seed: o.seed * 1009 + part,
    net,
    loss: o.loss,
    keyring,
    settleMs: 2000,
    delayMs: DELAY,
    ...(parts > 1
      ? {
          link: {
            isRemote: (addr: string) => (ownerOf.get(addr) ?? part) !== part,
            send: (item: CrossItem) => outbox[ownerOf.get(item.k === "reply" ? item.from : item.to)!]!.push(item),
          },
        }
      : {}),
  });
  const start0 = sim.clock.now();
  const startAt = (i: number) => (o.staggered ? i * 100 : 0);
  /** Nodes started by time t (a lease committed then must reach them all). */
  const liveAt = (t: number) => (o.staggered ? Math.min(N, Math.floor((t - start0) / 100) + 1) : N);

  // Lease key → per local node index, when it first held it (NaN = not yet).
  interface Track {
    heldAt: Float64Array;
    commitAt?: number;
    required?: number;
    missing?: number;
    superseded?: boolean;
  }
  const tracks = new Map<string, Track>();
  const keyOf = (l: Lease) => `${l.nodeName}|${l.generation}|${describeSubnets(l)}|${l.claimedAt}`;
  const track = (k: string) => {
    let t = tracks.get(k);
    if (!t) tracks.set(k, (t = { heldAt: new Float64Array(N).fill(NaN) }));
    return t;
  };
  // Every node reports every record it takes in: one lookup per report, not two.
  const trackOfRecord = new WeakMap<Lease, Track>();
  const trackOf = (l: Lease) => {
    let t = trackOfRecord.get(l);
    if (!t) trackOfRecord.set(l, (t = track(keyOf(l))));
    return t;
  };
  let myCommits: WindowMsg["commits"] = [];
  let mySuperseded: string[] = [];
  const learnCommit = (key: string, at: number, required: number) => {
    const t = track(key);
    t.commitAt = at;
    t.required = required;
    let missing = 0;
    for (let i = part; i < required; i += parts) if (Number.isNaN(t.heldAt[i]!)) missing++;
    t.missing = missing;
  };
  const committed = (l: Lease) => {
    const k = keyOf(l);
    const at = sim.clock.now();
    const required = liveAt(at);
    learnCommit(k, at, required);
    myCommits.push({ key: k, at, required });
  };

  const names = Array.from({ length: N }, (_, i) => `node-${i}`);
  const seeds = [LeaseSim.addr(1)];
  for (const [i, name] of names.entries()) {
    if (!local(i)) continue;
    const n = sim.add(name, LeaseSim.addr(i + 1), seeds);
    n.onRecord((l) => {
      const t = trackOf(l);
      if (!Number.isNaN(t.heldAt[i]!)) return;
      t.heldAt[i] = sim.clock.now();
      if (t.missing !== undefined && i < t.required! && t.missing > 0) t.missing--;
    });
    n.cluster.onRenumber((old, now) => {
      const k = keyOf(old);
      track(k).superseded = true;
      mySuperseded.push(k);
      committed(now);
    });
  }
  let doneLocal = 0;
  for (const [i, name] of names.entries()) {
    if (!local(i)) continue;
    sim.clock.after(startAt(i), () =>
      sim.start(name).then(
        (l) => {
          doneLocal++;
          committed(l);
        },
        () => void doneLocal++,
      ),
    );
  }
  if (o.partitionMs > 0) {
    const half = names.slice(0, Math.floor(N / 2)).map((_, i) => LeaseSim.addr(i + 1));
    sim.clock.after(500, () => sim.network.partition([half]));
    sim.clock.after(500 + o.partitionMs, () => sim.network.heal());
  }

  const pendingLocal = () => {
    let p = 0;
    for (const t of tracks.values()) if (t.commitAt !== undefined && !t.superseded && t.missing! > 0) p++;
    return p;
  };
  const phase = (name: string) => log(`[convergence] part ${part}: ${name}: sim ${((sim.clock.now() - start0) / 1000).toFixed(1)} s`);

  // One window: run local events, let promise continuations run, swap with the other
  // parts. One part alone needs no lockstep and runs 50 ms steps.
  const windowMs = parts > 1 ? o.windowMs : 50;
  let global = { done: 0, pending: 0, commits: 0 };
  // Only the wait for convergence reads `pending`; counting it walks every lease's track
  // (each of the 101 000 windows of a default 1000-node run), so it stops after that wait.
  let countPending = true;
  const step = async () => {
    sim.clock.advance(windowMs);
    await flush();
    const myPending = countPending ? pendingLocal() : 0;
    const msgs: WindowMsg[] = outbox.map((items) => ({ items, done: doneLocal, pending: myPending, commits: myCommits, superseded: mySuperseded }));
    const commitsHere = myCommits.length;
    for (let p = 0; p < parts; p++) outbox[p] = [];
    myCommits = [];
    mySuperseded = [];
    const theirs = parts > 1 ? await exchange(msgs) : [];
    let done = doneLocal;
    let commits = commitsHere;
    for (const m of theirs) {
      done += m.done;
      commits += m.commits.length;
      for (const k of m.superseded) track(k).superseded = true;
      for (const c of m.commits) learnCommit(c.key, c.at, c.required);
      // Arrivals in a fixed order (by sending part, then send order): deterministic runs.
      for (const item of m.items) sim.network.receive(item);
    }
    // Pending as every part knew it before this window's commits were swapped, plus
    // "no commit this window", so a commit another part has not yet heard of cannot
    // end the wait early.
    let pending = myPending;
    for (const m of theirs) pending += m.pending;
    global = { done, pending, commits };
  };
  const runUntil = async (cond: () => boolean, maxMs: number): Promise<boolean> => {
    const end = sim.clock.now() + maxMs;
    while (!cond()) {
      if (sim.clock.now() >= end) return false;
      await step();
    }
    return true;
  };
  const run = async (ms: number) => {
    const end = sim.clock.now() + ms;
    while (sim.clock.now() < end) await step();
  };

  const okCommit = await runUntil(() => global.done === N, 600_000);
  const allCommittedAtMs = okCommit ? sim.clock.now() - start0 : null;
  const storm = sim.network.stats();
  phase("all committed");
  const okConverge = await runUntil(() => global.pending === 0 && global.commits === 0 && sim.clock.now() - start0 > 500 + o.partitionMs, 600_000);
  const allConvergedAtMs = okConverge ? sim.clock.now() - start0 : null;
  phase("converged");
  countPending = false;
  await run(o.quietMs);
  phase("quiet period over");
  const before = sim.network.stats().bytes;
  await run(o.steadyMs);
  const steadyBytes = sim.network.stats().bytes - before;
  phase("steady window measured");

  const up = sim.upNodes();
  let conflictsResolved = 0;
  let renumbers = 0;
  let rejectedRecords = 0;
  for (const n of up) {
    const m = n.cluster.metrics();
    conflictsResolved += m.conflictsResolved;
    renumbers += m.renumbers;
    rejectedRecords += m.rejectedRecords;
  }
  const own: PartResult["own"] = [];
  for (const n of up) {
    const l = n.cluster.ownLease();
    if (l) own.push({ name: n.name, subnet: describeSubnets(l) });
  }
  const views = up.map((n) =>
    createHash("sha256")
      .update(viewText(n.cluster.leases()))
      .digest("hex"),
  );
  const out: PartResult["tracks"] = [];
  for (const [key, t] of tracks) {
    if (t.commitAt === undefined) continue;
    let fullAt = -Infinity;
    for (let i = part; i < t.required!; i += parts) if (!Number.isNaN(t.heldAt[i]!)) fullAt = Math.max(fullAt, t.heldAt[i]!);
    out.push({ key, commitAt: t.commitAt, superseded: t.superseded === true, missing: t.missing!, fullAt });
  }
  const result: PartResult = {
    committed: own.length,
    errors: up.filter((n) => n.error).length,
    own,
    views,
    conflictsResolved,
    renumbers,
    rejectedRecords,
    storm,
    steadyBytes,
    allCommittedAtMs,
    allConvergedAtMs,
    tracks: out,
  };
  phase("results collected");
  // Every part must leave the lockstep together: stop without further windows.
  await sim.stopAll();
  phase("nodes stopped");
  return result;
}
