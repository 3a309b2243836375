import { createReadStream, type ReadStream, type Stats } from "node:fs";
import { readdir, readFile, realpath, stat } from "node:fs/promises";
import { sep } from "node:path";
import etag from "etag";
import resolvePath from "resolve-path";

/** A poem ready to serve: small ones are held in memory, large ones are streamed from disk. */
export interface Poem {
  etag: string;
  /** The Last-Modified header value (an HTTP date), formatted once per content version like the ETag. */
  lastModified: string;
  size: number;
  /** The bytes, for poems up to MAX_CACHED_BYTES. */
  body: Buffer | undefined;
  /** Open the file, for larger poems. */
  open(): ReadStream;
}

/** One directory's visible entries by kind, each sorted by name. */
export interface Listing {
  directories: string[];
  poems: string[];
}

export type Lookup = { kind: "poem"; poem: Poem } | { kind: "directory"; listing: Listing } | { kind: "missing" };

interface Cached<T> {
  value: T;
  checkedAt: number;
  version: string;
}

const MAX_CACHED_BYTES = 1 << 20;
const FS_MISSING = new Set(["ENOENT", "ENOTDIR", "ENAMETOOLONG", "ELOOP", "EACCES", "EPERM", "EISDIR"]);

/**
 * The poetry directory: resolves request paths strictly inside it (symlinks included) and keeps what it read in memory,
 * revalidated against the file's mtime and size at most once per `revalidateMs`, so an edited poem is served within that time.
 */
export class PoetryStore {
  private readonly cache = new Map<string, Cached<Lookup>>();
  /** Revalidations under way: requests arriving meanwhile share one instead of each stat-ing the file (a herd under load). */
  private readonly revalidating = new Map<string, Promise<Lookup>>();

  private constructor(
    /** The directory's real path; nothing outside it is ever read. */
    readonly root: string,
    private readonly revalidateMs: number,
  ) {}

  /**
   * Open a poetry directory.
   * @throws if it does not exist or is not a directory.
   */
  static async open(dir: string, revalidateMs = 1000): Promise<PoetryStore> {
    const root = await realpath(dir);
    if (!(await stat(root)).isDirectory()) throw new Error(`${dir} is not a directory`);
    return new PoetryStore(root, revalidateMs);
  }

  /**
   * What `lookup` would answer, when the cache has it and checked it within `revalidateMs`; otherwise undefined.
   * Synchronous, so a request the cache can answer (most of them) costs no promise.
   */
  cached(segments: readonly string[]): Lookup | undefined {
    const cached = this.cache.get(segments.join("/"));
    return cached && performance.now() - cached.checkedAt < this.revalidateMs ? cached.value : undefined;
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

  private async revalidate(key: string, cached: Cached<Lookup> | undefined): Promise<Lookup> {
    const now = performance.now();
    const found = await this.inspect(key);
    if (!found) {
      this.cache.delete(key);
      return { kind: "missing" };
    }
    if (cached && cached.version === found.version) {
      cached.checkedAt = now;
      return cached.value;
    }
    const value = found.stats.isDirectory() ? await this.list(found.path) : await this.load(found.path, found.stats);
    // Only what exists is cached, so requests for made-up paths cannot grow memory.
    this.cache.set(key, { value, checkedAt: now, version: found.version });
    return value;
  }

  /** Count the poems in the whole tree (for the poems-available gauge). */
  async countPoems(dir = this.root, depth = 0): Promise<number> {
    if (depth > 16) return 0;
    let count = 0;
    for (const entry of await this.visibleEntries(dir)) {
      count += entry.isDirectory ? await this.countPoems(entry.path, depth + 1) : 1;
    }
    return count;
  }

  /** Resolve a relative path to a real path inside the root, with what identifies its current content. */
  private async inspect(rel: string) {
    try {
      // resolve-path refuses absolute paths and anything that climbs out of the root, as @koa/send does.
      const real = await realpath(resolvePath(this.root, rel || "."));
      if (!this.contains(real)) return undefined;
      const s = await stat(real);
      if (!s.isDirectory() && !s.isFile()) return undefined;
      return { path: real, stats: s, version: `${s.mtimeMs}:${s.size}:${s.ino}` };
    } catch (err) {
      if (FS_MISSING.has((err as NodeJS.ErrnoException).code ?? "") || (err as { status?: number }).status) return undefined;
      throw err;
    }
  }

  private contains(real: string): boolean {
    return real === this.root || real.startsWith(this.root + sep);
  }

  private async load(path: string, stats: Stats): Promise<Lookup> {
    // The ETag is computed once per content version, not per request.
    const body = stats.size <= MAX_CACHED_BYTES ? await readFile(path) : undefined;
    const poem: Poem = {
      etag: body ? etag(body) : etag(stats, { weak: true }),
      lastModified: stats.mtime.toUTCString(),
      size: stats.size,
      body,
      open: () => createReadStream(path),
    };
    return { kind: "poem", poem };
  }

  private async list(dir: string): Promise<Lookup> {
    const listing: Listing = { directories: [], poems: [] };
    for (const entry of await this.visibleEntries(dir)) {
      (entry.isDirectory ? listing.directories : listing.poems).push(entry.name);
    }
    listing.directories.sort();
    listing.poems.sort();
    return { kind: "directory", listing };
  }

  /** Entries that may be shown: no dot-files, no special files, no symlinks leading out of the root. */
  private async visibleEntries(dir: string) {
    const entries = await readdir(dir, { withFileTypes: true });
    const visible: Array<{ name: string; path: string; isDirectory: boolean }> = [];
    for (const entry of entries) {
      if (entry.name.startsWith(".")) continue;
      const path = `${dir}${sep}${entry.name}`;
      if (entry.isSymbolicLink()) {
        const target = await this.inspectSymlink(path);
        if (target) visible.push({ name: entry.name, path: target.path, isDirectory: target.isDirectory });
      } else if (entry.isDirectory() || entry.isFile()) {
        visible.push({ name: entry.name, path, isDirectory: entry.isDirectory() });
      }
    }
    return visible;
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
