/**
 * Worker-thread entry for bench/convergence.ts: receives its part's options, one
 * MessagePort per other part and the shared buffers of the window channels
 * (window-channel.ts), runs the part in lockstep with the others, posts the result.
 */
import { type Exchange, type PartOptions, runPart } from "./convergence-part.ts";
import { type ChannelBuffers, WindowReceiver, WindowSender } from "./window-channel.ts";

declare const self: Worker;

interface Start {
  opts: PartOptions;
  ports: (MessagePort | null)[];
  /** Per other part: the buffers of our channel to it and of its channel to us. */
  channels: ({ out: ChannelBuffers; in: ChannelBuffers } | null)[];
}

/** About how many bytes a window message carries (its packets and stream legs dominate). */
function sizeOf(m: Parameters<Exchange>[0][number]): number {
  let n = 64 * (m.items.length + m.commits.length + m.superseded.length);
  for (const it of m.items) n += it.k === "packet" ? it.data.length : it.k === "request" ? it.req.length : (it.reply?.length ?? 0);
  return n;
}

self.onmessage = async (e: MessageEvent<Start>) => {
  const { opts, ports, channels } = e.data;
  const senders = channels.map((c, p) => (c ? new WindowSender(c.out, ports[p]!) : null));
  const receivers = channels.map((c, p) => (c ? new WindowReceiver(c.in, ports[p]!) : null));
  let windowNo = 0;
  let waitedMs = 0;
  const exchange: Exchange = async (out) => {
    windowNo++;
    senders.forEach((s, p) => s?.send(windowNo, out[p], sizeOf(out[p]!)));
    const theirs = [];
    const t0 = performance.now();
    for (const r of receivers) if (r) theirs.push(await r.receive(windowNo));
    waitedMs += performance.now() - t0;
    return theirs as Awaited<ReturnType<Exchange>>;
  };
  const t0 = performance.now();
  const log = (s: string) => process.stderr.write(`${s}, wall ${((performance.now() - t0) / 1000).toFixed(1)} s (waiting for other parts ${(waitedMs / 1000).toFixed(1)} s)\n`);
  const result = await runPart(opts, exchange, log);
  ports.forEach((port) => port?.close());
  self.postMessage(result);
};
