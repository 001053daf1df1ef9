/**
 * dist/weft depends on nothing of the machine that built it: no path of the checkout or
 * its node_modules is embedded (such a path would be opened at run time where it exists,
 * i.e. only on the build machine, so tests there would run other code than the nodes).
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { resolve } from "node:path";

const repo = resolve(import.meta.dir, "../..");
const bin = resolve(repo, "dist/weft");

/** Whether `path` occurs in `bytes` other than inside Bun's own virtual paths
 *  ("/$bunfs/root/<outfile name>", which a checkout at /root/weft would match). */
const BUNFS = "/$bunfs";
function embedded(bytes: Buffer, path: string): boolean {
  const needle = Buffer.from(path);
  for (let i = bytes.indexOf(needle); i >= 0; i = bytes.indexOf(needle, i + 1)) {
    if (bytes.subarray(Math.max(0, i - BUNFS.length), i).toString("latin1") !== BUNFS) return true;
  }
  return false;
}

describe.skipIf(!existsSync(bin))("dist/weft (npm test builds it)", () => {
  test("Bun's virtual paths are told apart from real ones", () => {
    const fake = Buffer.from("\0/$bunfs/root/weft\0file:///$bunfs/root/weft\0");
    expect([embedded(fake, "/root/weft"), embedded(Buffer.concat([fake, Buffer.from("/root/weft/node_modules/x")]), "/root/weft")]).toEqual([false, true]);
  });

  test("embeds no path of the checkout or of its node_modules", () => {
    const bytes = readFileSync(bin);
    const paths = [...new Set([repo, realpathSync(repo), realpathSync(resolve(repo, "node_modules"))])];
    expect(paths.filter((p) => embedded(bytes, p))).toEqual([]);
  });
});
