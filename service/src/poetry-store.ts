import { isUtf8 } from "node:buffer";
import { constants, type Stats } from "node:fs";
import { type FileHandle, open, readdir, readlink, realpath, stat } from "node:fs/promises";
import { sep } from "node:path";
import etag from "etag";
import { LRUCache } from "lru-cache";
import resolvePath from "resolve-path";
import { PoemStream } from "./poem-stream";
import { isServableName } from "./poetry-path";

/** A poem ready to serve: small ones are held in memory, large ones are streamed from disk (see openPoem). */
export interface Poem {
  etag: string;
  /** The Last-Modified header value (an HTTP date), formatted once per content version like the ETag. */
  lastModified: string;
  size: number;
  /** The bytes, for poems up to MAX_CACHED_BYTES; undefined for larger ones. */
  body: Buffer | undefined;
}

/** One directory's visible entries by kind, each sorted by name. */
export interface Listing {
  directories: string[];
  poems: string[];
  /**
   * The listing rendered, by format (or being rendered), kept with it so that it is rendered once per directory
   * version; see recharge.
   */
  pages: Map<string, RenderedPage | Promise<RenderedPage>>;
}

/** A listing rendered in one format: its media type, bytes and ETag. */
export interface RenderedPage {
  type: string;
  body: Buffer;
  etag: string;
}

/** What a count of the whole tree found: the poems, and the directories it could not read (skipped). */
export interface PoemCount {
  poems: number;
  unreadable: number;
  /** Entries whose names are not valid UTF-8: no URL can name them, so they are neither listed nor counted as poems. */
  unnamable: number;
}

/** Why a path is not served: not there (or not to be seen), or there but unreadable by the service. */
type Refusal = { kind: "missing" } | { kind: "forbidden" };

export type Lookup = { kind: "poem"; poem: Poem } | { kind: "directory"; listing: Listing } | Refusal;

interface Cached<T> {
  value: T;
  checkedAt: number;
  version: string;
}

const MAX_CACHED_BYTES = 1 << 20;
/** What the cache may hold: paths reached through a symlink loop, or many large poems, must not grow memory for good. */
export const DEFAULT_CACHE_LIMITS = { entries: 10_000, bytes: 32 << 20 };
/** A cache entry's bookkeeping (key, versions, dates, objects) beside its bytes, roughly. */
const ENTRY_OVERHEAD = 300;
/** Directory entries examined between two turns of the event loop. */
const YIELD_EVERY = 5000;
/** A listed name's string header and array slot, beside its characters. */
const NAME_OVERHEAD = 32;
/** Never follow a final symlink; O_NONBLOCK so a FIFO swapped in cannot block the open (regular files ignore it). */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
/** A directory to count, never through a final symlink. */
const DIRECTORY_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_DIRECTORY;
// ENXIO: opening a Unix socket (or a device with no driver, ENODEV) fails before any check: a non-poem like the rest.
const FS_MISSING = new Set(["ENOENT", "ENOTDIR", "ENAMETOOLONG", "ELOOP", "EISDIR", "ENXIO", "ENODEV"]);
const FS_FORBIDDEN = new Set(["EACCES", "EPERM"]);
const MISSING: Refusal = { kind: "missing" };

/** A descriptor opened inside the root and checked: a regular file or a directory, where it really is, its version. */
interface Opened {
  handle: FileHandle;
  stats: Stats;
  path: string;
  version: string;
}

/**
 * The poetry directory: resolves request paths strictly inside it (symlinks included) and keeps what it read in memory,
 * revalidated against the file's mtime and size at most once per `revalidateMs`, so an edited poem is served within that time.
 * Everything served is read from a descriptor that was checked after it was opened (see openInside), so swapping a
 * file or directory for a symlink after a check cannot bring an outside file's bytes through.
 */
export class PoetryStore {
  private readonly cache: LRUCache<string, Cached<Lookup>>;
  /** Revalidations under way: requests arriving meanwhile share one instead of each stat-ing the file (a herd under load). */
  private readonly revalidating = new Map<string, Promise<Lookup>>();

  private constructor(
    /** The directory's real path; nothing outside it is ever read. */
    readonly root: string,
    private readonly revalidateMs: number,
    limits: { entries: number; bytes: number },
  ) {
    this.cache = new LRUCache({
      max: limits.entries,
      maxSize: limits.bytes,
      sizeCalculation: (entry, key) => key.length + sizeOf(entry.value),
    });
  }

  /**
   * Open a poetry directory.
   * @throws if it does not exist or is not a directory.
   */
  static async open(dir: string, revalidateMs = 1000, cacheLimits = DEFAULT_CACHE_LIMITS): Promise<PoetryStore> {
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
    return new PoetryStore(root, revalidateMs, cacheLimits);
  }

  /**
   * What `lookup` would answer, when the cache has it and checked it within `revalidateMs`; otherwise undefined.
   * Synchronous, so a request the cache can answer (most of them) costs no promise.
   */
  cached(segments: readonly string[]): Lookup | undefined {
    const cached = this.cache.get(segments.join("/"));
    return cached && performance.now() - cached.checkedAt < this.revalidateMs ? cached.value : undefined;
  }

  /** How much the cache holds now: entries, and their bytes as the cache's bound counts them. */
  cacheSize(): { entries: number; bytes: number } {
    return { entries: this.cache.size, bytes: this.cache.calculatedSize };
  }

  /**
   * Count a listing's rendered pages in the cache's bound, once they are added to it: lru-cache sizes an entry when it
   * is set, so the entry is set again (when it still holds this listing). One that no longer fits is dropped.
   */
  recharge(segments: readonly string[], listing: Listing): void {
    const key = segments.join("/");
    const entry = this.cache.peek(key);
    if (entry?.value.kind === "directory" && entry.value.listing === listing) this.cache.set(key, { ...entry });
  }

  /** Look up decoded, validated path segments (see parsePoetryPath); `[]` is the root. */
  async lookup(segments: readonly string[]): Promise<Lookup> {
    const fresh = this.cached(segments);
    if (fresh) return fresh;
    const key = segments.join("/");
    let pending = this.revalidating.get(key);
    if (!pending) {
      pending = this.revalidate(key, this.cache.get(key)).finally(() => this.revalidating.delete(key));
      this.revalidating.set(key, pending);
    }
    return pending;
  }

  /**
   * Open a poem for one response, from a descriptor checked as openInside does; undefined if it is no longer a poem
   * inside the directory. A large poem comes with a stream that closes the descriptor when it ends or is destroyed
   * (Koa destroys it when the response finishes or the client goes away); a poem that has become small, with its body.
   */
  async openPoem(segments: readonly string[]): Promise<(Poem & { stream?: PoemStream }) | undefined> {
    const opened = await this.openInside(segments.join("/"));
    if (!("handle" in opened)) return undefined;
    let handedOver = false;
    try {
      if (!opened.stats.isFile()) return undefined;
      const poem = await this.readPoem(opened);
      if (poem.body) return poem;
      // Exactly the size in the headers: a file that grows meanwhile cannot overrun them, one that shrinks fails.
      const stream = new PoemStream(opened.handle, opened.stats.size);
      handedOver = true;
      return { ...poem, stream };
    } finally {
      if (!handedOver) await opened.handle.close();
    }
  }

  private async revalidate(key: string, cached: Cached<Lookup> | undefined): Promise<Lookup> {
    const now = performance.now();
    const opened = await this.openInside(key);
    if (!("handle" in opened)) {
      this.cache.delete(key);
      return opened;
    }
    try {
      if (cached && cached.version === opened.version) {
        cached.checkedAt = now;
        return cached.value;
      }
      const value: Lookup = opened.stats.isDirectory()
        ? { kind: "directory", listing: await this.list(opened) }
        : { kind: "poem", poem: await this.readPoem(opened) };
      // Only what exists is cached, so requests for made-up paths cannot grow memory.
      this.cache.set(key, { value, checkedAt: now, version: opened.version });
      return value;
    } finally {
      await opened.handle.close();
    }
  }

  /**
   * Count the poems in the whole tree (for the poems-available gauge), as deep as requests can reach. Never fails: a
   * directory that cannot be read (unreadable, renamed or deleted meanwhile, the root itself gone) is skipped and
   * counted as unreadable. Each directory is read through a descriptor checked as openInside does, so a directory
   * swapped for a symlink leading out is not counted (a swap to /usr counted 4,053 poems for a true 52).
   */
  async countPoems(): Promise<PoemCount> {
    const count: PoemCount = { poems: 0, unreadable: 0, unnamable: 0 };
    // Each real directory (by device and inode) once: a symlink loop ends here. A stack, not recursion: no depth cap.
    const seen = new Set<string>();
    const pending = [this.root];
    for (let dir = pending.pop(); dir !== undefined; dir = pending.pop()) {
      let handle: FileHandle | undefined;
      try {
        handle = await open(dir, DIRECTORY_FLAGS);
        const { dev, ino } = await handle.stat();
        const real = await descriptorPath(handle);
        if (seen.has(`${dev}:${ino}`) || !this.contains(real)) continue;
        seen.add(`${dev}:${ino}`);
        const { visible, unnamable } = await this.visibleEntries(real, `/proc/self/fd/${handle.fd}`);
        count.unnamable += unnamable;
        for (const entry of visible) {
          if (entry.isDirectory) pending.push(entry.path);
          else count.poems++;
        }
      } catch {
        count.unreadable++;
      } finally {
        await handle?.close();
      }
    }
    return count;
  }

  /**
   * Open a relative path inside the root and check the descriptor: not through a final symlink (O_NOFOLLOW), a regular
   * file or a directory, and really inside the root — /proc/self/fd/N names what was opened, so a directory on the way
   * swapped for a symlink after realpath shows there. A refusal (and nothing left open) when any of that fails.
   */
  private async openInside(rel: string): Promise<Opened | Refusal> {
    let handle: FileHandle;
    try {
      // resolve-path refuses absolute paths and anything that climbs out of the root, as @koa/send does.
      const real = await realpath(resolvePath(this.root, rel || "."));
      if (!this.contains(real)) return MISSING;
      handle = await open(real, OPEN_FLAGS);
    } catch (err) {
      return refusal(err);
    }
    try {
      const stats = await handle.stat();
      const path = await descriptorPath(handle);
      if ((stats.isFile() || stats.isDirectory()) && this.contains(path)) {
        return { handle, stats, path, version: `${stats.mtimeMs}:${stats.size}:${stats.ino}` };
      }
    } catch (err) {
      await handle.close();
      return refusal(err);
    }
    await handle.close();
    return MISSING;
  }

  private contains(real: string): boolean {
    return real === this.root || real.startsWith(this.root + sep);
  }

  /** A poem's headers, and its bytes when small, read from the checked descriptor. */
  private async readPoem({ handle, stats }: Opened): Promise<Poem> {
    // The ETag is computed once per content version, not per request.
    const body = stats.size <= MAX_CACHED_BYTES ? await handle.readFile() : undefined;
    return {
      etag: body ? etag(body) : etag(stats, { weak: true }),
      lastModified: stats.mtime.toUTCString(),
      size: body?.length ?? stats.size,
      body,
    };
  }

  /** A directory's listing, read through its checked descriptor. */
  private async list(opened: Opened): Promise<Listing> {
    const listing: Listing = { directories: [], poems: [], pages: new Map() };
    const { visible } = await this.visibleEntries(opened.path, `/proc/self/fd/${opened.handle.fd}`);
    for (const entry of visible) {
      (entry.isDirectory ? listing.directories : listing.poems).push(entry.name);
    }
    listing.directories.sort();
    listing.poems.sort();
    return listing;
  }

  /**
   * Entries that may be shown: only names a request can ask for (valid UTF-8, no dot-files, backslashes or control
   * characters), no special files, no symlinks leading out of the root; and how many names were not valid UTF-8 (read
   * as text they would show U+FFFD, a name that asks for a different file).
   * @param readFrom where to read the names, when not `dir` itself (a checked descriptor's /proc path).
   */
  private async visibleEntries(dir: string, readFrom = dir) {
    const entries = await readdir(readFrom, { withFileTypes: true, encoding: "buffer" });
    const visible: Array<{ name: string; path: string; isDirectory: boolean }> = [];
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
      const path = `${dir}${sep}${name}`;
      if (entry.isSymbolicLink()) {
        const target = await this.inspectSymlink(path);
        if (target) visible.push({ name, path: target.path, isDirectory: target.isDirectory });
      } else if (entry.isDirectory() || entry.isFile()) {
        visible.push({ name, path, isDirectory: entry.isDirectory() });
      }
    }
    return { visible, unnamable };
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

/** The bytes a cached lookup holds: a poem's body, or a listing's names and its rendered pages. */
function sizeOf(value: Lookup): number {
  if (value.kind !== "directory") return ENTRY_OVERHEAD + (value.kind === "poem" ? (value.poem.body?.length ?? 0) : 0);
  let bytes = ENTRY_OVERHEAD;
  // A name costs its characters (UTF-8 bytes: at least what V8 keeps), a string header and an array slot.
  for (const names of [value.listing.directories, value.listing.poems])
    for (const name of names) bytes += Buffer.byteLength(name) + NAME_OVERHEAD;
  for (const page of value.listing.pages.values()) if (!(page instanceof Promise)) bytes += page.body.length;
  return bytes;
}
