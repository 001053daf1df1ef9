/** Which address an underlay slot uses as the interface changes (decideSlot), as a table. */
import { expect, test } from "bun:test";
import { decideSlot, type AddressSlot, type InterfaceView } from "../src/underlay-watch.ts";

const view = (addrs: string[], nodeAddrs = addrs): InterfaceView => ({ exists: true, up: true, mtu: 1500, addrs, nodeAddrs });
const v4 = (ip: string, pinned = false): AddressSlot => ({ family: 4, ip, pinned });
const v6 = (ip: string, pinned = false): AddressSlot => ({ family: 6, ip, pinned });

const cases: [string, AddressSlot, InterfaceView, ReturnType<typeof decideSlot>][] = [
  ["still there, first or not: kept", v4("192.0.2.10"), view(["192.0.2.5", "192.0.2.10"]), { keep: true }],
  ["gone: the interface's first IPv4", v4("192.0.2.10"), view(["192.0.2.20", "192.0.2.21"]), { move: "192.0.2.20" }],
  ["gone: an IPv6 address is not taken for the IPv4 slot", v4("192.0.2.10"), view(["2001:db8::1", "192.0.2.30"]), { move: "192.0.2.30" }],
  ["gone, nothing of its family left", v4("192.0.2.10"), view(["2001:db8::1"]), { missing: "underlay interface eth0 has no IPv4 address (192.0.2.10 was removed); waiting for one" }],
  ["pinned and gone: never replaced", v4("192.0.2.10", true), view(["192.0.2.20"]), { missing: "--public-ip 192.0.2.10 is no longer on this node (underlay eth0); waiting for it to come back" }],
  ["pinned, on another interface of the node: kept", v4("192.0.2.10", true), view(["192.0.2.20"], ["192.0.2.20", "192.0.2.10"]), { keep: true }],
  ["an IPv6 slot takes the first IPv6 address", v6("2001:db8::1"), view(["192.0.2.10", "2001:db8::2"]), { move: "2001:db8::2" }],
  ["an IPv6 slot never takes the kernel's link-local address, listed first or not", v6("2001:db8::1"), view(["fe80::1", "2001:db8::2"]), { move: "2001:db8::2" }],
  ["an IPv6 slot with only link-local and loopback-like addresses left waits", v6("2001:db8::1"), view(["fe80::1", "::1", "192.0.2.10"]), { missing: "underlay interface eth0 has no global IPv6 address (2001:db8::1 was removed); waiting for one" }],
  ["a pinned IPv6 slot that is gone names --public-ipv6", v6("2001:db8::1", true), view(["2001:db8::2"]), { missing: "--public-ipv6 2001:db8::1 is no longer on this node (underlay eth0); waiting for it to come back" }],
];
for (const [name, slot, v, want] of cases) test(name, () => expect(decideSlot(slot, "eth0", v)).toEqual(want));
