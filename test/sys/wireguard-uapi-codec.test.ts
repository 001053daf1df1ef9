/** The wireguard-go UAPI text protocol (wireguard.com/xplatform), line by line. */
import { describe, expect, test } from "bun:test";
import { encodeUapiSet, parseUapiGet, uapiErrno } from "../../src/sys/wireguard-uapi-codec.ts";

const key = (n: number) => Buffer.alloc(32, n).toString("base64");
const hex = (n: number) => n.toString(16).padStart(2, "0").repeat(32);

describe("set=1", () => {
  test("device fields, a peer set whole, a peer removed; keys in hex; a blank line ends it", () => {
    const text = encodeUapiSet({
      privateKey: key(1),
      listenPort: 51820,
      peers: [
        { publicKey: key(2), presharedKey: key(3), endpoint: "192.0.2.12:51820", persistentKeepaliveInterval: 25, allowedIps: ["10.244.2.0/24"] },
        { publicKey: key(4), remove: true },
        { publicKey: key(5), presharedKey: null, endpoint: "192.0.2.13:51820", persistentKeepaliveInterval: 0, allowedIps: ["10.244.3.0/24"] },
      ],
    });
    expect(text).toBe(
      [
        "set=1",
        `private_key=${hex(1)}`,
        "listen_port=51820",
        `public_key=${hex(2)}`,
        `preshared_key=${hex(3)}`,
        "endpoint=192.0.2.12:51820",
        "persistent_keepalive_interval=25",
        "replace_allowed_ips=true",
        "allowed_ip=10.244.2.0/24",
        `public_key=${hex(4)}`,
        "remove=true",
        `public_key=${hex(5)}`,
        `preshared_key=${"0".repeat(64)}`,
        "endpoint=192.0.2.13:51820",
        "persistent_keepalive_interval=0",
        "replace_allowed_ips=true",
        "allowed_ip=10.244.3.0/24",
        "",
        "",
      ].join("\n"),
    );
  });
  test("a bad key is refused without echoing it", () => {
    expect(() => encodeUapiSet({ privateKey: "c2VjcmV0", peers: [] })).toThrow(/^private key: expected base64 of 32 bytes$/);
  });
});

describe("get=1 answers", () => {
  test("device and peers, zero keys read as none, handshake time in ms", () => {
    const answer = [
      `private_key=${hex(1)}`,
      "listen_port=51820",
      `public_key=${hex(2)}`,
      `preshared_key=${"0".repeat(64)}`,
      "protocol_version=1",
      "endpoint=192.0.2.12:51820",
      "last_handshake_time_sec=1700000000",
      "last_handshake_time_nsec=250000000",
      "tx_bytes=1234",
      "rx_bytes=5678",
      "persistent_keepalive_interval=0",
      "allowed_ip=10.244.2.0/24",
      `public_key=${hex(3)}`,
      `preshared_key=${hex(4)}`,
      "last_handshake_time_sec=0",
      "last_handshake_time_nsec=0",
      "allowed_ip=10.244.3.0/24",
      "allowed_ip=10.244.4.0/24",
      "errno=0",
      "",
      "",
    ].join("\n");
    expect(parseUapiGet(answer)).toEqual({
      privateKey: key(1),
      listenPort: 51820,
      fwmark: 0,
      peers: [
        { publicKey: key(2), endpoint: "192.0.2.12:51820", lastHandshakeMs: 1700000000250, txBytes: 1234, rxBytes: 5678, persistentKeepaliveInterval: 0, allowedIps: ["10.244.2.0/24"] },
        { publicKey: key(3), presharedKey: key(4), lastHandshakeMs: 0, txBytes: 0, rxBytes: 0, persistentKeepaliveInterval: 0, allowedIps: ["10.244.3.0/24", "10.244.4.0/24"] },
      ],
    });
  });
  test("errno", () => {
    expect(uapiErrno("errno=0\n\n")).toBe(0);
    expect(uapiErrno("errno=-22\n\n")).toBe(-22);
    expect(() => parseUapiGet("errno=-19\n\n")).toThrow("errno -19");
    expect(() => uapiErrno("listen_port=1\n")).toThrow(/no errno line/);
  });
});
