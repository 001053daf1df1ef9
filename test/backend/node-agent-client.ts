/** Drives test/backend/node-agent.ts over its stdin/stdout JSON-lines protocol. */
import type { Subprocess } from "bun";
import { join } from "node:path";

export const NODE_AGENT = join(import.meta.dir, "node-agent.ts");

export class NodeAgentClient {
  private lines: string[] = [];
  private waiters: ((l: string | undefined) => void)[] = [];
  private ended = false;
  stderr = "";

  constructor(readonly proc: Subprocess<"pipe", "pipe", "pipe">) {
    void this.pump();
    void new Response(proc.stderr).text().then((t) => (this.stderr = t));
  }

  private async pump(): Promise<void> {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of this.proc.stdout) {
      buf += dec.decode(chunk);
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const w = this.waiters.shift();
        if (w) w(line);
        else this.lines.push(line);
      }
    }
    this.ended = true;
    for (const w of this.waiters.splice(0)) w(undefined);
  }

  /** The next JSON line, or throws after `timeoutMs` / when the process ended. */
  async next<T = any>(timeoutMs = 10_000): Promise<T> {
    const line =
      this.lines.shift() ??
      (this.ended
        ? undefined
        : await new Promise<string | undefined>((resolve) => {
            const t = setTimeout(() => {
              this.waiters.splice(this.waiters.indexOf(w), 1);
              resolve(undefined);
            }, timeoutMs);
            const w = (l: string | undefined) => {
              clearTimeout(t);
              resolve(l);
            };
            this.waiters.push(w);
          }));
    if (line === undefined) {
      await Promise.race([this.proc.exited, Bun.sleep(200)]);
      throw new Error(`node-agent gave no answer (exit ${this.proc.exitCode ?? "running"}): ${this.stderr.trim()}`);
    }
    return JSON.parse(line) as T;
  }

  async call<T = any>(cmd: unknown, timeoutMs?: number): Promise<T> {
    this.proc.stdin.write(JSON.stringify(cmd) + "\n");
    this.proc.stdin.flush();
    return this.next<T>(timeoutMs);
  }
}
