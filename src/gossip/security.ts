/**
 * Sealing of every packet and stream (memberlist security.go): AES-256-GCM under the
 * keyring's primary key with a fresh random 12-byte nonce; opening tries every key. The
 * cluster name and the format byte are the associated data, so a packet from another
 * cluster fails authentication even under the same key.
 *
 * Sealed:   [0x01][nonce 12][ciphertext][tag 16]
 * Insecure: [0x00][name length][cluster name][plaintext]  (keyring null, --insecure)
 */
import { createCipheriv, createDecipheriv, randomFillSync } from "node:crypto";
import type { Keyring } from "./types.ts";

const SEALED = 1;
const PLAIN = 0;
const NONCE = 12;
const TAG = 16;

export class Sealer {
  private readonly ad: Buffer;
  private readonly name: Buffer;

  constructor(
    private readonly keyring: Keyring | null,
    clusterName: string,
  ) {
    this.name = Buffer.from(clusterName, "utf8");
    if (this.name.length > 255) throw new RangeError(`cluster name: at most 255 bytes, got ${this.name.length}`);
    this.ad = Buffer.concat([Buffer.from([SEALED]), this.name]);
  }

  /** Bytes added to a plaintext by seal(). */
  overhead(): number {
    return this.keyring ? 1 + NONCE + TAG : 2 + this.name.length;
  }

  seal(plain: Uint8Array): Uint8Array {
    if (!this.keyring) {
      const out = new Uint8Array(2 + this.name.length + plain.length);
      out[0] = PLAIN;
      out[1] = this.name.length;
      out.set(this.name, 2);
      out.set(plain, 2 + this.name.length);
      return out;
    }
    // One output buffer, written in place: this runs for every packet sent.
    const out = new Uint8Array(1 + NONCE + plain.length + TAG);
    out[0] = SEALED;
    const nonce = out.subarray(1, 1 + NONCE);
    randomFillSync(nonce);
    const c = createCipheriv("aes-256-gcm", this.keyring.primary, nonce);
    c.setAAD(this.ad);
    const body = c.update(plain);
    out.set(body, 1 + NONCE);
    const fin = c.final(); // GCM is a stream mode: empty, but part of the API contract
    out.set(fin, 1 + NONCE + body.length);
    out.set(c.getAuthTag(), 1 + NONCE + body.length + fin.length);
    return out;
  }

  /** The plaintext, or null when no key opens it (wrong key, tampered, truncated, other cluster, wrong mode). */
  open(data: Uint8Array): Uint8Array | null {
    if (!this.keyring) {
      if (data.length < 2 || data[0] !== PLAIN || data[1] !== this.name.length) return null;
      const n = 2 + this.name.length;
      if (data.length < n || !Buffer.from(data.subarray(2, n)).equals(this.name)) return null;
      return data.subarray(n);
    }
    if (data.length < 1 + NONCE + TAG || data[0] !== SEALED) return null;
    const nonce = data.subarray(1, 1 + NONCE);
    const body = data.subarray(1 + NONCE, data.length - TAG);
    const tag = data.subarray(data.length - TAG);
    for (const key of this.keyring.keys) {
      try {
        const d = createDecipheriv("aes-256-gcm", key, nonce);
        d.setAAD(this.ad);
        d.setAuthTag(tag);
        const out = d.update(body);
        // Authenticates (throws on a bad tag); GCM has no final block, so nothing to append.
        if (d.final().length !== 0) throw new Error("unexpected final block");
        return new Uint8Array(out.buffer, out.byteOffset, out.length);
      } catch {
        // try the next key
      }
    }
    return null;
  }
}
