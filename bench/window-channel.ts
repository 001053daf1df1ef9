/**
 * One direction of the per-window exchange between two convergence-bench workers, through
 * shared memory instead of postMessage. A MessagePort round trip took 25-50 µs, paid on
 * each of the ~101 000 windows of a default 1000-node run, mostly in the quiet and steady
 * phases where a window's own work is about that long.
 *
 * Window n's message is msgpack-encoded into half n % 2 of the data buffer, then the
 * control word `seq` is set to n and the reader woken. The writer fills that half again
 * only for window n + 2, which it reaches only after the reader has sent its own window
 * n + 1, i.e. after it has read window n: two halves are enough. A large message goes by
 * postMessage instead (marked by length -1): structured cloning copies big buffers faster
 * than msgpack, and the latency matters only for windows with little to do.
 */
import { Packr, Unpackr } from "msgpackr";

export interface ChannelBuffers {
  /** Int32 [seq, length of half 0, length of half 1]. */
  control: SharedArrayBuffer;
  data: SharedArrayBuffer;
}

export const newChannelBuffers = (halfBytes = 8 << 20): ChannelBuffers => ({
  control: new SharedArrayBuffer(3 * 4),
  data: new SharedArrayBuffer(2 * halfBytes),
});

const packr = new Packr({ useRecords: false, moreTypes: false });
// Binary fields (packets) must not stay views into the shared buffer, which is reused.
const unpackr = new Unpackr({ useRecords: false, moreTypes: false, copyBuffers: true });
/** Checks of `seq` before sleeping in Atomics.wait: none, since spinning takes the core from the other worker's GC helper threads. */
const SPINS = 0;
/** Messages of more bytes go by postMessage (a join storm's windows with push-pull streams). */
const LARGE = 32 << 10;

export class WindowSender {
  private readonly ctl: Int32Array;
  private readonly data: Uint8Array;

  constructor(b: ChannelBuffers, private readonly port: MessagePort) {
    this.ctl = new Int32Array(b.control);
    this.data = new Uint8Array(b.data);
  }

  /** `size`: about how many bytes msg holds; a large message goes by postMessage, whose (native) copy is faster than msgpack. */
  send(n: number, msg: unknown, size: number): void {
    const half = this.data.length / 2;
    const bytes = size <= LARGE ? packr.pack(msg) : undefined;
    if (bytes && bytes.length <= half) {
      this.data.set(bytes, (n % 2) * half);
      Atomics.store(this.ctl, 1 + (n % 2), bytes.length);
    } else {
      Atomics.store(this.ctl, 1 + (n % 2), -1);
      this.port.postMessage(msg);
    }
    Atomics.store(this.ctl, 0, n);
    Atomics.notify(this.ctl, 0);
  }
}

export class WindowReceiver {
  private readonly ctl: Int32Array;
  private readonly data: Uint8Array;
  private readonly overflow: unknown[] = [];
  private wake: (() => void) | null = null;

  constructor(b: ChannelBuffers, port: MessagePort) {
    this.ctl = new Int32Array(b.control);
    this.data = new Uint8Array(b.data);
    port.onmessage = (m) => {
      this.overflow.push(m.data);
      this.wake?.();
    };
  }

  /** Window n's message, blocking this thread until the writer has sent it. */
  async receive(n: number): Promise<unknown> {
    for (let spins = 0; ; spins++) {
      const seq = Atomics.load(this.ctl, 0);
      if (seq >= n) break;
      if (spins > SPINS) Atomics.wait(this.ctl, 0, seq, 100);
    }
    const len = Atomics.load(this.ctl, 1 + (n % 2));
    if (len >= 0) {
      const half = this.data.length / 2;
      return unpackr.unpack(this.data.subarray((n % 2) * half, (n % 2) * half + len));
    }
    while (this.overflow.length === 0) await new Promise<void>((r) => (this.wake = r));
    this.wake = null;
    return this.overflow.shift();
  }
}
