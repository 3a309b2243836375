import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
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
