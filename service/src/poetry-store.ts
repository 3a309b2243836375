// What the service knows of the poetry directory: poems and listings looked up through PoetryRoot (poetry-root.ts,
// which decides what is inside and safe to read), kept in a bounded cache revalidated at most once per `revalidateMs`,
// poems opened for one response, and the count of the whole tree.
import etag from "etag";
import { LRUCache } from "lru-cache";
import { PoemStream } from "./poem-stream";
import { type Opened, PoetryRoot, type Refusal } from "./poetry-root";

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

/** What a path names: a poem, a directory's listing, or a refusal (see PoetryRoot.openInside). */
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
/** A listed name's string header and array slot, beside its characters. */
const NAME_OVERHEAD = 32;

/**
 * The poetry directory's poems and listings: keeps what it read in memory, revalidated against the file's mtime and size
 * at most once per `revalidateMs`, so an edited poem is served within that time. Everything served is read from a
 * descriptor PoetryRoot opened and checked (see PoetryRoot.openInside), so swapping a file or directory for a symlink
 * after a check cannot bring an outside file's bytes through.
 */
export class PoetryStore {
  private readonly cache: LRUCache<string, Cached<Lookup>>;
  /** Revalidations under way: requests arriving meanwhile share one instead of each stat-ing the file (a herd under load). */
  private readonly revalidating = new Map<string, Promise<Lookup>>();

  /** The directory's real path; nothing outside it is ever read. */
  readonly root: string;

  private constructor(
    private readonly poetryRoot: PoetryRoot,
    private readonly revalidateMs: number,
    limits: { entries: number; bytes: number },
  ) {
    this.root = poetryRoot.path;
    this.cache = new LRUCache({
      max: limits.entries,
      maxSize: limits.bytes,
      sizeCalculation: (entry, key) => key.length + sizeOf(entry.value),
    });
  }

  /**
   * Open a poetry directory.
   * @throws if it does not exist, is not a directory, or opened files cannot be checked (see PoetryRoot.open).
   */
  static async open(dir: string, revalidateMs = 1000, cacheLimits = DEFAULT_CACHE_LIMITS): Promise<PoetryStore> {
    return new PoetryStore(await PoetryRoot.open(dir), revalidateMs, cacheLimits);
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
   * Open a poem for one response, from a descriptor checked by PoetryRoot.openInside; undefined if it is no longer a poem
   * inside the directory. A large poem comes with a stream that closes the descriptor when it ends or is destroyed
   * (Koa destroys it when the response finishes or the client goes away); a poem that has become small, with its body.
   */
  async openPoem(segments: readonly string[]): Promise<(Poem & { stream?: PoemStream }) | undefined> {
    const opened = await this.poetryRoot.openInside(segments.join("/"));
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
    const opened = await this.poetryRoot.openInside(key);
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
   * counted as unreadable. Each directory is read through a descriptor checked by PoetryRoot.openDirectory, so a directory
   * swapped for a symlink leading out is not counted (a swap to /usr counted 4,053 poems for a true 52).
   */
  async countPoems(): Promise<PoemCount> {
    const count: PoemCount = { poems: 0, unreadable: 0, unnamable: 0 };
    // Each real directory (by device and inode) once: a symlink loop ends here. A stack, not recursion: no depth cap.
    const seen = new Set<string>();
    const pending = [this.root];
    for (let path = pending.pop(); path !== undefined; path = pending.pop()) {
      let dir: Opened | undefined;
      try {
        dir = await this.poetryRoot.openDirectory(path);
        if (!dir || seen.has(`${dir.stats.dev}:${dir.stats.ino}`)) continue;
        seen.add(`${dir.stats.dev}:${dir.stats.ino}`);
        const { visible, unnamable } = await this.poetryRoot.visibleEntries(dir);
        count.unnamable += unnamable;
        for (const entry of visible) {
          if (entry.isDirectory) pending.push(entry.path);
          else count.poems++;
        }
      } catch {
        count.unreadable++;
      } finally {
        await dir?.handle.close();
      }
    }
    return count;
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
    const { visible } = await this.poetryRoot.visibleEntries(opened);
    for (const entry of visible) {
      (entry.isDirectory ? listing.directories : listing.poems).push(entry.name);
    }
    listing.directories.sort();
    listing.poems.sort();
    return listing;
  }
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
