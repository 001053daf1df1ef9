/**
 * Worker-thread entry for bench/convergence.ts: receives its part's options and one
 * MessagePort per other part, runs the part in lockstep with them, posts the result.
 */
import { type Exchange, type PartOptions, runPart } from "./convergence-part.ts";

declare const self: Worker;

self.onmessage = async (e: MessageEvent<{ opts: PartOptions; ports: (MessagePort | null)[] }>) => {
  const { opts, ports } = e.data;
  // Per peer: messages received but not yet consumed (at most one window ahead).
  const inbox: unknown[][] = ports.map(() => []);
  const waiting: ((() => void) | null)[] = ports.map(() => null);
  ports.forEach((port, p) => {
    if (!port) return;
    port.onmessage = (m) => {
      inbox[p]!.push(m.data);
      waiting[p]?.();
    };
  });
  const next = (p: number) =>
    new Promise<unknown>((resolve) => {
      const take = () => {
        waiting[p] = null;
        resolve(inbox[p]!.shift());
      };
      if (inbox[p]!.length > 0) take();
      else waiting[p] = take;
    });
  let waitedMs = 0;
  const exchange: Exchange = async (out) => {
    ports.forEach((port, p) => port?.postMessage(out[p]));
    const theirs = [];
    const t0 = performance.now();
    for (let p = 0; p < ports.length; p++) if (ports[p]) theirs.push(await next(p));
    waitedMs += performance.now() - t0;
    return theirs as Awaited<ReturnType<Exchange>>;
  };
  const t0 = performance.now();
  const log = (s: string) => process.stderr.write(`${s}, wall ${((performance.now() - t0) / 1000).toFixed(1)} s (waiting for other parts ${(waitedMs / 1000).toFixed(1)} s)\n`);
  const result = await runPart(opts, exchange, log);
  ports.forEach((port) => port?.close());
  self.postMessage(result);
};
