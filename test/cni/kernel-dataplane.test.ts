/** Pure parts of the kernel dataplane (no root): the bridge MAC weft pins when there is none. */
import { expect, test } from "bun:test";
import { gatewayMac } from "../../src/cni/kernel-dataplane.ts";

test("the bridge MAC derived from the gateway is 0a:58 + its IPv4 bytes", () => {
  expect(gatewayMac("10.244.3.0/24")).toBe("0a:58:0a:f4:03:01");
  expect(gatewayMac("10.244.255.0/24")).toBe("0a:58:0a:f4:ff:01");
  expect(gatewayMac("192.168.0.0/16")).toBe("0a:58:c0:a8:00:01");
});
