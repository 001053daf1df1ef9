/**
 * Files other local users must not be able to swap or plant: subnet.env (CNI reads it
 * to address pods) and key files written by `weft keygen --out`.
 *
 * A write goes to a temp file with a random name, created exclusively (O_CREAT|O_EXCL,
 * which never follows a symlink planted at the name) in the target's own directory,
 * then fsync, rename over the target (a symlink at the target is replaced, not followed)
 * and fsync of the directory. The directory must belong to root or to us and must not
 * be writable by group or others unless it has the sticky bit (as /tmp has): otherwise
 * another user could rename our file away and put theirs in its place, whatever we do.
 */
import { randomBytes } from "node:crypto";
import { closeSync, constants, fchmodSync, fsyncSync, mkdirSync, openSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";

const S_ISVTX = 0o1000;

/**
 * Why another user could replace files in `dir`, or undefined. `uid` is our effective uid.
 */
export function unsafeDirectoryProblem(dir: string, uid = process.geteuid?.() ?? 0): string | undefined {
  const st = statSync(dir);
  if (!st.isDirectory()) return `${dir} is not a directory`;
  if (st.uid !== 0 && st.uid !== uid) return `directory ${dir} is owned by uid ${st.uid}, who could replace files in it; use a directory owned by root`;
  if ((st.mode & 0o022) !== 0 && (st.mode & S_ISVTX) === 0) {
    const who = [st.mode & 0o020 ? "group" : "", st.mode & 0o002 ? "others" : ""].filter(Boolean).join(" and ");
    return `directory ${dir} (mode ${(st.mode & 0o7777).toString(8).padStart(4, "0")}) is writable by ${who} without the sticky bit, so they could replace files in it; run: chmod go-w ${dir}`;
  }
  return undefined;
}

/** Creates the parent directory of `path` if missing and checks it; returns it. */
function safeParent(path: string): string {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const problem = unsafeDirectoryProblem(dir);
  if (problem) throw new Error(problem);
  return dir;
}

function writeAll(fd: number, content: string | Uint8Array): void {
  const buf = typeof content === "string" ? Buffer.from(content) : content;
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}

/** fsync of a directory makes a rename in it durable; best effort (some filesystems refuse it). */
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    fsyncSync(fd);
  } catch {
    // the rename itself has happened; durability across a crash is all that is lost
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Creates `path` (and missing parent directories) with exactly `mode`, failing if it
 * exists (also as a symlink, dangling or not). For files that must never replace
 * another, e.g. a new key.
 */
export function createFileExclusive(path: string, content: string | Uint8Array, mode: number): void {
  let dir: string;
  let fd: number | undefined;
  try {
    dir = safeParent(path);
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  } catch (e) {
    throw new Error(`write ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    fchmodSync(fd, mode); // the umask may have taken bits the caller asked for
    writeAll(fd, content);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    fd = undefined;
    try {
      unlinkSync(path);
    } catch {}
    throw new Error(`write ${path}: ${(e as Error).message}`, { cause: e });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  syncDirectory(dir);
}

/**
 * Writes `content` to `path` atomically (readers see the old file or the new one, never
 * a part) with exactly `mode`. On any failure the temp file is removed and the old file
 * stays as it was. Throws an Error naming `path` (and the directory when it is unsafe).
 */
export function writeFileAtomic(path: string, content: string | Uint8Array, mode = 0o644): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(8).toString("hex")}.tmp`);
  let fd: number | undefined;
  let created = false;
  try {
    safeParent(path);
    fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
    created = true;
    fchmodSync(fd, mode);
    writeAll(fd, content);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
    created = false;
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    if (created) {
      try {
        unlinkSync(tmp);
      } catch {}
    }
    throw new Error(`write ${path}: ${(e as Error).message}`, { cause: e });
  }
  syncDirectory(dir);
}
