/**
 * watchNetlinkEvents against the kernel: a watcher runs as a Bun child inside a test
 * namespace (so its socket sees that namespace), the test changes state with `ip`, and
 * the child reports the events it decoded as JSON lines. Root only.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { exitWithin, ip, Lines, listNamespaces, NamespaceGroup, REPO, requireRoot, tempScript } from "../../sim/netns.ts";

const skip = requireRoot();
if (skip) console.warn(`skipping netlink event tests: ${skip}`);

const WATCHER = `
import { watchNetlinkEvents } from ${JSON.stringify(REPO + "/src/sys/netlink-events.ts")};
// The watcher's timer is unref'd; this ref'd timer keeps the child alive until close().
const keepAlive = setTimeout(() => process.exit(3), 15000);
const w = watchNetlinkEvents((e) => {
  console.log(JSON.stringify({ ...e, at: Date.now() }));
  if (e.kind === "route" && e.action === "del") {
    w.close();
    clearTimeout(keepAlive);
  }
});
console.log(JSON.stringify({ ready: true }));
`;

describe.skipIf(!!skip)("netlink events", () => {
  let group: NamespaceGroup;
  let ns: string;
  beforeAll(() => {
    group = new NamespaceGroup("wtf-");
    ns = group.add("ev");
    ip(ns, "link", "add", "ev0", "type", "veth", "peer", "name", "ev1");
    ip(ns, "addr", "add", "192.0.2.21/24", "dev", "ev0");
    ip(ns, "link", "set", "ev0", "up");
    ip(ns, "link", "set", "ev1", "up");
    ip(ns, "route", "add", "10.244.4.0/24", "via", "192.0.2.4", "proto", "87");
    ip(ns, "link", "add", "ev2", "type", "veth", "peer", "name", "ev3");
  });
  afterAll(async () => {
    await group?.cleanup();
    if (group) expect(listNamespaces(group.id)).toEqual([]);
  });

  test("changes made with ip (neigh, addr, link del, route del) arrive as events; close() lets the process exit", async () => {
    const script = tempScript(WATCHER);
    try {
      const p = group.spawn(ns, [process.execPath, script.file]);
      const out = new Lines(p.stdout);
      await out.waitFor((l) => l.includes('"ready"'), 10_000);
      ip(ns, "neigh", "replace", "192.0.2.9", "lladdr", "02:00:00:00:00:09", "dev", "ev0", "nud", "permanent");
      ip(ns, "addr", "add", "192.0.2.22/24", "dev", "ev0");
      ip(ns, "link", "del", "ev2");
      const sent = Date.now();
      ip(ns, "route", "del", "10.244.4.0/24");
      const line = await out.waitFor((l) => l.includes('"route"') && l.includes('"del"'), 5000);
      const ev = JSON.parse(line);
      expect(ev).toMatchObject({ kind: "route", action: "del" });
      console.log(`route del noticed after ${ev.at - sent} ms (drain interval 100 ms)`);
      const kinds = new Set(out.seen.map((l) => JSON.parse(l)).map((e) => `${e.kind} ${e.action}`));
      expect([...kinds].filter((k) => ["neigh new", "addr new", "link del", "route del"].includes(k)).sort()).toEqual([
        "addr new",
        "link del",
        "neigh new",
        "route del",
      ]);
      expect(await exitWithin(p, 5000)).toBe(0);
    } finally {
      script.remove();
    }
  });

  test("an open watcher does not keep the process alive (timer is unref'd)", async () => {
    const script = tempScript(`
      import { watchNetlinkEvents } from ${JSON.stringify(REPO + "/src/sys/netlink-events.ts")};
      watchNetlinkEvents(() => {});
      console.log("started");
    `);
    try {
      const p = group.spawn(ns, [process.execPath, script.file]);
      const out = new Lines(p.stdout);
      expect(await exitWithin(p, 5000)).toBe(0);
      await out.done;
      expect(out.seen).toEqual(["started"]);
    } finally {
      script.remove();
    }
  });

  test("with onError, a throwing handler is reported and later events still arrive", async () => {
    ip(ns, "route", "add", "10.244.5.0/24", "via", "192.0.2.5", "proto", "87");
    const script = tempScript(`
      import { watchNetlinkEvents } from ${JSON.stringify(REPO + "/src/sys/netlink-events.ts")};
      const keepAlive = setTimeout(() => process.exit(3), 15000);
      let first = true;
      const w = watchNetlinkEvents(
        (e) => {
          if (first) { first = false; throw new Error("handler bug"); }
          console.log(JSON.stringify(e));
          if (e.kind === "route" && e.action === "del") { w.close(); clearTimeout(keepAlive); }
        },
        { kinds: ["route"], onError: (err) => console.log(JSON.stringify({ error: err.message })) },
      );
      console.log(JSON.stringify({ ready: true }));
    `);
    try {
      const p = group.spawn(ns, [process.execPath, script.file]);
      const out = new Lines(p.stdout);
      await out.waitFor((l) => l.includes('"ready"'), 10_000);
      ip(ns, "route", "add", "10.244.6.0/24", "via", "192.0.2.6", "proto", "87");
      await out.waitFor((l) => l.includes("handler bug"), 5000);
      ip(ns, "route", "del", "10.244.5.0/24");
      await out.waitFor((l) => l.includes('"del"'), 5000);
      expect(out.seen.map((l) => JSON.parse(l))).toEqual([
        { ready: true },
        { error: "netlink event handler failed on route new: handler bug" },
        { kind: "route", action: "del" },
      ]);
      expect(await exitWithin(p, 5000)).toBe(0);
    } finally {
      script.remove();
    }
  });
});
