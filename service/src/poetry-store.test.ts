import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { openDescriptors } from "../test/helpers";
import { PoetryStore } from "./poetry-store";

describe("PoetryStore with symlink loops and large poems", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "poetry-"));
    await mkdir(join(dir, "sub"));
    await writeFile(join(dir, "a.txt"), "a poem\n");
    await writeFile(join(dir, "sub", "b.txt"), "b poem\n");
    await symlink(".", join(dir, "loop"));
    await symlink(".", join(dir, "loop2"));
    await symlink("..", join(dir, "sub", "up"));
    for (let i = 0; i < 8; i++) await writeFile(join(dir, `big${i}.txt`), Buffer.alloc(1 << 20, `poem ${i}\n`));
  });
  afterAll(() => rm(dir, { recursive: true }));

  it("counts each real directory once, however many symlinks lead back to it", async () => {
    const store = await PoetryStore.open(dir);
    expect(await store.countPoems()).toEqual({ poems: 10, unreadable: 0, unnamable: 0 });
  });

  it("keeps its cache within its bounds of entries and bytes, and still serves what it evicted", async () => {
    const limits = { entries: 50, bytes: 3 << 20 };
    const store = await PoetryStore.open(dir, 60_000, limits);
    // 256 distinct paths through the loops to the same poem, then eight poems of 1 MiB each.
    for (let i = 0; i < 256; i++) {
      const through = Array.from({ length: 8 }, (_, bit) => ((i >> bit) & 1 ? "loop" : "loop2"));
      const found = await store.lookup([...through, "a.txt"]);
      expect(found.kind === "poem" && found.poem.body?.toString()).toBe("a poem\n");
    }
    expect(store.cacheSize().entries).toBeLessThanOrEqual(limits.entries);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 8; i++) {
        const found = await store.lookup([`big${i}.txt`]);
        expect(found.kind === "poem" && found.poem.body?.subarray(0, 7).toString()).toBe(`poem ${i}\n`.slice(0, 7));
      }
    }
    expect(store.cacheSize().bytes).toBeLessThanOrEqual(limits.bytes);
    expect(store.cacheSize().bytes).toBeGreaterThan(1 << 20);
  });
});

describe("PoetryStore's count of the tree", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "poetry-"));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("never counts outside the directory while a subdirectory flips to a symlink leading out and back", async () => {
    const root = join(dir, "poems");
    const outside = join(dir, "outside");
    // sub/inner too: a swap of sub while the count opens sub/inner is one on the way, which O_NOFOLLOW does not see.
    await mkdir(join(root, "sub", "inner"), { recursive: true });
    await mkdir(join(outside, "inner"), { recursive: true });
    await writeFile(join(root, "a.txt"), "a\n");
    await writeFile(join(root, "sub", "inner", "b.txt"), "b\n");
    for (const at of [outside, join(outside, "inner")])
      await Promise.all(Array.from({ length: 200 }, (_, i) => writeFile(join(at, `o${i}.txt`), "o\n")));
    const store = await PoetryStore.open(root);
    let flipping = true;
    const flipper = (async () => {
      for (let i = 0; flipping; i++) {
        await rename(join(root, "sub"), join(dir, "sub-away"));
        await symlink(outside, join(root, "sub"));
        await new Promise((r) => setTimeout(r, i % 3));
        await rm(join(root, "sub"));
        await rename(join(dir, "sub-away"), join(root, "sub"));
        await new Promise((r) => setTimeout(r, i % 2));
      }
    })();
    const counts: number[] = [];
    try {
      for (let i = 0; i < 300; i++) counts.push((await store.countPoems()).poems);
    } finally {
      flipping = false;
      await flipper;
    }
    // 2 when sub is the real directory, 1 when it is the symlink (or gone): never the 200 outside.
    expect(Math.max(...counts)).toBeLessThanOrEqual(2);
  });

  it("counts a poem as deep as a request can reach it (60 levels)", async () => {
    const deep = join(dir, ...Array.from({ length: 60 }, (_, i) => `d${i}`));
    await mkdir(deep, { recursive: true });
    await writeFile(join(deep, "deep.txt"), "deep\n");
    const store = await PoetryStore.open(dir);
    const segments = [...Array.from({ length: 60 }, (_, i) => `d${i}`), "deep.txt"];
    expect((await store.lookup(segments)).kind).toBe("poem");
    expect(await store.countPoems()).toEqual({ poems: 1, unreadable: 0, unnamable: 0 });
  });

  it("neither lists nor counts a name that is not valid UTF-8, and says how many there were", async () => {
    await writeFile(Buffer.concat([Buffer.from(`${dir}/bad-`), Buffer.from([0xff]), Buffer.from(".txt")]), "x\n");
    await writeFile(join(dir, "real-\uFFFD.txt"), "a name that really holds U+FFFD\n");
    const store = await PoetryStore.open(dir);
    const root = await store.lookup([]);
    expect(root.kind === "directory" && root.listing.poems).toEqual(["real-\uFFFD.txt"]);
    expect((await store.lookup(["real-\uFFFD.txt"])).kind).toBe("poem");
    expect(await store.countPoems()).toEqual({ poems: 1, unreadable: 0, unnamable: 1 });
  });
});

describe("PoetryStore's answers, cache and descriptors", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "poetry-"));
    await mkdir(join(dir, "sub", "deeper"), { recursive: true });
    await writeFile(join(dir, "a.txt"), "a poem\n");
    await writeFile(join(dir, "sub", "b.txt"), "b poem\n");
    await writeFile(join(dir, "big.txt"), Buffer.alloc((1 << 20) + 1, "big\n"));
  });
  afterAll(() => rm(dir, { recursive: true }));

  it("opens a small poem with its bytes and a strong ETag, a large one as a stream with a weak ETag", async () => {
    const store = await PoetryStore.open(dir);
    const before = openDescriptors();
    const small = await store.openPoem(["a.txt"]);
    expect(small?.body?.toString()).toBe("a poem\n");
    expect(small?.stream).toBeUndefined();
    expect(small?.etag).toMatch(/^"/);
    expect(openDescriptors()).toBe(before);

    const large = await store.openPoem(["big.txt"]);
    expect(large).toMatchObject({ body: undefined, size: (1 << 20) + 1 });
    expect(large?.etag).toMatch(/^W\/"/);
    expect(openDescriptors()).toBe(before + 1);
    large?.stream?.destroy();
    await new Promise((resolve) => large?.stream?.once("close", resolve));
    expect(openDescriptors()).toBe(before);
  });

  it("opens no poem for a directory or a missing name, and leaves nothing open", async () => {
    const store = await PoetryStore.open(dir);
    const before = openDescriptors();
    expect(await store.openPoem(["sub"])).toBeUndefined();
    expect(await store.openPoem([])).toBeUndefined();
    expect(await store.openPoem(["nothing.txt"])).toBeUndefined();
    expect(openDescriptors()).toBe(before);
  });

  it("answers a path it looked up from the cache, synchronously, until revalidateMs passes", async () => {
    const store = await PoetryStore.open(dir, 60_000);
    expect(store.cached(["sub", "b.txt"])).toBeUndefined();
    const found = await store.lookup(["sub", "b.txt"]);
    expect(found.kind).toBe("poem");
    expect(store.cached(["sub", "b.txt"])).toBe(found);
    expect(store.cached(["subb.txt"])).toBeUndefined();
  });

  it("counts a listing's rendered pages in the cache's bytes when recharged, and only for the listing it holds", async () => {
    const store = await PoetryStore.open(dir, 60_000);
    const found = await store.lookup(["sub", "deeper"]);
    if (found.kind !== "directory") throw new Error(found.kind);
    const before = store.cacheSize();
    found.listing.pages.set("text/plain", { type: "text/plain", body: Buffer.alloc(1000), etag: '"x"' });
    store.recharge(["sub", "deeper"], found.listing);
    expect(store.cacheSize()).toEqual({ entries: before.entries, bytes: before.bytes + 1000 });
    // Not in the cache, or a listing the cache no longer holds: nothing changes, not even the held one's new pages.
    const stale = { ...found.listing, pages: new Map(found.listing.pages) };
    found.listing.pages.set("text/html", { type: "text/html", body: Buffer.alloc(500), etag: '"y"' });
    store.recharge(["sub", "elsewhere"], found.listing);
    store.recharge(["sub", "deeper"], stale);
    expect(store.cacheSize()).toEqual({ entries: before.entries, bytes: before.bytes + 1000 });
  });

  it("looks up poems and listings, first and when revalidated, leaving no descriptor open", async () => {
    const store = await PoetryStore.open(dir, 0);
    const before = openDescriptors();
    for (let i = 0; i < 2; i++) {
      expect((await store.lookup(["a.txt"])).kind).toBe("poem");
      expect((await store.lookup(["sub"])).kind).toBe("directory");
      expect((await store.lookup(["nope.txt"])).kind).toBe("missing");
    }
    expect(openDescriptors()).toBe(before);
  });

  it("lists names sorted, whatever order the directory gives them in", async () => {
    // libuv's readdir sorts by bytes, which puts U+FF5E before U+1F600; sorted as JS strings (UTF-16) it comes after.
    const names = [...Array.from({ length: 40 }, (_, i) => `p${(i * 37) % 40}`), "\u{FF5E}", "\u{1F600}"];
    await mkdir(join(dir, "many"));
    for (const name of names) {
      await writeFile(join(dir, "many", `${name}.txt`), `${name}\n`);
      await mkdir(join(dir, "many", `${name}-dir`));
    }
    const store = await PoetryStore.open(dir);
    const found = await store.lookup(["many"]);
    if (found.kind !== "directory") throw new Error(found.kind);
    const sorted = [...names].sort();
    expect(found.listing.poems).toEqual(sorted.map((name) => `${name}.txt`));
    expect(found.listing.directories).toEqual(sorted.map((name) => `${name}-dir`));
  });

  it("counts the tree leaving nothing open, and a root gone as one unreadable directory", async () => {
    const gone = await mkdtemp(join(tmpdir(), "poetry-gone-"));
    await writeFile(join(gone, "a.txt"), "a\n");
    const store = await PoetryStore.open(gone);
    const before = openDescriptors();
    expect(await store.countPoems()).toEqual({ poems: 1, unreadable: 0, unnamable: 0 });
    expect(openDescriptors()).toBe(before);
    await rm(gone, { recursive: true });
    expect(await store.countPoems()).toEqual({ poems: 0, unreadable: 1, unnamable: 0 });
  });
});
