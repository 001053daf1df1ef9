/** The seed list: own addresses skipped, IPv6 seeds in brackets, names resolved in the family the node gossips over. */
import { expect, test } from "bun:test";
import { silentLogger } from "../../src/log.ts";
import { resolveSeeds, type ResolveHost } from "../../src/lease/seeds.ts";

const noNames: ResolveHost = async () => [];

test("IPv6 seeds: the own bracketed address is skipped (by any of the node's addresses), the others stay bracketed, in canonical form", async () => {
  const seeds = ["[2001:db8::11]:7946", "[2001:db8::12]:7946", "[2001:0db8:0::13]:7946", "192.0.2.11:7946"];
  const got = await resolveSeeds({ seeds, advertiseAddr: "[2001:db8::11]:7946", publicIps: ["2001:db8::11", "192.0.2.11"], resolveHost: noNames, log: silentLogger });
  expect(got).toEqual(["[2001:db8::12]:7946", "[2001:db8::13]:7946"]);
  // The advertised gossip address alone identifies the node too.
  expect(await resolveSeeds({ seeds, advertiseAddr: "[2001:db8::12]:7946", publicIps: [], resolveHost: noNames, log: silentLogger })).toEqual(["[2001:db8::11]:7946", "[2001:db8::13]:7946", "192.0.2.11:7946"]);
});

test("an IPv4 node skips its own IPv4 and IPv6 addresses", async () => {
  const got = await resolveSeeds({ seeds: ["192.0.2.11:7946", "[2001:db8::11]:7946", "192.0.2.12:7946"], advertiseAddr: "192.0.2.11:7946", publicIps: ["192.0.2.11", "2001:db8::11"], resolveHost: noNames, log: silentLogger });
  expect(got).toEqual(["192.0.2.12:7946"]);
});

test("host names resolve in the family the node gossips over; an IPv6 answer is bracketed", async () => {
  const asked: [string, 4 | 6][] = [];
  const resolveHost: ResolveHost = async (h, family) => {
    asked.push([h, family]);
    return family === 6 ? ["2001:db8::21"] : ["192.0.2.21"];
  };
  expect(await resolveSeeds({ seeds: ["peer.example:7946"], advertiseAddr: "[2001:db8::11]:7946", publicIps: ["2001:db8::11"], resolveHost, log: silentLogger })).toEqual(["[2001:db8::21]:7946"]);
  expect(await resolveSeeds({ seeds: ["peer.example:7946"], advertiseAddr: "192.0.2.11:7946", publicIps: ["192.0.2.11"], resolveHost, log: silentLogger })).toEqual(["192.0.2.21:7946"]);
  expect(asked).toEqual([
    ["peer.example", 6],
    ["peer.example", 4],
  ]);
});
