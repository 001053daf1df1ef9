/** Pure parts of the kernel dataplane (no root): the bridge MAC weft pins when there is none. */
import { expect, test } from "bun:test";
import { gatewayMac } from "../../src/cni/kernel-dataplane.ts";

test("the bridge MAC derived from the gateway is 0a:58 + its IPv4 bytes", () => {
  expect(gatewayMac("10.244.3.0/24")).toBe("0a:58:0a:f4:03:01");
  expect(gatewayMac("10.244.255.0/24")).toBe("0a:58:0a:f4:ff:01");
  expect(gatewayMac("192.168.0.0/16")).toBe("0a:58:c0:a8:00:01");
});

test("an IPv6 subnet's bridge MAC carries the 32 bits above its prefix: unique per node subnet", () => {
  expect(gatewayMac("fd00:10:244:3::/64")).toBe("0a:58:02:44:00:03");
  expect(gatewayMac("fd00:10:244:ff::/64")).toBe("0a:58:02:44:00:ff");
  expect(gatewayMac("fd00:10:244::c/126")).toBe("0a:58:00:00:00:03");
});
