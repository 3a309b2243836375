// The poetry directory as a boundary: opens paths strictly inside it through descriptors checked after they were opened,
// and says which directory entries may be shown. Everything that decides "inside and safe to read" is here; the cache,
// listings and the count built on it are in poetry-store.ts.
import { isUtf8 } from "node:buffer";
import { constants, type Stats } from "node:fs";
import { type FileHandle, open, readdir, readlink, realpath, stat } from "node:fs/promises";
import { sep } from "node:path";
import resolvePath from "resolve-path";
import { isServableName } from "./poetry-path";

/** Why a path is not served: not there (or not to be seen), or there but unreadable by the service. */
export type Refusal = { kind: "missing" } | { kind: "forbidden" };

/** A descriptor opened inside the root and checked: a regular file or a directory, where it really is, its version. */
export interface Opened {
  handle: FileHandle;
  stats: Stats;
  /** Its real path, as /proc/self/fd names it. */
  path: string;
  /** Changes when the file is edited or replaced: modification time, size and inode. */
  version: string;
}

/** A directory entry that may be shown: its name, where it really is (a symlink's target), and its kind. */
export interface VisibleEntry {
  name: string;
  path: string;
  isDirectory: boolean;
}

/** Directory entries examined between two turns of the event loop. */
const YIELD_EVERY = 5000;
/** Never follow a final symlink; O_NONBLOCK so a FIFO swapped in cannot block the open (regular files ignore it). */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
/** A directory to count, never through a final symlink. */
const DIRECTORY_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_DIRECTORY;
// ENXIO: opening a Unix socket (or a device with no driver, ENODEV) fails before any check: a non-poem like the rest.
const FS_MISSING = new Set(["ENOENT", "ENOTDIR", "ENAMETOOLONG", "ELOOP", "ENXIO", "ENODEV"]);
const FS_FORBIDDEN = new Set(["EACCES", "EPERM"]);
const MISSING: Refusal = { kind: "missing" };

/**
 * The poetry directory's real path, and the only way its files are opened: a path is resolved strictly inside it
 * (symlinks included), and what is read is read from a descriptor checked after it was opened (see openInside), so
 * swapping a file or directory for a symlink after a check cannot bring an outside file's bytes through.
 */
export class PoetryRoot {
  private constructor(
    /** The directory's real path; nothing outside it is ever opened. */
    readonly path: string,
  ) {}

  /**
   * Open a poetry directory.
   * @throws if it does not exist, is not a directory, or opened files cannot be checked (no /proc/self/fd).
   */
  static async open(dir: string): Promise<PoetryRoot> {
    const root = await realpath(dir);
    const handle = await open(root, constants.O_RDONLY);
    try {
      if (!(await handle.stat()).isDirectory()) throw new Error(`${dir} is not a directory`);
      // Every open is checked through /proc/self/fd: without procfs nothing could be served safely.
      if ((await descriptorPath(handle).catch(() => undefined)) !== root) {
        throw new Error(`cannot check opened files: /proc/self/fd (Linux procfs) is not available`);
      }
    } finally {
      await handle.close();
    }
    return new PoetryRoot(root);
  }

  /**
   * Open a relative path inside the root and check the descriptor: not through a final symlink (O_NOFOLLOW), a regular
   * file or a directory, and really inside the root — /proc/self/fd/N names what was opened, so a directory on the way
   * swapped for a symlink after realpath shows there. A refusal (and nothing left open) when any of that fails.
   * @param rel `/`-separated segments, already decoded and validated (see parsePoetryPath); "" is the root.
   */
  async openInside(rel: string): Promise<Opened | Refusal> {
    let handle: FileHandle;
    try {
      // resolve-path refuses absolute paths and anything that climbs out of the root, as @koa/send does.
      const real = await realpath(resolvePath(this.path, rel));
      if (!this.contains(real)) return MISSING;
      handle = await open(real, OPEN_FLAGS);
    } catch (err) {
      return refusal(err);
    }
    try {
      return (await this.check(handle)) ?? MISSING;
    } catch (err) {
      return refusal(err);
    }
  }

  /**
   * Open a directory to count (a path found by visibleEntries), never through a final symlink, and check it as
   * openInside does; undefined (and nothing left open) when it turns out to be outside the root.
   * @throws the filesystem's error when it cannot be opened or checked.
   */
  async openDirectory(path: string): Promise<Opened | undefined> {
    return this.check(await open(path, DIRECTORY_FLAGS));
  }

  /**
   * Entries of a checked directory that may be shown: only names a request can ask for (valid UTF-8, no dot-files,
   * backslashes or control characters), no special files, no symlinks leading out of the root; and how many names were
   * not valid UTF-8 (read as text they would show U+FFFD, a name that asks for a different file). The names are read
   * through the descriptor, so a directory swapped after its check is not the one read.
   */
  async visibleEntries(dir: Opened): Promise<{ visible: VisibleEntry[]; unnamable: number }> {
    const entries = await readdir(`/proc/self/fd/${dir.handle.fd}`, { withFileTypes: true, encoding: "buffer" });
    const visible: VisibleEntry[] = [];
    let unnamable = 0;
    for (const [i, entry] of entries.entries()) {
      // Other requests are served between batches: 150,000 names are a second of work on a busy core.
      if (i > 0 && i % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
      if (!isUtf8(entry.name)) {
        unnamable++;
        continue;
      }
      const name = entry.name.toString();
      if (!isServableName(name)) continue;
      const path = `${dir.path}${sep}${name}`;
      if (entry.isSymbolicLink()) {
        const target = await this.inspectSymlink(path);
        if (target) visible.push({ name, path: target.path, isDirectory: target.isDirectory });
      } else if (entry.isDirectory() || entry.isFile()) {
        visible.push({ name, path, isDirectory: entry.isDirectory() });
      }
    }
    return { visible, unnamable };
  }

  /**
   * The opened descriptor if it is a regular file or a directory really inside the root; otherwise it is closed and the
   * answer is undefined. A failing check closes it too, and throws.
   */
  private async check(handle: FileHandle): Promise<Opened | undefined> {
    try {
      const stats = await handle.stat();
      const path = await descriptorPath(handle);
      if ((stats.isFile() || stats.isDirectory()) && this.contains(path)) {
        return { handle, stats, path, version: `${stats.mtimeMs}:${stats.size}:${stats.ino}` };
      }
    } catch (err) {
      await handle.close();
      throw err;
    }
    await handle.close();
    return undefined;
  }

  /** Whether a real path is the root or under it: the separator keeps a sibling like /x/poetry-secrets out. */
  private contains(real: string): boolean {
    return real === this.path || real.startsWith(this.path + sep);
  }

  private async inspectSymlink(path: string) {
    try {
      const real = await realpath(path);
      if (!this.contains(real)) return undefined;
      const s = await stat(real);
      return s.isDirectory() || s.isFile() ? { path: real, isDirectory: s.isDirectory() } : undefined;
    } catch {
      return undefined;
    }
  }
}

/** The path the kernel gives for what a descriptor refers to. */
function descriptorPath(handle: FileHandle): Promise<string> {
  return readlink(`/proc/self/fd/${handle.fd}`);
}

/**
 * The refusal a filesystem error means: missing (not there, or a symlink where none may be), forbidden (the service
 * may not read it: EACCES, EPERM); any other error is rethrown.
 */
function refusal(err: unknown): Refusal {
  const code = (err as NodeJS.ErrnoException).code ?? "";
  if (FS_FORBIDDEN.has(code)) return { kind: "forbidden" };
  if (FS_MISSING.has(code) || (err as { status?: number }).status) return MISSING;
  throw err;
}
